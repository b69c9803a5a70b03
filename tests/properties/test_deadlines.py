"""Properties of the booking and cancellation deadlines (reservations' domain), in the three
forms communes use, around the clock changes of Europe/Paris."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from services.reservations.domain.deadlines import (
    DeadlineRule,
    deadline_for,
    default_deadline,
    weekdays_only,
)
from services.reservations.domain.text import PARIS

# Days around the clock changes are the interesting ones: the last Sundays of March and
# October, for the years the portal will live through.
_CHANGES = [date(y, m, 31) - timedelta(days=(date(y, m, 31).weekday() + 1) % 7)
            for y in range(2024, 2036) for m in (3, 10)]
days = st.one_of(
    st.dates(date(2024, 1, 1), date(2035, 12, 31)),
    st.builds(lambda change, shift: change + timedelta(days=shift),
              st.sampled_from(_CHANGES), st.integers(-10, 10)),
)
wall_times = st.one_of(
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.sampled_from([time(2, 0), time(2, 30), time(2, 59), time(3, 0), time(0, 0),
                     time(23, 59)]),
)
day_rules = st.builds(DeadlineRule, kind=st.sampled_from(["days_before", "working_days_before"]),
                      at=wall_times, days=st.integers(0, 30))
weekly_rules = st.builds(DeadlineRule, kind=st.just("weekly"), at=wall_times,
                         weekday=st.integers(1, 7))
rules = st.one_of(day_rules, weekly_rules)
# A commune's calendar: weekends plus any set of closed days (public holidays, bridges).
closed_days = st.frozensets(st.dates(date(2023, 10, 1), date(2035, 12, 31)), max_size=40)


def in_gap(moment: datetime) -> bool:
    """A wall time that does not exist in Paris (the hour skipped in March)."""
    return moment.astimezone(UTC).astimezone(PARIS).replace(tzinfo=None) != \
        moment.replace(tzinfo=None)


@given(rules, days)
def test_the_deadline_is_on_the_commune_wall_clock(rule, day):
    deadline = rule.deadline(day)
    assert deadline.tzinfo is PARIS
    assert deadline.date() == rule.local_day(day)
    assert deadline.time() == rule.at
    # Read back through UTC, the wall time is the rule's, or one hour later when the rule's
    # time does not exist that night (02:30 on the last Sunday of March).
    back = deadline.astimezone(UTC).astimezone(PARIS)
    shift = datetime.combine(back.date(), back.time()) - datetime.combine(deadline.date(),
                                                                          deadline.time())
    assert shift == timedelta(0) or (in_gap(deadline) and shift == timedelta(hours=1))
    assert deadline.utcoffset() in (timedelta(hours=1), timedelta(hours=2))


@given(st.builds(DeadlineRule, kind=st.just("days_before"), at=wall_times,
                 days=st.integers(0, 366)), days)
def test_days_before_counts_calendar_days_whatever_the_clocks_do(rule, day):
    assert (day - rule.deadline(day).date()).days == rule.days


@given(st.builds(DeadlineRule, kind=st.just("working_days_before"), at=wall_times,
                 days=st.integers(1, 30)), days, closed_days)
def test_working_days_before_lands_on_a_working_day_with_exactly_n_of_them(rule, day, closed):
    def working(d: date) -> bool:
        return weekdays_only(d) and d not in closed

    local = rule.local_day(day, working)
    assert local < day
    assert working(local)
    between = [local + timedelta(days=i) for i in range(1, (day - local).days)]
    assert sum(working(d) for d in between) == rule.days - 1


@given(weekly_rules, days)
def test_weekly_is_the_same_deadline_for_every_day_of_a_week_and_falls_the_week_before(rule,
                                                                                        day):
    monday = day - timedelta(days=day.weekday())
    deadline = rule.deadline(day)
    assert all(rule.deadline(monday + timedelta(days=i)) == deadline for i in range(7))
    assert deadline.isoweekday() == rule.weekday
    assert monday - timedelta(days=7) <= deadline.date() < monday


@given(rules, days, days, closed_days)
def test_a_later_day_never_has_an_earlier_deadline(rule, first, second, closed):
    def working(d: date) -> bool:
        return weekdays_only(d) and d not in closed

    assume(first <= second)
    assert rule.deadline(first, working) <= rule.deadline(second, working)


@given(rules, days)
def test_a_rule_of_days_before_closes_before_the_day_starts(rule, day):
    assume(rule.kind == "weekly" or rule.days >= 1)
    assert rule.deadline(day) < default_deadline(day)


@given(rules)
def test_rules_survive_their_stored_form(rule):
    assert DeadlineRule.from_dict(rule.as_dict()) == rule


@given(days)
def test_without_a_rule_the_day_is_open_until_it_starts(day):
    deadline = deadline_for(None, day)
    assert deadline == datetime.combine(day, time(0, 0), tzinfo=PARIS)
