"""Rules of requests, free of Flask and SQLAlchemy.

Categories (their form, documents and workflow) and what makes one valid; the answers a
household sends, checked against its category; the transitions allowed; what the other
services are told when a request of a special kind changes status; cursors and fingerprints.
``operations`` applies them inside transactions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class RuleError(ValueError):
    """Something the rules refuse; ``errors`` are French messages keyed by field name."""

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None):
        super().__init__(detail or str(errors))
        self.errors = errors
        self.detail = detail


REQUIRED = "Ce champ est obligatoire."
DOCUMENT_REQUIRED = "Ce document est obligatoire."

# --------------------------------------------------------------------------------------------
# Statuses and transitions
# --------------------------------------------------------------------------------------------

SUBMITTED = "submitted"
IN_PROGRESS = "in_progress"
WAITING = "waiting_for_family"
ACCEPTED = "accepted"
REFUSED = "refused"
CLOSED = "closed"
STATUSES = (SUBMITTED, IN_PROGRESS, WAITING, ACCEPTED, REFUSED, CLOSED)
STATUS_LABELS = {
    SUBMITTED: "nouvelle",
    IN_PROGRESS: "en cours",
    WAITING: "en attente de votre réponse",
    ACCEPTED: "acceptée",
    REFUSED: "refusée",
    CLOSED: "clôturée",
}
# Decided requests: the retention period counts from the decision.
DECIDED = (ACCEPTED, REFUSED, CLOSED)
# nouvelle → en cours → acceptée / refusée → clôturée, and a question to the family from a
# new or ongoing request, which the family's reply brings back to "en cours".
DEFAULT_TRANSITIONS: dict[str, list[str]] = {
    SUBMITTED: [IN_PROGRESS, WAITING],
    IN_PROGRESS: [WAITING, ACCEPTED, REFUSED],
    WAITING: [IN_PROGRESS],
    ACCEPTED: [CLOSED],
    REFUSED: [CLOSED],
    CLOSED: [],
}
# A transition to these needs a message to the family (the question, the reason).
MESSAGE_NEEDED = {
    WAITING: "Écrivez à la famille ce qu'il manque ou la question à laquelle répondre.",
    REFUSED: "Indiquez à la famille le motif du refus.",
}

KINDS = ("absence_justification", "address_change", "allergy")
KIND_LABELS = {
    "absence_justification": "justification d'absence",
    "address_change": "changement d'adresse",
    "allergy": "allergie",
}


def status_label(status: str | None) -> str | None:
    return STATUS_LABELS.get(status, status) if status else None


def quoted(statuses: list[str]) -> str:
    labels = [f"« {status_label(s)} »" for s in statuses]
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " ou " + labels[-1]


def check_transition(transitions: dict[str, list[str]], current: str, target: str) -> None:
    """RuleError (French, naming the statuses) unless the category goes from current to
    target."""
    allowed = list(transitions.get(current, []))
    if target in allowed:
        return
    if target == current:
        message = f"La demande est déjà au statut « {status_label(current)} »."
    elif allowed:
        message = (f"Impossible de passer du statut « {status_label(current)} » au statut "
                   f"« {status_label(target)} » pour cette catégorie. Depuis « "
                   f"{status_label(current)} », la demande peut passer à : {quoted(allowed)}.")
    else:
        message = (f"Impossible de passer du statut « {status_label(current)} » au statut "
                   f"« {status_label(target)} » : une demande au statut « "
                   f"{status_label(current)} » ne change plus de statut.")
    raise RuleError({"status": [message]}, message)


# --------------------------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------------------------

FIELD_TYPES = ("text", "long_text", "date", "choice", "yes_no", "child", "phone", "email")
FILE_TYPES = ("pdf", "jpeg", "png", "heic")
DEFAULT_FILE_TYPES = ["pdf", "jpeg", "png"]
MB = 1024 * 1024
DEFAULT_MAX_SIZE = 10 * MB
MAX_FILES_PER_DOCUMENT = 5
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED_NAMES = ("category", "body", "documents", "message")
MAX_FIELDS = 40
MAX_DOCUMENTS = 10

# What each kind needs in its form, by field name: what the other services are told comes
# from these fields (see ``effect_payload``).
KIND_FIELDS: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    # name: (accepted types, required)
    "absence_justification": {
        "child": (("child",), True),
        "from": (("date",), True),
        "to": (("date",), False),
        "activities": (("choice", "text"), False),
        "reason": (("text", "long_text", "choice"), False),
    },
    "address_change": {
        "line1": (("text",), True),
        "line2": (("text",), False),
        "postal_code": (("text",), True),
        "city": (("text",), True),
        "from": (("date",), False),
    },
    "allergy": {
        "child": (("child",), True),
        "notes": (("text", "long_text"), True),
    },
}
TYPE_LABELS = {"text": "texte", "long_text": "texte long", "date": "date", "choice": "choix",
               "yes_no": "oui / non", "child": "enfant", "phone": "téléphone",
               "email": "e-mail"}


def size_label(size: int) -> str:
    """``5242880`` → ``5 Mo``; ``2621440`` → ``2,5 Mo``."""
    if size >= MB:
        value = size / MB
        text = f"{value:.0f}" if value == int(value) else f"{value:.1f}".replace(".", ",")
        return f"{text} Mo"
    return f"{max(1, round(size / 1024))} Ko"


def normalise_options(options: list[Any] | None) -> list[dict[str, str]]:
    """Options given as strings or ``{value, label}`` → ``[{value, label}]``, with spaces as a
    submitted answer has them (see ``clean_text``)."""
    out: list[dict[str, str]] = []
    for option in options or []:
        if isinstance(option, str):
            value = label = option
        else:
            value = str(option.get("value") or option.get("label") or "")
            label = str(option.get("label") or value)
        value = clean_text(value, multiline=False)
        out.append({"value": value, "label": clean_text(label, multiline=False) or value})
    return out


def default_workflow() -> tuple[list[str], dict[str, list[str]]]:
    return list(STATUSES), {k: list(v) for k, v in DEFAULT_TRANSITIONS.items()}


def check_category(definition: dict[str, Any], *, max_upload: int) -> dict[str, Any]:
    """A category definition (label, description, kind, fields, required_attachments,
    statuses, transitions), checked and normalised; RuleError with French messages keyed by
    path (``fields.2.options``)."""
    errors: dict[str, list[str]] = {}

    def err(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    fields_in = definition.get("fields") or []
    docs_in = definition.get("required_attachments") or []
    if len(fields_in) > MAX_FIELDS:
        err("fields", f"Au plus {MAX_FIELDS} champs.")
    if len(docs_in) > MAX_DOCUMENTS:
        err("required_attachments", f"Au plus {MAX_DOCUMENTS} documents.")
    names: set[str] = set()
    fields_out: list[dict[str, Any]] = []
    for i, spec in enumerate(fields_in):
        name = spec["name"]
        if name in names or name in RESERVED_NAMES:
            err(f"fields.{i}.name", "Ce nom est déjà utilisé dans cette catégorie.")
        names.add(name)
        options = normalise_options(spec.get("options"))
        if spec["type"] == "choice":
            values = [o["value"] for o in options]
            if not options:
                err(f"fields.{i}.options", "Un champ « choix » doit proposer au moins une "
                                           "option.")
            elif len(set(values)) != len(values) or not all(values):
                err(f"fields.{i}.options", "Les options doivent être distinctes et non vides.")
        elif options:
            err(f"fields.{i}.options", "Seul un champ « choix » a des options.")
        fields_out.append({"name": name, "label": spec["label"], "type": spec["type"],
                           "required": bool(spec.get("required")),
                           "help": spec.get("help") or None,
                           "options": options if spec["type"] == "choice" else []})
    docs_out: list[dict[str, Any]] = []
    for i, spec in enumerate(docs_in):
        name = spec["name"]
        if name in names or name in RESERVED_NAMES:
            err(f"required_attachments.{i}.name",
                "Ce nom est déjà utilisé dans cette catégorie.")
        names.add(name)
        accepted = list(dict.fromkeys(spec.get("accepted_types") or DEFAULT_FILE_TYPES))
        max_size = int(spec.get("max_size") or DEFAULT_MAX_SIZE)
        if max_size > max_upload:
            err(f"required_attachments.{i}.max_size",
                f"Au plus {size_label(max_upload)} (la limite d'un envoi).")
        docs_out.append({"name": name, "label": spec["label"],
                         "required": bool(spec.get("required")),
                         "accepted_types": accepted, "max_size": max_size,
                         "max_files": int(spec.get("max_files") or 1),
                         "help": spec.get("help") or None})
    kind = definition.get("kind")
    if kind:
        by_name = {f["name"]: f for f in fields_out}
        for name, (types, required) in KIND_FIELDS[kind].items():
            spec = by_name.get(name)
            if spec is None and required:
                err("fields", f"Une catégorie de type « {KIND_LABELS[kind]} » doit avoir un "
                              f"champ « {name} » ({' ou '.join(TYPE_LABELS[t] for t in types)}"
                              f", obligatoire).")
            elif spec is not None and (spec["type"] not in types
                                       or (required and not spec["required"])):
                err("fields", f"Le champ « {name} » d'une catégorie de type « "
                              f"{KIND_LABELS[kind]} » doit être de type "
                              f"{' ou '.join(TYPE_LABELS[t] for t in types)}"
                              f"{', obligatoire' if required else ''}.")
    statuses, transitions = _check_workflow(definition, err)
    if errors:
        raise RuleError(errors, "La catégorie n'est pas valable : voir le détail par champ.")
    return {"label": definition["label"], "description": definition.get("description") or None,
            "kind": kind or None, "fields": fields_out, "documents": docs_out,
            "statuses": statuses, "transitions": transitions}


def _check_workflow(definition: dict[str, Any], err) -> tuple[list[str], dict[str, list[str]]]:
    default_statuses, default_transitions = default_workflow()
    statuses = list(dict.fromkeys(definition.get("statuses") or default_statuses))
    given = definition.get("transitions")
    if given is None:
        transitions = {s: [t for t in default_transitions.get(s, []) if t in statuses]
                       for s in statuses}
    else:
        transitions = {s: list(dict.fromkeys(given.get(s) or [])) for s in statuses}
        for source in given:
            if source not in statuses:
                err(f"transitions.{source}", "Ce statut ne fait pas partie de la catégorie.")
    if SUBMITTED not in statuses:
        err("statuses", "Le statut « nouvelle » (submitted) est obligatoire : c'est celui "
                        "d'une demande qui vient d'arriver.")
    for source, targets in transitions.items():
        for target in targets:
            if target not in statuses:
                err(f"transitions.{source}", f"Le statut « {status_label(target)} » ne fait "
                                             f"pas partie de la catégorie.")
            elif target == source:
                err(f"transitions.{source}", "Un statut ne peut pas mener à lui-même.")
    if WAITING in statuses and IN_PROGRESS not in transitions.get(WAITING, []):
        err("transitions.waiting_for_family",
            "« en attente de votre réponse » doit pouvoir revenir à « en cours » : "
            "c'est ce que fait la réponse de la famille.")
    reachable = {SUBMITTED}
    frontier = [SUBMITTED]
    while frontier:
        for target in transitions.get(frontier.pop(), []):
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    unreachable = [s for s in statuses if s not in reachable]
    if SUBMITTED in statuses and unreachable:
        err("transitions", f"Aucune transition ne mène à : {quoted(unreachable)}.")
    return statuses, transitions


# --------------------------------------------------------------------------------------------
# The answers of a form
# --------------------------------------------------------------------------------------------

TEXT_MAX = 500
LONG_TEXT_MAX = 5000
PHONE = re.compile(r"^\+?[0-9][0-9 .()-]{5,24}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
POSTAL_CODE = re.compile(r"^\d{5}$")
FR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
YES = ("oui", "true", "1", "yes", "on", "o", "y")
NO = ("non", "false", "0", "no", "off", "n")
ABSENCE_MAX_DAYS = 92
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str, *, multiline: bool) -> str:
    """Without control characters (tabs and, in long texts, line breaks kept), NFC, trimmed."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = _CONTROL.sub("", value)
    if not multiline:
        value = " ".join(value.split())
    return value.strip()


