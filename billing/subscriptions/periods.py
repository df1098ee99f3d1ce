"""Billing and usage periods: half-open `[start, end)` intervals anchored on a start day.

Month arithmetic happens on the calendar days of the subscription's timezone with
`relativedelta`, always counted from the original anchor's day, never from the previous
period: an anchor on the 31st gives 28/29 Feb, then 31 Mar again. Every boundary is the
first instant of its local day: midnight, or, where daylight saving skips midnight
(Asia/Beirut on 30 Mar 2025), the moment the day begins (01:00 there).
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


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of `day` in `tz`, in UTC: local midnight, or the end of the gap
    where daylight saving skips midnight, or the first of two midnights where it repeats."""
    # fold=0 reads a skipped wall time with the offset before the change, which is the very
    # instant the gap starts, and a repeated one as its first occurrence.
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(UTC)


def anchor_for(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The anchor of a subscription starting at `moment`: the start of that local day."""
    return day_start(moment.astimezone(tz).date(), tz)


def boundary(anchor: dt.datetime, tz: ZoneInfo, months: int) -> dt.datetime:
    """The start of the local day `months` months after the anchor's day (clamped to the
    month's last day)."""
    # On dates, never on the wall clock: an anchor whose day began at 01:00 must not carry
    # 01:00 into months whose day begins at midnight.
    return day_start(anchor.astimezone(tz).date() + relativedelta(months=months), tz)


def days_after(moment: dt.datetime, tz: ZoneInfo, days: int) -> dt.datetime:
    """The start of the local day `days` days after the day of `moment`."""
    return day_start(moment.astimezone(tz).date() + dt.timedelta(days=days), tz)


def nth_period(anchor: dt.datetime, tz: ZoneInfo, months: int, index: int) -> Period:
    """Period number `index` (0 is the first) of `months` months each."""
    return Period(
        boundary(anchor, tz, months * index),
        boundary(anchor, tz, months * (index + 1)),
    )


def period_index_at(anchor: dt.datetime, tz: ZoneInfo, months: int, at: dt.datetime) -> int:
    """The index of the period that contains `at` (negative before the anchor)."""
    elapsed = relativedelta(at.astimezone(tz).date(), anchor.astimezone(tz).date())
    index = (elapsed.years * 12 + elapsed.months) // months
    # The estimate is off by at most one where a clamped month end sits near `at`.
    while boundary(anchor, tz, months * index) > at:
        index -= 1
    while boundary(anchor, tz, months * (index + 1)) <= at:
        index += 1
    return index


def period_at(anchor: dt.datetime, tz: ZoneInfo, months: int, at: dt.datetime) -> Period:
    return nth_period(anchor, tz, months, period_index_at(anchor, tz, months, at))
