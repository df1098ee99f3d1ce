"""Reads of usage alerts: what each metric is measured in and limited to, the thresholds in
force, and the state of this period's alerts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from djmoney.money import Money

from billing.models import Organization, Plan, Subscription
from usage.models import AlertSnooze, AlertThreshold, UsageAlert

Metric = AlertThreshold.Metric
Unit = AlertThreshold.Unit
GIB = 1024**3

# What an absolute threshold is entered in, and how many base units (seconds, bytes, money,
# a count) make one of it.
ABSOLUTE_UNITS = {
    Metric.CALL_SECONDS: ("minutes", Decimal(60)),
    Metric.ACTIVE_EMPLOYEES: ("AI employees", Decimal(1)),
    Metric.PHONE_NUMBERS: ("numbers", Decimal(1)),
    Metric.STORAGE: ("GiB", Decimal(GIB)),
    Metric.API_CALLS: ("API calls", Decimal(1)),
    Metric.OVERAGE_SPEND: ("", Decimal(1)),  # in the plan's currency
    Metric.OVERAGE_CAP: ("", Decimal(1)),
}


def metric_limit(*, plan: Plan, metric: str) -> Decimal | None:
    """The plan's limit of a metric in its base unit: None when unlimited. Overage spend is
    measured against the plan's monthly price, the overage cap against the cap."""
    limits = {
        Metric.CALL_SECONDS: plan.included_call_seconds,
        Metric.ACTIVE_EMPLOYEES: plan.max_active_employees,
        Metric.PHONE_NUMBERS: plan.max_phone_numbers,
        Metric.STORAGE: plan.storage_gb * GIB if plan.storage_gb is not None else None,
        Metric.API_CALLS: plan.api_calls_per_month,
        Metric.OVERAGE_SPEND: plan.monthly_equivalent.amount if plan.charges_overage else None,
        Metric.OVERAGE_CAP: plan.overage_cap.amount if plan.overage_cap is not None else None,
    }
    limit = limits[metric]
    return Decimal(limit) if limit is not None else None


def metric_applies(*, plan: Plan, metric: str) -> bool:
    """Overage is watched on plans that charge it, the cap on plans that have one."""
    if metric == Metric.OVERAGE_SPEND:
        return plan.charges_overage
    if metric == Metric.OVERAGE_CAP:
        return plan.charges_overage and plan.overage_cap is not None
    return True


@dataclass(frozen=True)
class Threshold:
    metric: str
    unit: str
    value: Decimal
    is_default: bool
    is_enabled: bool

    def level(self, limit: Decimal | None) -> Decimal | None:
        """The metric's value, in its base unit, at which this threshold is crossed."""
        if self.unit == Unit.PERCENT:
            return None if limit is None else limit * self.value / 100
        return self.value * ABSOLUTE_UNITS[self.metric][1]

    @property
    def key(self) -> tuple[str, str, Decimal]:
        return (self.metric, self.unit, self.value)


def thresholds_for(
    *, metric: str, rows: Iterable[AlertThreshold], enabled_only: bool = True
) -> list[Threshold]:
    """The default percents, each as its row switched it, and the organization's own."""
    rows = [row for row in rows if row.metric == metric]
    switched = {(row.unit, row.value): row.is_enabled for row in rows}
    defaults = [
        Threshold(
            metric,
            Unit.PERCENT,
            Decimal(percent),
            True,
            switched.get((Unit.PERCENT, Decimal(percent)), True),
        )
        for percent in sorted(set(settings.USAGE_ALERT_DEFAULT_PERCENTS))
    ]
    default_keys = {(threshold.unit, threshold.value) for threshold in defaults}
    own = [
        Threshold(metric, row.unit, row.value, False, row.is_enabled)
        for row in rows
        if (row.unit, row.value) not in default_keys
    ]
    thresholds = sorted([*defaults, *own], key=lambda t: (t.unit != Unit.PERCENT, t.value))
    return [t for t in thresholds if t.is_enabled] if enabled_only else thresholds


def threshold_rows(*, organization_ids: Iterable[int]) -> dict[int, list[AlertThreshold]]:
    """Every threshold row of these organizations, in one query."""
    rows: dict[int, list[AlertThreshold]] = {pk: [] for pk in organization_ids}
    for row in AlertThreshold.objects.filter(organization_id__in=list(rows)):
        rows[row.organization_id].append(row)
    return rows