def parse_date(value: str) -> date | None:
    value = value.strip()
    try:
        if FR_DATE.match(value):
            day, month, year = FR_DATE.match(value).groups()
            return date(int(year), int(month), int(day))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
    except ValueError:
        return None
    return None


@dataclass
class Answers:
    """The checked answers: ``values`` by field name (JSON), ``rows`` as kept with the
    request (``[{name, label, type, value, display}]``)."""

    values: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def check_answers(fields: list[dict[str, Any]], given: dict[str, str],
                  children: list[dict[str, Any]], kind: str | None) -> tuple[Answers,
                                                                             dict[str, list]]:
    """Check what the household typed against the category's fields.

    ``given``: the submitted text values by name (absent = not sent); ``children``: the
    household's children (``id``, ``first_name``, ``last_name``). Returns the answers and the
    errors (French, by field name); the caller refuses the whole request on any error.
    """
    errors: dict[str, list[str]] = {}
    answers = Answers()
    kids = {c["id"]: c for c in children}
    for spec in fields:
        name, kind_of = spec["name"], spec["type"]
        raw = given.get(name)
        text = clean_text(raw, multiline=kind_of == "long_text") if raw is not None else ""
        if not text:
            if spec["required"]:
                errors[name] = [REQUIRED]
            continue
        value: Any = text
        display = text
        if kind_of == "text" and len(text) > TEXT_MAX:
            errors[name] = [f"Au plus {TEXT_MAX} caractères."]
        elif kind_of == "long_text" and len(text) > LONG_TEXT_MAX:
            errors[name] = [f"Au plus {LONG_TEXT_MAX} caractères."]
        elif kind_of == "date":
            day = parse_date(text)
            if day is None or not (1900 <= day.year <= 2200):
                errors[name] = ["Date invalide (format attendu AAAA-MM-JJ)."]
            else:
                value = day.isoformat()
                display = day.strftime("%d/%m/%Y")
        elif kind_of == "choice":
            options = {o["value"]: o["label"] for o in spec.get("options") or []}
            if text not in options:
                errors[name] = ["Choisissez l'une des options proposées."]
            else:
                display = options[text]
        elif kind_of == "yes_no":
            lowered = text.lower()
            if lowered in YES:
                value, display = True, "Oui"
            elif lowered in NO:
                value, display = False, "Non"
            else:
                errors[name] = ["Répondez par oui ou par non."]
        elif kind_of == "child":
            kid = kids.get(text.lower())
            if kid is None:
                errors[name] = ["Choisissez un enfant de votre foyer."]
            else:
                value = kid["id"]
                display = f"{kid['first_name']} {kid['last_name']}"
        elif kind_of == "phone":
            if not PHONE.match(text):
                errors[name] = ["Numéro de téléphone invalide."]
        elif kind_of == "email":
            value = display = text.lower()
            if len(text) > 254 or not EMAIL.match(text):
                errors[name] = ["Adresse e-mail invalide."]
        if name in errors:
            continue
        answers.values[name] = value
        answers.rows.append({"name": name, "label": spec["label"], "type": kind_of,
                             "value": value, "display": display})
    if kind:
        _check_kind(kind, answers.values, errors)
        for row in answers.rows:  # what the kind's checks normalised (a postal code)
            if row["value"] != answers.values[row["name"]]:
                row["value"] = row["display"] = answers.values[row["name"]]
    return answers, errors


