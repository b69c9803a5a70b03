"""``/dev/mail``: the dev mailbox, so a newcomer can click the activation link of a demo e-mail.

Registered only when ``settings.dev`` is true: in production these routes do not exist (404).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from flask import Blueprint, abort, g, render_template, request

from .client import GatewayError, gateway, json_body
from .security import DEV_MAIL_CSP

devmail = Blueprint("devmail", __name__, url_prefix="/dev/mail")

MAILBOX = "/api/notifications/dev/mailbox"


@devmail.get("")
def mailbox():
    cursor = request.args.get("suite")
    data = _ok(gateway().get(MAILBOX, params={"cursor": cursor} if cursor else None))
    items = data.get("items")
    return render_template("dev/mailbox.html", items=items if isinstance(items, list) else [],
                           next_cursor=data.get("next"))


@devmail.get("/<message_id>")
def message(message_id: str):
    item = _ok(gateway().get(f"{MAILBOX}/{quote(message_id, safe='')}"))
    # The e-mail's own HTML is shown in a sandboxed srcdoc iframe: it inherits this policy,
    # which lets its inline styles through but still no script (the sandbox forbids them too).
    g.csp = DEV_MAIL_CSP
    return render_template("dev/message.html", item=item)


def _ok(response: requests.Response) -> dict[str, Any]:
    if response.status_code == 404:
        abort(404)
    body = json_body(response) if response.status_code == 200 else None
    if not isinstance(body, dict):
        raise GatewayError("La boîte aux lettres de développement ne répond pas comme prévu "
                           f"(statut {response.status_code}).", 502)
    return body