def metric_label(metric: str) -> str:
    return Metric(metric).label


def format_amount(*, metric: str, amount: Decimal, currency: str) -> str:
    """A metric's value as a person reads it: minutes, GiB, money or a count."""
    if metric in (Metric.OVERAGE_SPEND, Metric.OVERAGE_CAP):
        return str(Money(amount, currency))
    name, per_unit = ABSOLUTE_UNITS[metric]
    shown = amount / per_unit
    if metric == Metric.STORAGE:
        return f"{shown.quantize(Decimal('0.01')):,} {name}"
    return f"{int(shown):,} {name}"


def format_threshold(threshold: Threshold | UsageAlert, currency: str) -> str:
    if threshold.unit == Unit.PERCENT:
        return f"{threshold.value.normalize():f}%"
    return format_amount(
        metric=threshold.metric,
        amount=threshold.value * ABSOLUTE_UNITS[threshold.metric][1],
        currency=currency,
    )


# --- the alerts page and the API ------------------------------------------------------------


@dataclass(frozen=True)
class ThresholdState:
    threshold: Threshold
    label: str
    level: Decimal | None
    fired_at: dt.datetime | None  # this period


@dataclass(frozen=True)
class MetricAlerts:
    metric: str
    label: str
    limit: Decimal | None
    limit_label: str
    used: Decimal
    used_label: str
    percent: int | None
    snoozed: bool
    thresholds: list[ThresholdState]


def alert_states(
    *, subscription: Subscription, used: dict[str, Decimal], now: dt.datetime
) -> list[MetricAlerts]:
    """Each metric the plan watches: its use this period, its thresholds (switched off ones
    too) and which fired. Three queries."""
    organization = subscription.organization
    period = subscription.usage_period_at(now)
    plan = subscription.plan
    rows = list(AlertThreshold.objects.filter(organization=organization))
    fired = {
        (alert.metric, alert.unit, alert.value): alert.fired_at
        for alert in UsageAlert.objects.filter(organization=organization, period_start=period.start)
    }
    snoozed = set(
        AlertSnooze.objects.filter(
            organization=organization, period_start=period.start
        ).values_list("metric", flat=True)
    )
    states = []
    for metric in Metric:
        if not metric_applies(plan=plan, metric=metric):
            continue
        limit = metric_limit(plan=plan, metric=metric)
        value = used.get(metric, Decimal(0))
        states.append(
            MetricAlerts(
                metric=metric.value,
                label=metric.label,
                limit=limit,
                limit_label=(
                    format_amount(metric=metric, amount=limit, currency=plan.currency)
                    if limit is not None
                    else "unlimited"
                ),
                used=value,
                used_label=format_amount(metric=metric, amount=value, currency=plan.currency),
                percent=int(value * 100 / limit) if limit else None,
                snoozed=metric in snoozed,
                thresholds=[
                    ThresholdState(
                        threshold,
                        format_threshold(threshold, plan.currency),
                        threshold.level(limit),
                        fired.get(threshold.key),
                    )
                    for threshold in thresholds_for(metric=metric, rows=rows, enabled_only=False)
                    if threshold.unit == Unit.ABSOLUTE or limit is not None
                ],
            )
        )
    return states


def organization_subscription(*, organization: Organization) -> Subscription | None:
    return (
        Subscription.objects.filter(organization=organization)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("plan", "organization")
        .first()
    )


def metric_values(summary) -> dict[str, Decimal]:
    """Each metric's use in a usage summary (`usage.selectors.usage_summary`), in base units."""
    overage = Decimal(summary.overage_cost.amount)
    return {
        Metric.CALL_SECONDS: Decimal(summary.call_seconds.used),
        Metric.ACTIVE_EMPLOYEES: Decimal(summary.employees.used),
        Metric.PHONE_NUMBERS: Decimal(summary.phone_numbers.used),
        Metric.STORAGE: Decimal(summary.storage_bytes.used),
        Metric.API_CALLS: Decimal(summary.api_calls.used),
        Metric.OVERAGE_SPEND: overage,
        Metric.OVERAGE_CAP: overage,
    }
