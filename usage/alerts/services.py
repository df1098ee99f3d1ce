"""Writes of usage alerts: evaluating a change of usage against the thresholds, the
organization's own thresholds, and snoozing.

`usage_alerts_evaluate` runs inside the transaction that updated a counter, with the value
before and after the update as that transaction saw them (`UPDATE ... RETURNING`: writers
of one counter take turns on its row, so each sees its own before and after). A threshold
whose level lies in (before, after] was crossed by this writer and no other; its alert row
is unique per usage period besides, so a level crossed again later in the period (storage
going down and up) alerts once. The notice leaves after commit, through the notification
center.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from billing.errors import BillingError, ErrorCode
from billing.models import Organization, Plan, Subscription
from billing.subscriptions import periods
from usage.alerts import notices
from usage.alerts.selectors import (
    Metric,
    Unit,
    metric_applies,
    metric_limit,
    threshold_rows,
    thresholds_for,
)
from usage.models import AlertSnooze, AlertThreshold, UsageAlert
from usage.selectors import call_overage_cost


@dataclass(frozen=True)
class Change:
    """One metric of one usage period, before and after a write, in its base unit."""

    metric: str
    before: Decimal
    after: Decimal


def call_time_changes(
    *, plan: Plan, period: periods.Period, trial: bool, before: int, after: int
) -> list[Change]:
    """Call seconds, and on plans that charge overage (outside the free trial) the overage
    spend they make, before and after."""
    changes = [Change(Metric.CALL_SECONDS, Decimal(before), Decimal(after))]
    included = plan.included_call_seconds
    if plan.charges_overage and not trial and included is not None and after > included:

        def spend(seconds: int) -> Decimal:
            return call_overage_cost(plan=plan, overage_seconds=seconds - included).amount

        spent_before, spent_after = spend(before), spend(after)
        changes += [
            Change(Metric.OVERAGE_SPEND, spent_before, spent_after),
            Change(Metric.OVERAGE_CAP, spent_before, spent_after),
        ]
    return changes


def usage_alerts_evaluate(
    *,
    subscription: Subscription,
    period: periods.Period,
    changes: list[Change],
    rows: list[AlertThreshold] | None = None,
    now: dt.datetime,
) -> list[UsageAlert]:
    """Record the alerts these changes crossed; runs inside the caller's transaction, which
    then queues their notices (`usage_alert_notices_queue`). `rows`: the organization's
    threshold rows, when the caller read them in bulk."""
    changes = [change for change in changes if change.after > change.before]
    if not changes:
        return []
    plan = subscription.plan
    if rows is None:
        rows = threshold_rows(organization_ids=[subscription.organization_id])[
            subscription.organization_id
        ]
    recorded = []
    for change in changes:
        if not metric_applies(plan=plan, metric=change.metric):
            continue
        limit = metric_limit(plan=plan, metric=change.metric)
        crossed = [
            threshold
            for threshold in thresholds_for(metric=change.metric, rows=rows)
            if (level := threshold.level(limit)) is not None
            and change.before < level <= change.after
        ]
        alerts = [
            alert
            for threshold in crossed
            if (
                alert := _alert_insert(
                    subscription=subscription,
                    period=period,
                    metric=change.metric,
                    unit=threshold.unit,
                    value=threshold.value,
                    used=change.after,
                    limit=limit,
                    now=now,
                )
            )
        ]
        recorded += alerts
    return recorded


def usage_alert_notices_queue(*, alerts: list[UsageAlert]) -> None:
    """Once the transaction commits, one task renders and sends the notices of these alerts
    (one per organization and metric, naming every threshold crossed at once): the write
    that crossed them pays for one queued task, not for rendering."""
    if alerts:
        ids = [alert.pk for alert in alerts]
        transaction.on_commit(
            lambda: async_task("usage.tasks.usage_alert_notices_send", ids), robust=True
        )


def usage_alert_notices_send(*, alert_ids: list[int]) -> None:
    """The notices of these alerts, one per organization, metric and period."""
    groups: dict[tuple[int, str, dt.datetime], list[UsageAlert]] = {}
    for alert in UsageAlert.objects.filter(pk__in=alert_ids).order_by("value", "pk"):
        groups.setdefault((alert.organization_id, alert.metric, alert.period_start), []).append(
            alert
        )
    subscriptions = {
        subscription.organization_id: subscription
        for subscription in Subscription.objects.filter(
            organization_id__in={key[0] for key in groups}
        )
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("plan", "organization")
    }
    for (organization_id, _, _), alerts in groups.items():
        subscription = subscriptions.get(organization_id)
        if subscription is None:
            continue
        period = periods.Period(alerts[0].period_start, alerts[0].period_end)
        notices.usage_alert_send(subscription=subscription, period=period, alerts=alerts)


def _alert_insert(**fields) -> UsageAlert | None:
    """The alert, or None when this period already has it (a concurrent writer, a level
    crossed twice)."""
    subscription, period, now = fields.pop("subscription"), fields.pop("period"), fields.pop("now")
    try:
        with transaction.atomic():
            return UsageAlert.objects.create(
                organization_id=subscription.organization_id,
                period_start=period.start,
                period_end=period.end,
                fired_at=now,
                **fields,
            )
    except IntegrityError:
        return None


# --- the organization's thresholds --------------------------------------------------------


def alert_threshold_add(
    *,
    organization: Organization,
    metric: str,
    unit: str,
    value: Decimal,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> AlertThreshold:
    """A threshold of the organization's own, switched on (again, if it was switched off)."""
    now = now or timezone.now()
    if value <= 0:
        raise BillingError(ErrorCode.THRESHOLD_INVALID, field="value")
    if unit == Unit.PERCENT and value > 1000:
        raise BillingError(
            "threshold_invalid", "A percent threshold is at most 1,000%.", field="value"
        )
    threshold, _ = AlertThreshold.objects.update_or_create(
        organization=organization,
        metric=metric,
        unit=unit,
        value=value,
        defaults={"is_enabled": True, "created_at": now, "created_by": actor},
    )
    return threshold


def alert_threshold_switch(
    *,
    organization: Organization,
    metric: str,
    unit: str,
    value: Decimal,
    enabled: bool,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Switch a threshold (a default one too) off or back on."""
    now = now or timezone.now()
    AlertThreshold.objects.update_or_create(
        organization=organization,
        metric=metric,
        unit=unit,
        value=value,
        defaults={"is_enabled": enabled, "created_at": now, "created_by": actor},
    )


def alert_threshold_remove(
    *, organization: Organization, metric: str, unit: str, value: Decimal
) -> None:
    """Remove one of the organization's own thresholds (a default is switched off instead)."""
    AlertThreshold.objects.filter(
        organization=organization, metric=metric, unit=unit, value=value
    ).delete()


def alert_snooze(
    *,
    subscription: Subscription,
    metric: str,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """No more notices about `metric` until the current usage period ends. False if it was
    snoozed already."""
    now = now or timezone.now()
    period = subscription.usage_period_at(now)
    _, created = AlertSnooze.objects.get_or_create(
        organization_id=subscription.organization_id,
        metric=metric,
        period_start=period.start,
        defaults={"period_end": period.end, "snoozed_at": now, "snoozed_by": actor},
    )
    return created
