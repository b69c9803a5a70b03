"""Booking and cancellation deadlines, in the forms communes use, on the commune's wall clock.

Three forms (``kind``), each with a wall-clock ``time`` (``HH:MM``, Europe/Paris):

- ``days_before``: N calendar days before the day, at the time ("la veille à 09:00" is
  ``{"kind": "days_before", "days": 1, "time": "09:00"}``; ``days: 0`` is the day itself);
- ``working_days_before``: N working days before the day, weekends (and public holidays) not
  counted ("2 jours ouvrés avant à 12:00");
- ``weekly``: weekday D (ISO, 1 = Monday) of the previous week at the time, for every day of a
  week ("le jeudi à 12:00 pour la semaine suivante").

The deadline is built from the *local date and time* and only then given its offset
(``datetime.combine(..., tzinfo=Europe/Paris)``), never by subtracting hours from the day: so
"2 days before at 09:00" is 09:00 on the Saturday even when the clocks change on the Sunday.
A wall time that does not exist (02:30 on the last Sunday of March) is read with the offset
before the change, i.e. 03:30 summer time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .text import DAYS, PARIS

KINDS = ("days_before", "working_days_before", "weekly")

WorkingDay = Callable[[date], bool]


def weekdays_only(day: date) -> bool:
    return day.weekday() < 5


class InvalidRule(ValueError):
    pass


def parse_time(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise InvalidRule(f"Heure invalide : {value!r} (format attendu HH:MM).") from exc


@dataclass(frozen=True)
class DeadlineRule:
    kind: str
    at: time
    days: int = 0
    weekday: int = 0  # ISO weekday for ``weekly``

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> DeadlineRule | None:
        if not raw:
            return None
        kind = raw.get("kind")
        if kind not in KINDS:
            raise InvalidRule(f"Type de délai inconnu : {kind!r}.")
        at = parse_time(raw.get("time", ""))
        days = int(raw.get("days") or 0)
        weekday = int(raw.get("weekday") or 0)
        if kind != "weekly" and not 0 <= days <= 366:
            raise InvalidRule("Le nombre de jours doit être compris entre 0 et 366.")
        if kind == "weekly" and not 1 <= weekday <= 7:
            raise InvalidRule("Le jour de la semaine doit être compris entre 1 (lundi) et 7.")
        return cls(kind=kind, at=at, days=days if kind != "weekly" else 0,
                   weekday=weekday if kind == "weekly" else 0)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "time": self.at.strftime("%H:%M")}
        if self.kind == "weekly":
            out["weekday"] = self.weekday
        else:
            out["days"] = self.days
        return out

    def local_day(self, day: date, working_day: WorkingDay = weekdays_only) -> date:
        """The date, on the commune's calendar, the deadline falls on."""
        if self.kind == "days_before":
            return day - timedelta(days=self.days)
        if self.kind == "working_days_before":
            current, left = day, self.days
            while left > 0:
                current -= timedelta(days=1)
                if working_day(current):
                    left -= 1
            return current
        monday = day - timedelta(days=day.weekday())
        return monday - timedelta(days=7) + timedelta(days=self.weekday - 1)

    def deadline(self, day: date, working_day: WorkingDay = weekdays_only,
                 tz: ZoneInfo = PARIS) -> datetime:
        """The last moment (aware, commune time) at which the day can still be changed."""
        return datetime.combine(self.local_day(day, working_day), self.at, tzinfo=tz)

    def label(self) -> str:
        """The rule as a sentence shows it: "la veille à 09:00"."""
        at = self.at.strftime("%H:%M")
        if self.kind == "days_before":
            if self.days == 0:
                return f"le jour même à {at}"
            if self.days == 1:
                return f"la veille à {at}"
            return f"{self.days} jours avant à {at}"
        if self.kind == "working_days_before":
            if self.days == 0:
                return f"le jour même à {at}"
            plural = "s" if self.days > 1 else ""
            return f"{self.days} jour{plural} ouvré{plural} avant à {at}"
        return f"le {DAYS[self.weekday - 1]} à {at} pour la semaine suivante"


def default_deadline(day: date, tz: ZoneInfo = PARIS) -> datetime:
    """Without a rule: until the day starts."""
    return datetime.combine(day, time(0, 0), tzinfo=tz)


def deadline_for(rule: DeadlineRule | None, day: date, working_day: WorkingDay = weekdays_only,
                 tz: ZoneInfo = PARIS) -> datetime:
    return rule.deadline(day, working_day, tz) if rule else default_deadline(day, tz)


def label_for(rule: DeadlineRule | None) -> str:
    return rule.label() if rule else "jusqu'à la veille à minuit"
