"""The communes (tenants) a service knows, as a read model fed by ``accounts.commune.*``.

Every service answers for communes by slug; none reads the accounts database. Each keeps this
small table, filled by the events accounts publishes, and refuses to act for a commune it has
not heard of yet.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, func, select
from sqlalchemy.orm import Session

from .auth import require_commune
from .errors import Problem
from .events import Event

_meta = MetaData()

COMMUNES = Table(
    "communes",
    _meta,
    Column("id", String(36), primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("settings", JSON, nullable=False, default=dict),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           onupdate=func.now()),
)


def communes_table(metadata: MetaData) -> Table:
    return COMMUNES.to_metadata(metadata)


def on_commune_event(session: Session, event: Event, data: dict[str, Any]) -> None:
    """Handler of ``accounts.commune.created`` and ``accounts.commune.updated``.

    Events may arrive out of order: an older version never overwrites a newer one.
    """
    version = int(data.get("version") or 1)
    row = session.execute(
        select(COMMUNES.c.id, COMMUNES.c.version).where(COMMUNES.c.id == data["commune_id"])
    ).first()
    values = {"slug": data["slug"], "name": data["name"],
              "settings": dict(data.get("settings") or {}), "version": version}
    if row is None:
        session.execute(COMMUNES.insert().values(id=data["commune_id"], **values))
    elif row.version < version:
        session.execute(COMMUNES.update().where(COMMUNES.c.id == row.id).values(**values))


COMMUNE_HANDLERS = {
    "accounts.commune.created": on_commune_event,
    "accounts.commune.updated": on_commune_event,
}


def find_commune(session: Session, slug: str) -> dict[str, Any] | None:
    row = session.execute(select(COMMUNES).where(COMMUNES.c.slug == slug)).mappings().first()
    return dict(row) if row else None


def commune_or_404(session: Session, slug: str) -> dict[str, Any]:
    commune = find_commune(session, slug)
    if commune is None:
        raise Problem(404, "Cette commune n'est pas connue du portail.")
    return commune


class CommuneViewSchema(Schema):
    id = fields.String()
    slug = fields.String()
    name = fields.String()
    modules = fields.List(fields.String())
    version = fields.Integer()


def commune_blueprint(service: str) -> ApiBlueprint:
    """``GET /api/<service>/communes/{c}``: the commune as this service knows it.

    Answers 404 until the service has received the commune's creation event, which makes it a
    faithful readiness signal for a commune in a service, and lets the portal know which
    modules to show.
    """
    bp = ApiBlueprint(f"{service}_communes", __name__, url_prefix=f"/api/{service}/communes",
                      description="Communes connues de ce service")

    @bp.route("/<slug>")
    @bp.response(200, CommuneViewSchema)
    def get_commune(slug: str):
        """La commune telle que ce service la connaît (membres et agents de la commune)."""
        require_commune(slug)
        from .app import current_context

        with current_context().db.sessions() as session:
            commune = commune_or_404(session, slug)
        return {**commune, "modules": commune["settings"].get("modules", [])}

    return bp
