"""Notifications' HTTP API."""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Blueprint as ApiBlueprint

from services.common.app import current_context
from services.common.errors import Problem
from services.common.mailbox import get_message, list_messages, mailbox_dir
from services.common.tenancy import commune_blueprint

from . import NAME

communes = commune_blueprint(NAME)

dev = ApiBlueprint("dev_mailbox", __name__, url_prefix=f"/api/{NAME}/dev/mailbox",
                   description="Boîte aux lettres de développement (mode dev uniquement)")


def _folder():
    settings = current_context().settings
    if not settings.dev:
        raise Problem(404)
    return mailbox_dir(settings.data_dir, dict(settings.extra))


@dev.route("")
def mailbox():
    """Les messages de la boîte de développement, du plus récent au plus ancien."""
    return jsonify(items=list_messages(_folder()), next=None)


@dev.route("/<key>")
def message(key: str):
    """Un message de la boîte de développement."""
    item = get_message(_folder(), key)
    if item is None:
        raise Problem(404, "Ce message n'existe pas.")
    return jsonify(item)


API_BLUEPRINTS = [communes, dev]
