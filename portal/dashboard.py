"""The family's summary on the home page: one block per service, fetched side by side.

Each block comes from its own service through the gateway, in its own thread and with a short
timeout: a slow or dead service shows a French notice in its block, and the rest of the page
(the news, the other blocks) is shown as usual and on time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from flask import copy_current_request_context

from services.common.logging import get_logger

from .client import GatewayError, LoginRequired, gateway, json_body
from .filters import amount

log = get_logger(__name__)

# Connect, read: a block that is not there within this time is replaced by its notice.
BLOCK_TIMEOUT = (2.0, 4.0)
CLOSED_REQUESTS = ("accepted", "refused", "closed")
NOTICES = {
    "reservations": "Vos prochaines réservations ne peuvent pas être affichées pour le moment.",
    "invoices": "Vos factures ne peuvent pas être affichées pour le moment.",
    "requests": "Vos demandes ne peuvent pas être affichées pour le moment.",
}


@dataclass
class Block:
    data: Any = None
    notice: str | None = None  # in French, shown in place of the block


def _get(path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    response = gateway().request("GET", path, params=params, timeout=BLOCK_TIMEOUT)
    if response.status_code == 401:
        raise LoginRequired()
    if response.status_code != 200:
        raise GatewayError(f"réponse {response.status_code}", response.status_code)
    body = json_body(response)
    return body if isinstance(body, dict) else {}


def _bookings(slug: str) -> list[dict[str, Any]]:
    today = date.today()
    body = _get(f"/api/reservations/communes/{slug}/bookings",
                {"from": today.isoformat(), "to": (today + timedelta(days=14)).isoformat()})
    live = [b for b in body.get("items", []) if isinstance(b, dict)
            and b.get("status") in ("confirmed", "pending_payment")]
    return sorted(live, key=lambda b: (str(b.get("date")), str(b.get("child_first_name"))))[:6]


def _invoices(slug: str) -> dict[str, Any]:
    body = _get(f"/api/billing/communes/{slug}/invoices", {"status": "open"})
    items = [i for i in body.get("items", []) if isinstance(i, dict)]
    total = sum((amount(item.get("amount_remaining")) or Decimal(0) for item in items),
                Decimal(0))
    return {"count": len(items), "total": f"{total:.2f}"}


def _requests(slug: str) -> dict[str, Any]:
    body = _get(f"/api/requests/communes/{slug}/requests")
    items = [i for i in body.get("items", []) if isinstance(i, dict)]
    open_ = [i for i in items if i.get("status") not in CLOSED_REQUESTS]
    waiting = [i for i in open_ if i.get("status") == "waiting_for_family"]
    return {"open": len(open_), "waiting": len(waiting)}


FETCHERS: dict[str, Callable[[str], Any]] = {
    "reservations": _bookings, "invoices": _invoices, "requests": _requests,
}


def family_blocks(slug: str, modules: tuple[str, ...]) -> dict[str, Block]:
    """The blocks of the commune's modules; a failing one holds only its notice."""
    wanted = [name for name in FETCHERS if name in modules]
    if not wanted:
        return {}
    slug = quote(slug, safe="")
    blocks: dict[str, Block] = {}
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="bloc") as pool:
        futures = {name: pool.submit(copy_current_request_context(FETCHERS[name]), slug)
                   for name in wanted}
        for name, future in futures.items():
            try:
                blocks[name] = Block(data=future.result())
            except LoginRequired:
                raise
            except GatewayError as exc:
                log.warning("home_block_unavailable", block=name, error=exc.message)
                blocks[name] = Block(notice=NOTICES[name])
            except Exception as exc:  # an unexpected answer: the notice, not an error page
                log.warning("home_block_failed", block=name, error=repr(exc)[:200])
                blocks[name] = Block(notice=NOTICES[name])
    return blocks
