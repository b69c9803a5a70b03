"""E-mails in French from Jinja2 templates: a text and an HTML part per kind.

Each kind has ``templates/<kind>.txt`` (defines the blocks ``subject`` and ``body``, extends
``layout.txt``) and ``templates/<kind>.html`` (defines ``content``, extends ``layout.html``).
HTML is autoescaped; the text part is not (it is never read as markup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
DEFAULT_TIMEZONE = "Europe/Paris"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def euros(value: Decimal | str | int | float | None) -> str:
    """``Decimal("1234.5")`` → ``"1 234,50 €"`` (French format, two decimals)."""
    if value is None:
        return ""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    units, cents = f"{abs(amount):.2f}".split(".")
    groups = []
    while len(units) > 3:
        groups.insert(0, units[-3:])
        units = units[:-3]
    groups.insert(0, units)
    return f"{sign}{' '.join(groups)},{cents} €"


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def date_long(value: date | datetime | str | None) -> str:
    """``2026-10-05`` → ``"lundi 5 octobre 2026"``."""
    if value is None or value == "":
        return ""
    day = _as_date(value)
    number = "1er" if day.day == 1 else str(day.day)
    return f"{DAYS[day.weekday()]} {number} {MONTHS[day.month - 1]} {day.year}"


def _local(value: datetime, tz: str | None) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone(tz))


def time_fr(value: datetime | None, tz: str | None = None) -> str:
    """An aware datetime → ``"9 h 30"`` in the commune's time zone."""
    if value is None:
        return ""
    local = _local(value, tz)
    return f"{local.hour} h {local.minute:02d}"


def datetime_long(value: datetime | None, tz: str | None = None) -> str:
    """An aware datetime → ``"lundi 12 octobre 2026 à 10 h 00"`` in the commune's time zone."""
    if value is None:
        return ""
    local = _local(value, tz)
    return f"{date_long(local.date())} à {time_fr(local, tz)}"


def month_year(value: str | None) -> str:
    """``"2026-10"`` → ``"octobre 2026"``."""
    if not value:
        return ""
    year, month = str(value).split("-")[:2]
    return f"{MONTHS[int(month) - 1]} {year}"


def ucfirst(value: str | None) -> str:
    """Capital first letter, the rest untouched (Jinja's ``capitalize`` lowers it)."""
    value = value or ""
    return value[:1].upper() + value[1:]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(euros=euros, date_long=date_long, datetime_long=datetime_long,
                       time_fr=time_fr, month_year=month_year, ucfirst=ucfirst)
    return env


ENV = _environment()


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_SPACES = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


def render(kind: str, context: dict[str, Any]) -> Rendered:
    """Subject, text and HTML of the e-mail ``kind`` for ``context``."""
    text_template = ENV.get_template(f"{kind}.txt")
    ctx = text_template.new_context(dict(context))
    subject = _SPACES.sub(" ", "".join(text_template.blocks["subject"](ctx))).strip()
    text = text_template.render(**context)
    # Trailing spaces go, except in "-- ", the signature separator mail clients recognise.
    lines = (line if line == "-- " else line.rstrip() for line in text.splitlines())
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines))
    html = ENV.get_template(f"{kind}.html").render(**context, subject=subject)
    return Rendered(subject=subject, text=text.strip() + "\n", html=html)
