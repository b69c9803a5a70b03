"""What the parents' and the agents' reservation pages share: the API's paths, its states and
modes in French, French dates and deadlines, and a refusal's messages.

Every refusal of the reservations API is a problem+json whose ``conflicts`` each carry a French
sentence naming the child, the day and the rule (deadline passed, full, closed, not
enrolled): the pages show those sentences as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint

from .account import Commune
from .client import Answer
from .formtools import GENERIC_REFUSAL, RATE_LIMITED

PARIS = ZoneInfo("Europe/Paris")
API = "/api/reservations/communes"

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
DAYS_SHORT = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
MONTHS_SHORT = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                "oct.", "nov.", "déc.")

# The calendar's states (DESIGN section 6), as a parent reads them.
STATES = {
    "closed": "Fermé",
    "available": "Disponible",
    "full": "Complet",
    "booked": "Réservé",
    "pending_payment": "En attente de paiement",
    "cancelled": "Annulé",
    "present": "Présent",
    "absent": "Absent",
    "excused": "Excusé",
    "released": "Libéré (non payé)",
    "confirmed": "Réservé",
}
PAYMENT_MODES = {"prepaid": "Payé à la réservation", "monthly": "Facturé en fin de mois"}
LATE_CANCELLATION = {"refuse": "Refusée après la date limite",
                     "request": "Demande à la mairie après la date limite"}
ATTENDANCE = {"present": "Présent", "absent": "Absent", "excused": "Excusé"}
NOT_OFFERED = ("Votre commune ne propose pas les réservations en ligne pour le moment : "
               "adressez-vous à la mairie.")


def api_path(commune: Commune | str, *rest: str) -> str:
    slug = commune if isinstance(commune, str) else commune.slug
    return "/".join([API, quote(slug, safe=""), *(quote(part, safe="") for part in rest)])


# --- dates ------------------------------------------------------------------------------------


def parse_day(value: Any) -> date | None:
    """``2026-10-05`` (or a date) as a date; None for anything else."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value or "")[:10])
    except ValueError:
        return None


def parse_moment(value: Any) -> datetime | None:
    """An ISO date and time as Paris wall time; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PARIS)
    return moment.astimezone(PARIS)


def today() -> date:
    return datetime.now(PARIS).date()


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _number(day: date) -> str:
    return "1er" if day.day == 1 else str(day.day)


def day_long(value: Any, year: bool = True) -> str:
    """``2026-10-05`` → ``lundi 5 octobre 2026`` (``lundi 1er mars``)."""
    day = parse_day(value)
    if day is None:
        return "" if value is None else str(value)
    text = f"{DAYS[day.weekday()]} {_number(day)} {MONTHS[day.month - 1]}"
    return f"{text} {day.year}" if year else text


def day_short(value: Any) -> str:
    """``2026-10-05`` → ``lun. 5 oct.``"""
    day = parse_day(value)
    if day is None:
        return "" if value is None else str(value)
    return f"{DAYS_SHORT[day.weekday()]} {_number(day)} {MONTHS_SHORT[day.month - 1]}"


def hour_fr(moment: time | datetime) -> str:
    """``09:00`` → ``9 h``, ``12:30`` → ``12 h 30``."""
    return f"{moment.hour} h" + (f" {moment.minute:02d}" if moment.minute else "")


def deadline_fr(value: Any) -> str:
    """A deadline (ISO, with the commune's offset) → ``lundi 5 octobre à 9 h``."""
    moment = parse_moment(value)
    if moment is None:
        return ""
    return f"{day_long(moment.date(), year=False)} à {hour_fr(moment)}"


def moment_fr(value: Any) -> str:
    """``2026-10-05T07:00:00Z`` → ``lundi 5 octobre 2026 à 9 h``."""
    moment = parse_moment(value)
    if moment is None:
        return ""
    return f"{day_long(moment.date())} à {hour_fr(moment)}"


def month_label(value: Any) -> str:
    """``2026-10`` (or a date) → ``octobre 2026``."""
    day = parse_day(f"{value}-01" if isinstance(value, str) and len(value) == 7 else value)
    return f"{MONTHS[day.month - 1]} {day.year}" if day else str(value or "")


def of_month(value: Any) -> str:
    """``2026-10`` → ``d'octobre 2026``, ``2026-03`` → ``de mars 2026``."""
    label = month_label(value)
    return f"d'{label}" if label[:1] in ("a", "o") else f"de {label}"


def euros_fr(value: Any) -> str:
    """``"1234.5"`` → ``1 234,50 €``, as the other pages of the portal write amounts."""
    if value is None or isinstance(value, bool | float):
        return "" if value is None else str(value)
    try:
        found = Decimal(str(value).strip())
    except InvalidOperation:
        return str(value)
    if not found.is_finite():
        return str(value)
    units, cents = f"{abs(found):.2f}".split(".")
    groups = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    return f"{'-' if found < 0 else ''}{chr(0x202F).join(groups)},{cents}\u00a0€"


def has_amount(value: Any) -> bool:
    """Whether an API amount is more than zero (``"0.00"`` is not)."""
    try:
        return Decimal(str(value)) > 0
    except (InvalidOperation, ValueError):
        return False


# --- refusals ---------------------------------------------------------------------------------


def refusal_messages(answer: Answer, fallback: str = GENERIC_REFUSAL) -> list[str]:
    """A refusal in French: each conflict's sentence, else each field's, else the detail."""
    conflicts = answer.data.get("conflicts")
    messages = [c["message"] for c in conflicts if isinstance(c, dict)
                and isinstance(c.get("message"), str) and c["message"].strip()
                ] if isinstance(conflicts, list) else []
    if not messages:
        messages = [m for values in answer.errors.values() for m in values]
    if not messages:
        if answer.status == 429:
            messages = [answer.detail or RATE_LIMITED]
        else:
            messages = [answer.detail or fallback]
    return list(dict.fromkeys(messages))


def objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else: none)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def install_filters(blueprint: Blueprint) -> None:
    """The French filters of the reservation pages, for both blueprints' templates."""
    for name, function in (("jour_long", day_long), ("jour_court", day_short),
                           ("limite_fr", deadline_fr), ("moment_fr", moment_fr),
                           ("mois_fr", month_label), ("de_mois", of_month),
                           ("montant_fr", euros_fr)):
        blueprint.add_app_template_filter(function, name)
