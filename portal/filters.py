"""Jinja filters for French display."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from flask import Flask
from markupsafe import Markup, escape

PARIS = ZoneInfo("Europe/Paris")
_URL = re.compile(r"https?://[^\s<>\"']+")
THIN_SPACE = "\u202f"
NO_BREAK = "\u00a0"
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def date_fr(value: str | None) -> str:
    """``2026-05-12T12:03:00Z`` (or an RFC 2822 date) → ``12/05/2026 à 14 h 03``, Paris time."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return value
    if when.tzinfo is not None:
        when = when.astimezone(PARIS)
    return when.strftime("%d/%m/%Y à %H h %M")


def day_fr(value: str | None) -> str:
    """``2018-03-14`` → ``14/03/2018``; a date and time gives its day in Paris."""
    if not value:
        return ""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
        if when.tzinfo is not None:
            when = when.astimezone(PARIS)
        day = when.date()
    return day.strftime("%d/%m/%Y")


def amount(value: object) -> Decimal | None:
    """An API amount (``"82.00"``) as a Decimal, or None when it is not one."""
    if value is None or isinstance(value, bool | float):
        return None
    try:
        found = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def euros(value: object) -> str:
    """``"1234.5"`` → ``1 234,50 €`` (narrow no-break space between thousands, no-break space
    before the sign, as the billing service's PDFs); anything else is shown as it came."""
    found = amount(value)
    if found is None:
        return "" if value is None else str(value)
    sign = "-" if found < 0 else ""
    units, cents = f"{abs(found):.2f}".split(".")
    groups = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    return f"{sign}{THIN_SPACE.join(groups)},{cents}{NO_BREAK}€"


def month_fr(value: str | None) -> str:
    """``2026-10`` → ``octobre 2026``."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", value or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        return value or ""
    return f"{MONTHS[int(match.group(2)) - 1]} {match.group(1)}"


def paragraphs(text: str | None) -> Markup:
    """Plain text typed by an agent → escaped paragraphs, line breaks and links kept."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n"))]
    out = []
    for block in blocks:
        if block:
            lines = [linkify(line) for line in block.split("\n")]
            out.append(Markup("<p>{}</p>").format(Markup("<br>\n").join(lines)))
    return Markup("\n").join(out)


def linkify(text: str | None) -> Markup:
    """Escape ``text`` and turn its http(s) addresses into links (for a plain-text e-mail)."""
    text = text or ""
    out: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        end = match.start() + len(url)
        out.append(escape(text[last:match.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = end
    out.append(escape(text[last:]))
    return Markup("").join(out)


def install_filters(app: Flask) -> None:
    app.add_template_filter(date_fr, "date_fr")
    app.add_template_filter(linkify, "linkify")
    app.add_template_filter(day_fr, "day_fr")
    app.add_template_filter(paragraphs, "paragraphs")
    app.add_template_filter(euros, "euros")
    app.add_template_filter(month_fr, "month_fr")
