"""French wording shared by the rules: dates, times, amounts (no locale needed)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")

DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")


def fr_date(day: date) -> str:
    """``lundi 7 décembre 2026``, ``mardi 1er décembre 2026``."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{DAYS[day.weekday()]} {number} {MONTHS[day.month - 1]} {day.year}"


def fr_time(moment: datetime, tz: ZoneInfo = PARIS) -> str:
    return moment.astimezone(tz).strftime("%H:%M")


def fr_datetime(moment: datetime, tz: ZoneInfo = PARIS) -> str:
    """``vendredi 4 décembre 2026 à 09:00`` (wall time of the commune)."""
    local = moment.astimezone(tz)
    return f"{fr_date(local.date())} à {local.strftime('%H:%M')}"


def fr_month(year: int, month: int) -> str:
    return f"{MONTHS[month - 1]} {year}"


def euros(cents: int) -> str:
    """The contract's amount string: ``"4.10"``."""
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def fr_euros(cents: int) -> str:
    """How a sentence shows an amount: ``4,10 €``."""
    return euros(cents).replace(".", ",") + " €"


def cents_of(amount: str | Decimal) -> int:
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    return int(value * 100)


def fr_dates(days: list[date], limit: int = 5) -> str:
    """A short list of dates for a sentence."""
    shown = [fr_date(d) for d in sorted(days)[:limit]]
    more = len(days) - len(shown)
    text = ", ".join(shown)
    return f"{text} et {more} autre{'s' if more > 1 else ''}" if more > 0 else text
