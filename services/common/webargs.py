"""Parsing request bodies outside flask-smorest (internal routes, forms) with one error shape."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema, ValidationError

from .errors import Problem, flatten_errors


def parse_json(schema: Schema) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Problem(400, "Le corps de la requête doit être un objet JSON.")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise Problem(422, errors=flatten_errors(exc.messages)) from exc