def _check_kind(kind: str, values: dict[str, Any], errors: dict[str, list[str]]) -> None:
    if kind == "absence_justification" and "from" in values and "to" in values:
        start, end = date.fromisoformat(values["from"]), date.fromisoformat(values["to"])
        if end < start:
            errors.setdefault("to", []).append(
                "La date de fin ne peut pas être avant la date de début.")
        elif (end - start).days >= ABSENCE_MAX_DAYS:
            errors.setdefault("to", []).append(
                f"Une absence couvre au plus {ABSENCE_MAX_DAYS} jours : faites une demande "
                f"par période.")
    if kind == "address_change" and "postal_code" in values:
        if not POSTAL_CODE.match(str(values["postal_code"]).replace(" ", "")):
            errors.setdefault("postal_code", []).append("Code postal à 5 chiffres.")
        else:
            values["postal_code"] = str(values["postal_code"]).replace(" ", "")


def effect_payload(kind: str | None, values: dict[str, Any]) -> dict[str, Any] | None:
    """What ``requests.request.status_changed`` tells the other services for a request of a
    special kind (``payload``); None for the others.

    - absence_justification: ``{child_id, dates: [every day from "from" to "to"],
      activity_ids: [...] (only when the form has an "activities" answer), reason?}``
    - address_change: ``{address: {line1, line2, postal_code, city}, effective_date?}``
    - allergy: ``{child_id, notes}``
    """
    if kind == "absence_justification":
        if "child" not in values or "from" not in values:
            return None
        start = date.fromisoformat(values["from"])
        end = date.fromisoformat(values.get("to") or values["from"])
        days = [(start + timedelta(days=i)).isoformat()
                for i in range(min((end - start).days, ABSENCE_MAX_DAYS - 1) + 1)]
        payload: dict[str, Any] = {"child_id": values["child"], "dates": days}
        if values.get("activities"):
            payload["activity_ids"] = [values["activities"]]
        if values.get("reason"):
            payload["reason"] = values["reason"]
        return payload
    if kind == "address_change":
        address = {"line1": values.get("line1"), "line2": values.get("line2") or None,
                   "postal_code": values.get("postal_code"), "city": values.get("city")}
        payload = {"address": address}
        if values.get("from"):
            payload["effective_date"] = values["from"]
        return payload
    if kind == "allergy":
        return {"child_id": values.get("child"), "notes": values.get("notes")}
    return None


# --------------------------------------------------------------------------------------------
# Duplicates, references, cursors
# --------------------------------------------------------------------------------------------

DUPLICATE_WINDOW = timedelta(minutes=10)
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
# No 0/O nor 1/I: a reference read over the phone is not mistyped.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def fingerprint(*parts: Any) -> str:
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                     default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def reference_for(request_id: str, moment: datetime) -> str:
    """``D2026-7KQ3MX``: the year and six characters drawn from the request's id."""
    number = int(request_id.replace("-", ""), 16)
    chars = []
    for _ in range(6):
        number, index = divmod(number, len(REFERENCE_ALPHABET))
        chars.append(REFERENCE_ALPHABET[index])
    return f"D{moment.year}-{''.join(chars)}"


PAGE = 50


def encode_cursor(values: list[str]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not (isinstance(values, list) and len(values) == size
            and all(isinstance(v, str) for v in values)):
        raise RuleError({"cursor": ["Curseur de pagination invalide."]})
    return values


RETENTION_DEFAULT_MONTHS = 36
RETENTION_MIN_MONTHS = 1
RETENTION_MAX_MONTHS = 120


def months_before(moment: datetime, months: int) -> datetime:
    """The same day ``months`` earlier (the last day of a shorter month)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month += 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))
