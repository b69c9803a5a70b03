"""The rules without a database: deadlines on the commune's wall clock (across the daylight-
saving changes), opening days, eligibility, French wording."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.reservations import domain
from services.reservations.domain.deadlines import DeadlineRule, InvalidRule
from services.reservations.domain.opening import (
    ActivityPlace,
    CalendarException,
    CommuneCalendar,
    Opening,
    SchoolYear,
    is_working_day,
    public_holiday,
    school_holiday,
)
from services.reservations.domain.rules import Child, Eligibility, normalise_class
from services.reservations.domain.text import fr_date, fr_datetime

VEILLE_9H = DeadlineRule.from_dict({"kind": "days_before", "days": 1, "time": "09:00"})


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- deadlines ---------------------------------------------------------------------------------

def test_the_day_before_at_nine_for_the_monday_after_the_october_change():
    # Clocks go back on Sunday 25 October 2026 at 03:00: Sunday 09:00 is winter time (+01:00).
    deadline = VEILLE_9H.deadline(date(2026, 10, 26))
    assert deadline.isoformat() == "2026-10-25T09:00:00+01:00"
    assert deadline.astimezone(UTC) == utc(2026, 10, 25, 8, 0)


def test_two_days_before_spans_the_october_change():
    rule = DeadlineRule.from_dict({"kind": "days_before", "days": 2, "time": "09:00"})
    deadline = rule.deadline(date(2026, 10, 26))
    # Saturday is still summer time: 09:00+02:00, not 09:00 computed from Monday's offset.
    assert deadline.isoformat() == "2026-10-24T09:00:00+02:00"
    assert deadline.astimezone(UTC) == utc(2026, 10, 24, 7, 0)


def test_the_day_before_at_nine_after_the_march_change():
    # Clocks go forward on Sunday 28 March 2027 at 02:00: Sunday 09:00 is summer time.
    deadline = VEILLE_9H.deadline(date(2027, 3, 29))
    assert deadline.astimezone(UTC) == utc(2027, 3, 28, 7, 0)


def test_a_wall_time_that_does_not_exist_is_read_before_the_change():
    rule = DeadlineRule.from_dict({"kind": "days_before", "days": 1, "time": "02:30"})
    assert rule.deadline(date(2027, 3, 29)).astimezone(UTC) == utc(2027, 3, 28, 1, 30)


def test_working_days_skip_weekends_and_public_holidays():
    rule = DeadlineRule.from_dict({"kind": "working_days_before", "days": 2, "time": "12:00"})
    # Monday 2 November: Friday 30 (1), Thursday 29 October (2).
    assert rule.deadline(date(2026, 11, 2), is_working_day).date() == date(2026, 10, 29)
    # Thursday 12 November: Wednesday 11 is Armistice, so Tuesday 10 (1), Monday 9 (2).
    assert rule.deadline(date(2026, 11, 12), is_working_day).date() == date(2026, 11, 9)
    # Weekends alone when no holiday source is given.
    assert rule.deadline(date(2026, 11, 12)).date() == date(2026, 11, 10)


def test_weekly_rule_closes_the_following_week_on_the_given_weekday():
    rule = DeadlineRule.from_dict({"kind": "weekly", "weekday": 4, "time": "12:00"})
    # Every day of the week of Monday 9 November closes on Thursday 5 November at noon.
    for day in range(9, 16):
        assert rule.deadline(date(2026, 11, day)).isoformat() == "2026-11-05T12:00:00+01:00"
    # Across the change: the week of 2 November closes Thursday 29 October, winter time.
    assert rule.deadline(date(2026, 11, 4)).astimezone(UTC) == utc(2026, 10, 29, 11, 0)


@pytest.mark.parametrize(("raw", "label"), [
    ({"kind": "days_before", "days": 1, "time": "09:00"}, "la veille à 09:00"),
    ({"kind": "days_before", "days": 0, "time": "10:00"}, "le jour même à 10:00"),
    ({"kind": "days_before", "days": 3, "time": "18:00"}, "3 jours avant à 18:00"),
    ({"kind": "working_days_before", "days": 2, "time": "12:00"},
     "2 jours ouvrés avant à 12:00"),
    ({"kind": "weekly", "weekday": 4, "time": "12:00"},
     "le jeudi à 12:00 pour la semaine suivante"),
])
def test_rules_read_in_french(raw, label):
    assert DeadlineRule.from_dict(raw).label() == label
    assert DeadlineRule.from_dict(raw).as_dict()["kind"] == raw["kind"]


@pytest.mark.parametrize("raw", [
    {"kind": "someday", "time": "09:00"},
    {"kind": "days_before", "days": 1, "time": "9h"},
    {"kind": "weekly", "weekday": 8, "time": "09:00"},
])
def test_invalid_rules_are_refused(raw):
    with pytest.raises(InvalidRule):
        DeadlineRule.from_dict(raw)


# --- opening days ------------------------------------------------------------------------------

PLACE = ActivityPlace("activity", "service", "site")
SCHOOL_DAYS = Opening(frozenset({1, 2, 4, 5}))
YEAR = SchoolYear("y", "2026-2027", date(2026, 9, 1), date(2027, 8, 31))


def calendar(*exceptions: CalendarException) -> CommuneCalendar:
    return CommuneCalendar(zone="C", school_years=(YEAR,), exceptions=exceptions)


def test_holiday_sources():
    assert public_holiday(date(2026, 11, 11)) == "Armistice"
    assert public_holiday(date(2026, 11, 12)) is None
    assert school_holiday(date(2026, 12, 21), "C") == "Vacances de Noël"
    assert school_holiday(date(2026, 12, 18), "C") is None
    assert school_holiday(date(2027, 2, 8), "C") == "Vacances d'hiver"
    assert school_holiday(date(2027, 2, 22), "A") is not None  # zone A is a week later


def test_an_open_school_day():
    assert calendar().closed_reason(date(2026, 12, 7), PLACE, SCHOOL_DAYS) is None


@pytest.mark.parametrize(("day", "reason"), [
    (date(2026, 12, 9), "l'activité n'a pas lieu le mercredi"),
    (date(2027, 5, 17), "jour férié : Lundi de Pentecôte"),
    (date(2026, 12, 21), "vacances scolaires : Vacances de Noël"),
    (date(2026, 8, 31), "en dehors de l'année scolaire"),
])
def test_closed_days_say_why(day, reason):
    assert calendar().closed_reason(day, PLACE, SCHOOL_DAYS) == reason


def test_holiday_modes_and_periods():
    holidays_only = Opening(frozenset(range(1, 6)), school_holidays="only")
    assert calendar().closed_reason(date(2026, 12, 21), PLACE, holidays_only) is None
    assert calendar().closed_reason(date(2026, 12, 7), PLACE, holidays_only) is not None
    summer = Opening(frozenset(range(1, 6)), periods=((date(2027, 7, 5), date(2027, 7, 30)),),
                     school_holidays="open")
    assert calendar().closed_reason(date(2027, 7, 6), PLACE, summer) is None
    assert calendar().closed_reason(date(2027, 8, 3), PLACE, summer) == (
        "en dehors des périodes d'ouverture de l'activité")


def test_the_commune_overrides_the_calendar_most_specific_first():
    strike = CalendarException("e1", "closure", date(2026, 12, 7), date(2026, 12, 8), "grève")
    worked = CalendarException("e2", "opening", date(2026, 11, 11), date(2026, 11, 11),
                               "cérémonie", activity_id="activity")
    other = CalendarException("e3", "opening", date(2026, 12, 7), date(2026, 12, 7),
                              "autre site", site_id="elsewhere")
    here = CalendarException("e4", "opening", date(2026, 12, 8), date(2026, 12, 8),
                             "maintenu ici", site_id="site")
    cal = calendar(strike, worked, other, here)
    assert cal.closed_reason(date(2026, 12, 7), PLACE, SCHOOL_DAYS) == "fermeture : grève"
    assert cal.closed_reason(date(2026, 12, 8), PLACE, SCHOOL_DAYS) is None  # site beats commune
    assert cal.closed_reason(date(2026, 11, 11), PLACE, SCHOOL_DAYS) is None


# --- eligibility and wording -------------------------------------------------------------------

def test_class_and_age_ranges():
    rule = Eligibility(min_class="CP", max_class="CM2")
    lea = Child("1", "Léa", birth_date=date(2017, 3, 14), class_name="CM1")
    hugo = Child("2", "Hugo", birth_date=date(2020, 9, 2), class_name="GS")
    assert rule.refusal(lea, date(2026, 12, 7)) is None
    assert rule.refusal(hugo, date(2026, 12, 7)) == "Hugo est en GS"
    assert rule.label() == "du CP au CM2"
    ages = Eligibility(min_age=3, max_age=6)
    assert ages.refusal(hugo, date(2026, 12, 7)) is None
    assert ages.refusal(lea, date(2026, 12, 7)) == "Léa a 9 ans"
    assert normalise_class("cm1-cm2") == "CM1"
    assert normalise_class("6ème") == "6E"


def test_french_dates():
    assert fr_date(date(2026, 12, 1)) == "mardi 1er décembre 2026"
    assert fr_datetime(utc(2026, 10, 25, 8, 0)) == "dimanche 25 octobre 2026 à 09:00"


def test_a_refusal_names_the_child_the_day_and_the_rule():
    activity = domain.Activity(
        id="a", label="Repas (restauration scolaire)", place=PLACE, payment_mode="monthly",
        unit_price_cents=410, opening=SCHOOL_DAYS, service_name="Restauration scolaire",
        booking_deadline=VEILLE_9H)
    child = Child("c", "Léa", birth_date=date(2017, 3, 14), class_name="CM1")
    late = domain.booking_refusal(child, activity, date(2026, 10, 26), utc(2026, 10, 25, 8, 1),
                                  calendar(), {"y": "validated"})
    assert late is None or late.rule == "closed"  # 26 October: Toussaint holidays
    refusal = domain.booking_refusal(child, activity, date(2026, 12, 7),
                                     utc(2026, 12, 6, 8, 1), calendar(), {"y": "validated"})
    assert refusal.rule == "deadline"
    assert refusal.message == (
        "Réservation impossible pour Léa le lundi 7 décembre 2026 à l'activité « Repas "
        "(restauration scolaire) » : la date limite de réservation (la veille à 09:00) était "
        "le dimanche 6 décembre 2026 à 09:00.")
    missing = domain.booking_refusal(child, activity, date(2026, 12, 7), utc(2026, 12, 1, 8),
                                     calendar(), {})
    assert missing.rule == "not_enrolled"
    assert "Léa" in missing.message and "2026-2027" in missing.message
