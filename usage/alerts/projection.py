"""Projected overage: when the pace of the current usage month would use up the included call
time before the month ends, the organization is alerted once, with the day it runs out (in
its timezone) and the money at stake.

The pace is weighed by the organization's own week: the share of its call time that fell in
each hour of the week (in its timezone) over the earlier months. A dental office that calls
on weekday mornings is not projected to call through the weekend. Without history the pace
is plain: the same in every hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay

from billing.models import Subscription
from billing.subscriptions import periods
from usage.alerts import notices
from usage.alerts.selectors import Metric
from usage.models import Call, UsageAlert, UsageCounter

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


def projected_overage_alerts_if_needed(*, now: dt.datetime) -> int:
    """The hourly job: alert each organization whose call time is projected to run out
    before its usage month ends, once per month. Returns how many were alerted."""
    subscriptions = Subscription.objects.filter(
        status__in=(Subscription.Status.TRIALING, Subscription.Status.ACTIVE),
        plan__included_call_seconds__gt=0,
        usage_period_start__lte=now,
        usage_period_end__gt=now,
    ).select_related("plan", "organization")
    subscriptions = list(subscriptions)
    used = {
        (organization_id, start): seconds
        for organization_id, start, seconds in UsageCounter.objects.filter(
            organization_id__in=[s.organization_id for s in subscriptions],
            period_start__in={s.usage_period_start for s in subscriptions},
        ).values_list("organization_id", "period_start", "call_seconds")
    }
    alerted = set(
        UsageAlert.objects.filter(
            unit=UsageAlert.Unit.PROJECTED, period_end__gt=now, period_start__lte=now
        ).values_list("organization_id", flat=True)
    )
    count = 0
    for subscription in subscriptions:
        seconds = used.get((subscription.organization_id, subscription.usage_period_start), 0)
        included = subscription.plan.included_call_seconds
        if subscription.organization_id in alerted or not 0 < seconds < included:
            continue
        count += _project(subscription=subscription, used=seconds, now=now)
    return count


@transaction.atomic
def _project(*, subscription: Subscription, used: int, now: dt.datetime) -> bool:
    period = subscription.usage_period
    tz = subscription.tzinfo
    projection = call_time_projection(
        period=period,
        used=used,
        included=subscription.plan.included_call_seconds,
        now=now,
        tz=tz,
        weights=hour_of_week_weights(
            organization_id=subscription.organization_id, tz=tz, before=period.start
        ),
    )
    if projection.exhaustion_at is None:
        return False
    try:
        with transaction.atomic():
            alert = UsageAlert.objects.create(
                organization_id=subscription.organization_id,
                metric=Metric.CALL_SECONDS,
                unit=UsageAlert.Unit.PROJECTED,
                value=Decimal(100),
                period_start=period.start,
                period_end=period.end,
                used=Decimal(used),
                limit=Decimal(subscription.plan.included_call_seconds),
                fired_at=now,
            )
    except IntegrityError:
        return False
    notices.projected_overage_send(
        subscription=subscription,
        period=period,
        alert=alert,
        exhaustion_at=projection.exhaustion_at,
        projected_seconds=projection.projected_seconds,
        weighted=projection.weighted,
    )
    return True
