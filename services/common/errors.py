"""Errors as ``application/problem+json`` (RFC 9457), with French messages for people."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from flask import Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE = "application/problem+json"

TITLES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Ressource introuvable",
    405: "Méthode non autorisée",
    406: "Format de réponse non disponible",
    409: "Conflit",
    410: "Ressource expirée",
    412: "Condition préalable non remplie",
    413: "Contenu trop volumineux",
    414: "Adresse trop longue",
    415: "Type de contenu non pris en charge",
    422: "Données invalides",
    428: "Condition préalable requise",
    429: "Trop de requêtes",
    431: "En-têtes trop volumineux",
    500: "Erreur interne",
    502: "Service indisponible",
    503: "Service momentanément indisponible",
    504: "Le service ne répond pas",
}

DETAILS = {
    400: "La requête n'a pas pu être comprise.",
    401: "Veuillez vous connecter.",
    403: "Vous n'avez pas les droits nécessaires pour cette action.",
    404: "Ce que vous cherchez n'existe pas ou n'est pas accessible.",
    405: "Cette action n'est pas possible à cette adresse.",
    413: "Le contenu envoyé dépasse la taille autorisée.",
    415: "Le format envoyé n'est pas pris en charge.",
    422: "Certaines informations sont invalides : voir le détail par champ.",
    429: "Vous avez fait trop de demandes : réessayez dans quelques instants.",
    500: "Une erreur inattendue est survenue. Elle a été enregistrée ; réessayez plus tard.",
    502: "Un service du portail ne répond pas. Réessayez dans quelques instants.",
    503: "Le service est momentanément indisponible. Réessayez dans quelques instants.",
    504: "Un service du portail a mis trop de temps à répondre. Réessayez plus tard.",
}

# marshmallow and webargs speak English; people read French. Messages the services write
# themselves are already French and pass through unchanged.
_MESSAGES = {
    "Missing data for required field.": "Ce champ est obligatoire.",
    "Field may not be null.": "Ce champ ne peut pas être vide.",
    "Unknown field.": "Champ inconnu.",
    "Not a valid string.": "Doit être une chaîne de caractères.",
    "Not a valid integer.": "Doit être un nombre entier.",
    "Not a valid number.": "Doit être un nombre.",
    "Not a valid boolean.": "Doit valoir vrai ou faux.",
    "Not a valid email address.": "Adresse e-mail invalide.",
    "Not a valid date.": "Date invalide (format attendu AAAA-MM-JJ).",
    "Not a valid datetime.": "Date et heure invalides.",
    "Not a valid UUID.": "Identifiant invalide.",
    "Not a valid list.": "Doit être une liste.",
    "Not a valid mapping type.": "Doit être un objet.",
    "Not a valid URL.": "Adresse web invalide.",
    "Invalid input type.": "Type de donnée invalide.",
    "Invalid value.": "Valeur invalide.",
    "Shorter than minimum length 1.": "Ce champ ne peut pas être vide.",
    "Invalid JSON body.": "Le corps de la requête n'est pas du JSON valide.",
}
_PATTERNS = [
    (re.compile(r"^Must be one of: (.*)\.$"), "Doit être l'une des valeurs : {0}."),
    (re.compile(r"^Length must be between (\d+) and (\d+)\.$"),
     "La longueur doit être comprise entre {0} et {1}."),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), "Au moins {0} caractères."),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), "Au plus {0} caractères."),
    (re.compile(r"^Must be greater than or equal to (.*)\.$"), "Doit être au moins {0}."),
    (re.compile(r"^Must be less than or equal to (.*)\.$"), "Doit être au plus {0}."),
    (re.compile(r"^String does not match expected pattern\.$"), "Format invalide."),
]


def translate(message: str) -> str:
    if message in _MESSAGES:
        return _MESSAGES[message]
    for pattern, template in _PATTERNS:
        match = pattern.match(message)
        if match:
            return template.format(*match.groups())
    return message


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{"json": {"children": {0: {"name": [...]}}}}`` → ``{"children.0.name": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if not prefix and key in ("json", "query", "querystring", "form", "files",
                                      "headers", "view_args", "path"):
                name = ""
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for field, msgs in flatten_errors(value, name).items():
                out.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            out[prefix or "_schema"] = [translate(m) for m in messages]
        else:
            for i, item in enumerate(messages):
                out.update(flatten_errors(item, f"{prefix}.{i}" if prefix else str(i)))
    elif isinstance(messages, str):
        out[prefix or "_schema"] = [translate(messages)]
    return out


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    type: str = "about:blank",
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": type,
        "title": title or TITLES.get(status, "Erreur"),
        "status": status,
        "detail": detail or DETAILS.get(status, TITLES.get(status, "Erreur")),
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        mimetype=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class Problem(HTTPException):
    """Raise from a view or the domain glue to answer a problem+json with a French detail."""

    def __init__(self, status: int, detail: str | None = None, *,
                 errors: dict[str, list[str]] | None = None, **extra: Any):
        super().__init__(description=detail)
        self.code = status
        self.detail = detail
        self.errors = errors
        self.extra = extra

    def get_response(self, environ=None, scope=None) -> Response:
        return problem(self.code, self.detail, errors=self.errors, **self.extra)


def from_http_exception(error: HTTPException) -> Response:
    if isinstance(error, Problem):
        return error.get_response()
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = None
    if "errors" in data:
        errors = flatten_errors(data["errors"])
    elif "messages" in data:
        errors = flatten_errors(data["messages"])
    headers = dict(data.get("headers") or {})
    if code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    if code == 429:
        retry = getattr(error, "retry_after", None) or headers.get("Retry-After")
        if retry:
            headers["Retry-After"] = str(retry)
    detail = data.get("message") if isinstance(data.get("message"), str) else None
    return problem(code, detail, errors=errors, headers=headers)


def validation_problem(exc: ma.ValidationError) -> Response:
    return problem(422, errors=flatten_errors(exc.messages))
