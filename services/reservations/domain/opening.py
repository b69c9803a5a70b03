"""When an activity is open: weekdays, periods, school years, holidays, the commune's own
closures and openings.

French public holidays come from ``holidays`` (France), school holidays by zone (A, B, C) from
``vacances_scolaires_france``. The commune overrides both with *exceptions*: a closure (a
strike, a school trip, a "pont") or an opening (a public holiday worked, a holiday week when
the centre opens), for the whole commune or for one service, site or activity. The most
specific exception wins; at equal specificity a closure wins.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

SCHOOL_HOLIDAY_MODES = ("closed", "open", "only")  # closed in, ignores, or open only in them
PUBLIC_HOLIDAY_MODES = ("closed", "open")
ZONES = ("A", "B", "C")


# Building the holiday tables costs about a second of CPU (the ``holidays`` package, the CSV
# of ``vacances_scolaires_france``): once per process, under this lock, so that the threads of
# a fresh gunicorn worker do not all build them at once; ``warm`` does it before any request.
_building = threading.RLock()


@functools.lru_cache(maxsize=64)
def _public_holidays_of(year: int) -> dict[date, str]:
    import holidays

    return dict(holidays.France(years=[year], language="fr").items())


def _public_holidays(year: int) -> dict[date, str]:
    with _building:
        return _public_holidays_of(year)


def warm(today: date) -> threading.Thread:
    """Build this year's and next year's tables in the background (web processes at start)."""
    def build() -> None:
        for year in (today.year, today.year + 1):
            _public_holidays(year)
            for zone in ZONES:
                _school_holidays(year, zone)

    thread = threading.Thread(target=build, name="holidays-warm", daemon=True)
    thread.start()
    return thread


def public_holiday(day: date) -> str | None:
    """The French public holiday of that day (its French name), if any."""
    return _public_holidays(day.year).get(day)


@functools.lru_cache(maxsize=1)
def _school_dates_table():
    from vacances_scolaires_france import SchoolHolidayDates

    return SchoolHolidayDates()


def _school_dates():
    with _building:
        return _school_dates_table()


@functools.lru_cache(maxsize=256)
def _school_holidays(year: int, zone: str) -> dict[date, str]:
    data = _school_dates()
    if not data.min_year <= year <= data.max_year:
        return {}
    return {day: row["nom_vacances"]
            for day, row in data.holidays_for_year_and_zone(year, zone).items()}


def school_holiday(day: date, zone: str) -> str | None:
    """The school holidays of ``zone`` that day covers (their name), if any."""
    return _school_holidays(day.year, zone).get(day)


def is_working_day(day: date) -> bool:
    """Monday to Friday, not a public holiday ("jour ouvré")."""
    return day.weekday() < 5 and public_holiday(day) is None


def days_between(start: date, end: date) -> Iterator[date]:
    current = start
    while current <= end:
        yield current
        current += timedelta(days=1)


@dataclass(frozen=True)
class SchoolYear:
    id: str
    label: str
    starts_on: date
    ends_on: date

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


@dataclass(frozen=True)
class CalendarException:
    id: str
    kind: str  # closure | opening
    starts_on: date
    ends_on: date
    label: str
    service_id: str | None = None
    site_id: str | None = None
    activity_id: str | None = None

    def applies(self, day: date, activity: ActivityPlace) -> bool:
        if not self.starts_on <= day <= self.ends_on:
            return False
        if self.activity_id and self.activity_id != activity.activity_id:
            return False
        if self.site_id and self.site_id != activity.site_id:
            return False
        return not (self.service_id and self.service_id != activity.service_id)

    @property
    def specificity(self) -> int:
        if self.activity_id:
            return 3
        return 2 if (self.site_id or self.service_id) else 1


@dataclass(frozen=True)
class ActivityPlace:
    """Which activity, of which service, at which site (what exceptions are scoped by)."""

    activity_id: str
    service_id: str
    site_id: str


@dataclass(frozen=True)
class Opening:
    """An activity's own opening rules."""

    weekdays: frozenset[int]  # ISO: 1 = Monday ... 7 = Sunday
    periods: tuple[tuple[date, date], ...] = ()  # empty: the commune's school years
    school_holidays: str = "closed"
    public_holidays: str = "closed"

    @classmethod
    def from_parts(cls, weekdays: Iterable[int], periods: Iterable[dict] | None,
                   school_holidays: str, public_holidays: str) -> Opening:
        spans = tuple(
            (p["from"] if isinstance(p["from"], date) else date.fromisoformat(p["from"]),
             p["to"] if isinstance(p["to"], date) else date.fromisoformat(p["to"]))
            for p in periods or ())
        return cls(frozenset(int(w) for w in weekdays), spans, school_holidays,
                   public_holidays)


@dataclass(frozen=True)
class CommuneCalendar:
    """A commune's calendar: zone, school years, exceptions, and the holiday sources."""

    zone: str = "C"
    school_years: tuple[SchoolYear, ...] = ()
    exceptions: tuple[CalendarException, ...] = ()
    public_holiday: Callable[[date], str | None] = field(default=public_holiday)
    school_holiday: Callable[[date, str], str | None] = field(default=school_holiday)

    def school_year_of(self, day: date) -> SchoolYear | None:
        return next((y for y in self.school_years if y.covers(day)), None)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and self.public_holiday(day) is None

    def exception_for(self, day: date, place: ActivityPlace) -> CalendarException | None:
        found = [e for e in self.exceptions if e.applies(day, place)]
        if not found:
            return None
        return max(found, key=lambda e: (e.specificity, e.kind == "closure"))

    def closed_reason(self, day: date, place: ActivityPlace, opening: Opening) -> str | None:
        """Why the activity is closed that day (French, for people), or None when open."""
        exception = self.exception_for(day, place)
        if exception is not None:
            return None if exception.kind == "opening" else f"fermeture : {exception.label}"
        if opening.periods:
            if not any(start <= day <= end for start, end in opening.periods):
                return "en dehors des périodes d'ouverture de l'activité"
        elif self.school_year_of(day) is None:
            return "en dehors de l'année scolaire"
        if day.isoweekday() not in opening.weekdays:
            from .text import DAYS

            return f"l'activité n'a pas lieu le {DAYS[day.weekday()]}"
        holiday = self.public_holiday(day)
        if holiday and opening.public_holidays == "closed":
            return f"jour férié : {holiday}"
        vacation = self.school_holiday(day, self.zone)
        if vacation and opening.school_holidays == "closed":
            return f"vacances scolaires : {vacation}"
        if not vacation and opening.school_holidays == "only":
            return "l'activité n'a lieu que pendant les vacances scolaires"
        return None

    def describe(self, day: date) -> dict:
        """What the commune's calendar says of a day (for agents)."""
        return {"date": day, "public_holiday": self.public_holiday(day),
                "school_holiday": self.school_holiday(day, self.zone),
                "school_year": (y.label if (y := self.school_year_of(day)) else None),
                "exceptions": [e for e in self.exceptions if e.starts_on <= day <= e.ends_on]}
