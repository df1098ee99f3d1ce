import datetime as dt
import functools
import itertools
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.subscriptions import periods
from tests.helpers import utc

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


def starts(anchor, tz, months, count):
    return [periods.nth_period(anchor, tz, months, index).start for index in range(count)]


def test_subscribed_on_the_15th_runs_from_the_15th_to_the_14th():
    anchor = periods.anchor_for(utc(2026, 3, 15, 14, 23), UTC)

    period = periods.period_at(anchor, UTC, 1, utc(2026, 3, 20))

    assert (period.start, period.end) == (utc(2026, 3, 15), utc(2026, 4, 15))
    assert period.label(UTC) == "15 Mar – 14 Apr 2026"
    assert period.last_day(UTC) == dt.date(2026, 4, 14)


def test_anchor_on_the_31st_clamps_to_month_end_and_returns_to_the_31st():
    anchor = utc(2026, 1, 31)

    assert [start.date() for start in starts(anchor, UTC, 1, 5)] == [
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
        dt.date(2026, 4, 30),
        dt.date(2026, 5, 31),
    ]


def test_leap_years_give_february_29th():
    assert periods.nth_period(utc(2024, 1, 30), UTC, 1, 1).start == utc(2024, 2, 29)
    annual = [start.date() for start in starts(utc(2024, 2, 29), UTC, 12, 5)]
    assert annual == [
        dt.date(2024, 2, 29),
        dt.date(2025, 2, 28),
        dt.date(2026, 2, 28),
        dt.date(2027, 2, 28),
        dt.date(2028, 2, 29),
    ]


def test_periods_follow_local_midnight_across_daylight_saving_changes():
    anchor = periods.anchor_for(utc(2026, 2, 10, 15), NEW_YORK)

    march = periods.nth_period(anchor, NEW_YORK, 1, 1)

    # 10 Mar is after the switch to summer time: midnight is 04:00 UTC instead of 05:00.
    assert anchor == utc(2026, 2, 10, 5)
    assert march.start == utc(2026, 3, 10, 4)
    assert march.label(NEW_YORK) == "10 Mar – 9 Apr 2026"


def test_upgrade_at_the_exact_middle_of_a_30_day_period_has_half_remaining():
    period = periods.Period(utc(2026, 4, 1), utc(2026, 5, 1))

    assert period.seconds == 30 * 86_400
    assert period.fraction_remaining(utc(2026, 4, 16)) == Fraction(1, 2)
    assert period.fraction_remaining(utc(2026, 3, 1)) == 1
    assert period.fraction_remaining(utc(2026, 6, 1)) == 0


def test_a_period_must_end_after_it_starts():
    with pytest.raises(ValueError, match="must end after it starts"):
        periods.Period(utc(2026, 4, 1), utc(2026, 4, 1))


def test_label_spanning_a_new_year_names_both_years():
    assert periods.Period(utc(2026, 12, 15), utc(2027, 1, 15)).label(UTC) == (
        "15 Dec 2026 – 14 Jan 2027"
    )


ZONES = st.sampled_from(
    [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Sydney",
        "Asia/Kolkata",
        "America/Sao_Paulo",
    ]
)
MOMENTS = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1))


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, zone=ZONES, months=st.sampled_from([1, 12]), renewals=st.integers(1, 130))
def test_periods_tile_time_without_gap_or_overlap(start, zone, months, renewals):
    tz = ZoneInfo(zone)
    anchor = periods.anchor_for(start.replace(tzinfo=dt.UTC), tz)
    anchor_day = anchor.astimezone(tz).day

    chain = [periods.nth_period(anchor, tz, months, index) for index in range(renewals + 1)]

    for earlier, later in itertools.pairwise(chain):
        assert earlier.end == later.start
    for period in chain:
        local = period.start.astimezone(tz)
        last_day_of_month = (local.replace(day=28) + dt.timedelta(days=4)).replace(
            day=1
        ) - dt.timedelta(days=1)
        assert local.day == min(anchor_day, last_day_of_month.day)
        assert period.end > period.start


@settings(max_examples=300, deadline=None)
@given(
    start=MOMENTS,
    zone=ZONES,
    months=st.sampled_from([1, 12]),
    later=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=365 * 30)),
)
def test_every_moment_after_the_anchor_lies_in_exactly_one_period(start, zone, months, later):
    tz = ZoneInfo(zone)
    anchor = periods.anchor_for(start.replace(tzinfo=dt.UTC), tz)
    moment = anchor + later

    index = periods.period_index_at(anchor, tz, months, moment)

    assert moment in periods.nth_period(anchor, tz, months, index)
    assert moment not in periods.nth_period(anchor, tz, months, index - 1)
    assert moment not in periods.nth_period(anchor, tz, months, index + 1)


