"""Billing and usage periods: half-open `[start, end)` intervals anchored on a start day.

Month arithmetic happens on the wall clock of the subscription's timezone with
`relativedelta`, always counted from the original anchor, never from the previous period:
an anchor on the 31st gives 28/29 Feb, then 31 Mar again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.datetime
    end: dt.datetime

    def __post_init__(self):
        if self.end <= self.start:
            raise ValueError(f"A period must end after it starts: {self.start} → {self.end}")

    def __contains__(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def fraction_remaining(self, at: dt.datetime) -> Fraction:
        """Exact share of the period still to come at `at` (1 at the start, 0 at the end)."""
        at = min(max(at, self.start), self.end)
        remaining = self.end - at
        return Fraction(
            remaining // dt.timedelta(microseconds=1),
            (self.end - self.start) // dt.timedelta(microseconds=1),
        )

    def last_day(self, tz: ZoneInfo) -> dt.date:
        """The last calendar day the period covers, in `tz` (the day before the next start)."""
        return (self.end.astimezone(tz) - dt.timedelta(microseconds=1)).date()

    def label(self, tz: ZoneInfo) -> str:
        """`15 Mar – 14 Apr 2026`: the covered days, as a person reads them."""
        first = self.start.astimezone(tz).date()
        last = self.last_day(tz)
        if first.year == last.year:
            return f"{first:%-d %b} – {last:%-d %b %Y}"
        return f"{first:%-d %b %Y} – {last:%-d %b %Y}"


def anchor_for(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The anchor of a subscription starting at `moment`: local midnight of that day, in UTC."""
    local_day = moment.astimezone(tz).date()
    return dt.datetime.combine(local_day, dt.time.min, tzinfo=tz).astimezone(UTC)


def boundary(anchor: dt.datetime, tz: ZoneInfo, months: int) -> dt.datetime:
    """The instant `months` months after `anchor`, on the wall clock of `tz`."""
    # Aware arithmetic keeps the wall clock; the offset is the one in force on the new date.
    return (anchor.astimezone(tz) + relativedelta(months=months)).astimezone(UTC)


def days_after(moment: dt.datetime, tz: ZoneInfo, days: int) -> dt.datetime:
    """The instant `days` days after `moment`, on the wall clock of `tz`."""
    return (moment.astimezone(tz) + relativedelta(days=days)).astimezone(UTC)


def nth_period(anchor: dt.datetime, tz: ZoneInfo, months: int, index: int) -> Period:
    """Period number `index` (0 is the first) of `months` months each."""
    return Period(
        boundary(anchor, tz, months * index),
        boundary(anchor, tz, months * (index + 1)),
    )


def period_index_at(anchor: dt.datetime, tz: ZoneInfo, months: int, at: dt.datetime) -> int:
    """The index of the period that contains `at` (negative before the anchor)."""
    elapsed = relativedelta(at.astimezone(tz), anchor.astimezone(tz))
    index = (elapsed.years * 12 + elapsed.months) // months
    # The estimate is off by at most one where a clamped month end sits near `at`.
    while boundary(anchor, tz, months * index) > at:
        index -= 1
    while boundary(anchor, tz, months * (index + 1)) <= at:
        index += 1
    return index


def period_at(anchor: dt.datetime, tz: ZoneInfo, months: int, at: dt.datetime) -> Period:
    return nth_period(anchor, tz, months, period_index_at(anchor, tz, months, at))
