"""Projected overage: when the pace of the current usage month would use up the included call
time before the month ends, the organization is alerted once, with the day it runs out (in
its timezone) and the money at stake. The pace is weighed by the organization's own week
(`usage.alerts.pace`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction

from billing.models import Subscription
from usage.alerts import notices
from usage.alerts.pace import call_time_projection, hour_of_week_weights
from usage.alerts.selectors import Metric
from usage.models import UsageAlert, UsageCounter


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