BEIRUT = ZoneInfo("Asia/Beirut")


def test_a_day_whose_midnight_is_skipped_begins_when_the_clocks_jump():
    # Beirut skipped from 00:00 to 01:00 on 30 Mar 2025: the day began at 01:00 (+03:00).
    anchor = periods.anchor_for(utc(2025, 3, 30, 9), BEIRUT)

    assert anchor == utc(2025, 3, 29, 22)
    assert anchor.astimezone(BEIRUT).hour == 1


def test_months_after_an_anchor_on_a_skipped_midnight_start_at_midnight():
    anchor = periods.anchor_for(utc(2025, 3, 30, 9), BEIRUT)

    second, third = (periods.nth_period(anchor, BEIRUT, 1, index) for index in (1, 2))

    assert second.start.astimezone(BEIRUT) == dt.datetime(2025, 4, 30, tzinfo=BEIRUT)
    assert third.start.astimezone(BEIRUT) == dt.datetime(2025, 5, 30, tzinfo=BEIRUT)
    assert second.label(BEIRUT) == "30 Apr – 29 May 2025"
    # Half past midnight on 30 Apr already belongs to the second month.
    assert periods.period_index_at(anchor, BEIRUT, 1, utc(2025, 4, 29, 21, 30)) == 1


def test_a_trial_ends_at_the_start_of_its_last_day_after_a_skipped_midnight():
    anchor = periods.anchor_for(utc(2025, 3, 30, 9), BEIRUT)

    assert periods.days_after(anchor, BEIRUT, 14) == dt.datetime(2025, 4, 13, tzinfo=BEIRUT)


def _first_instant_of_its_day(moment: dt.datetime, tz: ZoneInfo) -> bool:
    just_before = moment - dt.timedelta(microseconds=1)
    return just_before.astimezone(tz).date() < moment.astimezone(tz).date()


# Zones whose clocks change at midnight, skipping it in spring or repeating it in autumn.
MIDNIGHT_CHANGE_ZONES = st.sampled_from(
    [
        "America/Santiago",
        "America/Havana",
        "Asia/Beirut",
        "Africa/Cairo",
        "Atlantic/Azores",
        "America/Asuncion",
    ]
)


@functools.cache
def _clock_change_days(zone: str) -> list[dt.date]:
    """The days of 2000–2040 on which the zone's offset changed."""
    tz = ZoneInfo(zone)
    first = dt.date(2000, 1, 1)
    noons = [
        dt.datetime.combine(first + dt.timedelta(days=n), dt.time(12), tzinfo=tz).utcoffset()
        for n in range(366 * 40)
    ]
    return [first + dt.timedelta(days=n) for n in range(1, len(noons)) if noons[n] != noons[n - 1]]


@st.composite
def starts_in(draw, zone: str):
    """A moment in `zone`: on a day the clocks changed (often), or on any day."""
    day = draw(
        st.one_of(
            st.sampled_from(_clock_change_days(zone)),
            st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 1, 1)),
        )
    )
    local = dt.datetime.combine(day, dt.time(12), tzinfo=ZoneInfo(zone))
    return local.astimezone(dt.UTC) + draw(st.timedeltas(dt.timedelta(hours=-9), dt.timedelta(0)))


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    zone=MIDNIGHT_CHANGE_ZONES,
    months=st.sampled_from([1, 12]),
    renewals=st.integers(1, 60),
)
def test_periods_start_at_the_first_instant_of_their_day_where_midnight_moves(
    data, zone, months, renewals
):
    tz = ZoneInfo(zone)
    start = data.draw(starts_in(zone))
    anchor = periods.anchor_for(start, tz)
    anchor_day = anchor.astimezone(tz).day

    chain = [periods.nth_period(anchor, tz, months, index) for index in range(renewals + 1)]

    assert anchor.astimezone(tz).date() == start.astimezone(tz).date()
    for earlier, later in itertools.pairwise(chain):
        assert earlier.end == later.start
    for period in chain:
        assert _first_instant_of_its_day(period.start, tz)
        assert _first_instant_of_its_day(period.end, tz)
        local = period.start.astimezone(tz).date()
        next_month = (local.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        last_day_of_month = (next_month - dt.timedelta(days=1)).day
        assert local.day == min(anchor_day, last_day_of_month)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    zone=MIDNIGHT_CHANGE_ZONES,
    later=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=365 * 5)),
)
def test_every_moment_lies_in_the_usage_month_of_its_local_day(data, zone, later):
    tz = ZoneInfo(zone)
    anchor = periods.anchor_for(data.draw(starts_in(zone)), tz)
    moment = anchor + later

    period = periods.period_at(anchor, tz, 1, moment)

    assert moment in period
    day = moment.astimezone(tz).date()
    assert period.start.astimezone(tz).date() <= day <= period.last_day(tz)
