"""The event envelope of DESIGN section 4, and how it travels as JSON."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import catalogue
from .logging import get_contextvars


class InvalidEnvelope(ValueError):
    """A message that is not an event envelope at all: it can never be handled."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    producer: str
    version: int = 1
    commune_id: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=_now)
    correlation_id: str = ""
    causation_id: str | None = None

    @classmethod
    def new(
        cls,
        type: str,
        data: dict[str, Any],
        *,
        producer: str,
        version: int = 1,
        commune_id: str | None = None,
        causation_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Event:
        """A new event, validated against the catalogue (unknown fields refused).

        The correlation id follows the request or event being handled (bound in the logging
        context by the app factory and the consumer), so a whole chain can be traced.
        """
        catalogue.validate(type, version, data, strict=True)
        ctx = get_contextvars()
        event_id = str(uuid.uuid4())
        return cls(
            type=type,
            data=data,
            producer=producer,
            version=version,
            commune_id=commune_id,
            id=event_id,
            correlation_id=correlation_id or ctx.get("correlation_id") or event_id,
            causation_id=causation_id or ctx.get("event_id"),
        )

    @classmethod
    def new_many(
        cls,
        type: str,
        datas: list[dict[str, Any]],
        *,
        producer: str,
        version: int = 1,
        commune_id: str | None = None,
    ) -> list[Event]:
        """``new`` for many events of one type, each validated, with one schema instance (a
        schema per event was a third of an invoicing run's finalisation)."""
        schema = catalogue.schema_for(type, version)
        ctx = get_contextvars()
        out = []
        for data in datas:
            catalogue.validate(type, version, data, strict=True, schema=schema)
            event_id = str(uuid.uuid4())
            out.append(cls(type=type, data=data, producer=producer, version=version,
                           commune_id=commune_id, id=event_id,
                           correlation_id=ctx.get("correlation_id") or event_id,
                           causation_id=ctx.get("event_id")))
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str | bytes | dict) -> Event:
        try:
            raw = json.loads(body) if isinstance(body, str | bytes) else body
            return cls(
                id=str(raw["id"]),
                type=str(raw["type"]),
                version=int(raw["version"]),
                occurred_at=str(raw["occurred_at"]),
                producer=str(raw["producer"]),
                commune_id=raw.get("commune_id"),
                correlation_id=str(raw.get("correlation_id") or raw["id"]),
                causation_id=raw.get("causation_id"),
                data=dict(raw["data"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidEnvelope(f"enveloppe d'événement invalide : {exc}") from exc
