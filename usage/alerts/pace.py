"""The pace of a usage month, weighed by the organization's own week: the share of its call
time that fell in each hour of the week (in its timezone) over the earlier months. A dental
office that calls on weekday mornings is not projected to call through the weekend. Without
history the pace is plain: the same in every hour. Pure reads, used by the projected-overage
alert and by the spend forecast."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

from billing.subscriptions import periods
from usage.models import Call

HISTORY = dt.timedelta(days=91)
HOUR = dt.timedelta(hours=1)


def hour_of_week_weights(
    *, organization_id: int, tz: ZoneInfo, before: dt.datetime
) -> dict[tuple[int, int], Decimal] | None:
    """Call seconds per (ISO weekday, hour) in the organization's timezone over the months
    before `before`; None without any."""
    rows = (
        Call.objects.filter(
            organization_id=organization_id,
            connected_at__lt=before,
            connected_at__gte=before - HISTORY,
        )
        .annotate(
            weekday=ExtractIsoWeekDay("connected_at", tzinfo=tz),
            hour=ExtractHour("connected_at", tzinfo=tz),
        )
        .values("weekday", "hour")
        .annotate(seconds=Sum("billable_seconds"))
        .order_by()
    )
    weights = {(row["weekday"], row["hour"]): Decimal(row["seconds"]) for row in rows}
    return weights if any(weights.values()) else None


@dataclass(frozen=True)
class Projection:
    projected_seconds: int
    exhaustion_at: dt.datetime | None  # before the period ends; None if it lasts
    weighted: bool  # by the organization's hours of the week, else the plain pace


def call_time_projection(
    *,
    period: periods.Period,
    used: int,
    included: int,
    now: dt.datetime,
    tz: ZoneInfo,
    weights: dict[tuple[int, int], Decimal] | None,
) -> Projection:
    """Where the month's call time ends at the pace so far, weighed hour by hour."""

    def weight(hour_start: dt.datetime) -> Decimal:
        if weights is None:
            return Decimal(1)
        local = hour_start.astimezone(tz)
        return weights.get((local.isoweekday(), local.hour), Decimal(0))

    hours = []
    moment = period.start
    while moment < period.end:
        hours.append((moment, min(moment + HOUR, period.end)))
        moment += HOUR

    def share(start: dt.datetime, end: dt.datetime, hour: tuple) -> Decimal:
        """The weight of the part [start, end) of one hour."""
        overlap = (min(end, hour[1]) - max(start, hour[0])).total_seconds()
        if overlap <= 0:
            return Decimal(0)
        return weight(hour[0]) * Decimal(overlap) / Decimal((hour[1] - hour[0]).total_seconds())

    elapsed = sum((share(period.start, now, hour) for hour in hours), Decimal(0))
    if elapsed <= 0 and weights is not None:
        # This month's calls fall in hours the history never saw: the plain pace.
        return call_time_projection(
            period=period, used=used, included=included, now=now, tz=tz, weights=None
        )
    if elapsed <= 0 or used <= 0:
        return Projection(used, None, weights is not None)
    per_weight = Decimal(used) / elapsed
    total = Decimal(used)
    exhaustion = None
    for hour in hours:
        part = share(now, period.end, hour) * per_weight
        if part <= 0:
            continue
        if exhaustion is None and total < included <= total + part:
            start = max(now, hour[0])
            fraction = (Decimal(included) - total) / part
            seconds = Decimal((hour[1] - start).total_seconds()) * fraction
            exhaustion = start + dt.timedelta(seconds=int(seconds))
        total += part
    return Projection(int(total), exhaustion, weights is not None)
