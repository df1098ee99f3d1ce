import datetime as dt
import itertools
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing import periods

UTC = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


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
