"""What a usage alert tells: the resource, its use against the limit, the thresholds crossed,
when it runs out at this pace, the money at stake, and the ways to act. Sent through the
notification center once the transaction that crossed the thresholds commits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from billing.catalog.selectors import plans_offered
from billing.models import Notification, Plan, Subscription
from billing.notifications.emails import absolute_url
from billing.notifications.services import notification_send
from billing.subscriptions import periods
from usage.alerts.selectors import Metric, format_amount, format_threshold, metric_label
from usage.models import AlertSnooze, UsageAlert
from usage.plan_fit.selectors import plan_fit
from usage.selectors import call_overage_cost, usage_summary

# When the same threshold fires this many usage periods in a row, the notice suggests a
# plan that fits, or raising the threshold.
REPEATS_FOR_ADVICE = 3


def _alert_links(organization) -> list[tuple[str, str]]:
    slug = organization.slug
    return [
        ("Compare plans and preview an upgrade", absolute_url("billing:plans", slug)),
        ("AI employees", absolute_url("usage:employees", slug)),
        ("Phone numbers", absolute_url("usage:phone_numbers", slug)),
        ("Alert thresholds", absolute_url("usage:alerts", slug)),
    ]


def _previous_periods(subscription: Subscription, period: periods.Period, count: int):
    """The `count` usage periods before `period`, newest first, from the subscription's start."""
    found = []
    start = period.start
    while len(found) < count and start > subscription.started_at:
        previous = subscription.usage_period_at(start - dt.timedelta(microseconds=1))
        found.append(previous)
        start = previous.start
    return found


def _repeated(subscription: Subscription, period: periods.Period, alert: UsageAlert) -> bool:
    """Whether `alert`'s threshold also fired in each of the periods just before."""
    earlier = _previous_periods(subscription, period, REPEATS_FOR_ADVICE - 1)
    if len(earlier) < REPEATS_FOR_ADVICE - 1:
        return False
    return UsageAlert.objects.filter(
        organization_id=subscription.organization_id,
        metric=alert.metric,
        unit=alert.unit,
        value=alert.value,
        period_start__in=[previous.start for previous in earlier],
    ).count() == len(earlier)


def _advice(subscription: Subscription) -> dict:
    """The plan that fits the organization's last months (the plans page's advice), if one
    does better than the current plan."""
    fit = plan_fit(
        organization=subscription.organization,
        current_plan=subscription.plan,
        plans=plans_offered(organization=subscription.organization),
    )
    recommendation = fit.recommendation
    if recommendation is not None and recommendation.action == "upgrade" and recommendation.plan:
        return {"plan": recommendation.plan.plan}
    return {"plan": None}


def _context(subscription: Subscription, period: periods.Period, alerts: list[UsageAlert]):
    """Read once the transaction committed: the organization's usage as it stands then."""
    organization = subscription.organization
    plan: Plan = subscription.plan
    currency = plan.currency
    metric = alerts[0].metric
    highest = max(alerts, key=lambda alert: alert.used)
    now = timezone.now()
    summary = usage_summary(subscription=subscription, now=now, period=period)
    limit = highest.limit
    used = highest.used
    percent = int(used * 100 / limit) if limit else None
    tz = subscription.tzinfo
    context = {
        "subscription": subscription,
        "metric": metric,
        "resource": metric_label(metric),
        "thresholds": [format_threshold(alert, currency) for alert in alerts],
        "used_label": format_amount(metric=metric, amount=used, currency=currency),
        "limit_label": (
            format_amount(metric=metric, amount=limit, currency=currency) if limit else None
        ),
        "percent": percent,
        "period_label": period.label(tz),
        "period_last_day": period.last_day(tz),
        "blocks_at_limit": (metric == Metric.CALL_SECONDS and not plan.charges_overage)
        or metric == Metric.OVERAGE_CAP,
        "limit_reached": percent is not None and percent >= 100,
        "exhaustion_day": (
            summary.projected_exhaustion.astimezone(tz).date()
            if metric == Metric.CALL_SECONDS and summary.projected_exhaustion
            else None
        ),
        "charges_overage": plan.charges_overage and not summary.is_trial,
        "overage_cost": summary.overage_cost,
        "projected_overage_cost": summary.projected_overage_cost,
        "overage_cap": plan.overage_cap,
        "links": _alert_links(organization),
        "repeated": any(_repeated(subscription, period, alert) for alert in alerts),
    }
    if context["repeated"]:
        context["advice"] = _advice(subscription)
    return context


def usage_alert_send(
    *, subscription: Subscription, period: periods.Period, alerts: list[UsageAlert]
) -> None:
    """One notice for the thresholds of one metric crossed at once, unless the organization
    snoozed that metric for the period. Called inside the transaction that crossed them."""
    metric = alerts[0].metric
    if AlertSnooze.objects.filter(
        organization_id=subscription.organization_id, metric=metric, period_start=period.start
    ).exists():
        return
    crossed = "+".join(f"{alert.unit}:{alert.value.normalize():f}" for alert in alerts)
    highest = max(alerts, key=lambda alert: alert.used)
    notification_send(
        organization=subscription.organization,
        kind=Notification.Kind.USAGE_ALERT,
        dedup_key=f"usage-alert:{metric}:{period.start.isoformat()}:{crossed}",
        template="usage_alert",
        context=lambda: _context(subscription, period, alerts),
        link=absolute_url("usage:dashboard", subscription.organization.slug),
        link_label="See your usage",
        data={
            "metric": metric,
            "resource": metric_label(metric),
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "thresholds": [
                {"unit": alert.unit, "value": f"{alert.value.normalize():f}"} for alert in alerts
            ],
            "used": str(highest.used),
            "limit": str(highest.limit) if highest.limit is not None else None,
            "percent": (int(highest.used * 100 / highest.limit) if highest.limit else None),
        },
    )


def projected_overage_send(
    *,
    subscription: Subscription,
    period: periods.Period,
    alert: UsageAlert,
    exhaustion_at: dt.datetime,
    projected_seconds: int,
    weighted: bool,
) -> None:
    """Call time is on course to run out before the usage month ends."""
    plan = subscription.plan
    tz = subscription.tzinfo
    included = plan.included_call_seconds or 0

    def context() -> dict:
        summary = usage_summary(subscription=subscription, now=timezone.now(), period=period)
        return {
            "subscription": subscription,
            "exhaustion_day": exhaustion_at.astimezone(tz).date(),
            "exhaustion_at": exhaustion_at,
            "weighted": weighted,
            "period_label": period.label(tz),
            "period_last_day": period.last_day(tz),
            "used_label": format_amount(
                metric=Metric.CALL_SECONDS, amount=alert.used, currency=plan.currency
            ),
            "limit_label": format_amount(
                metric=Metric.CALL_SECONDS, amount=Decimal(included), currency=plan.currency
            ),
            "projected_label": format_amount(
                metric=Metric.CALL_SECONDS,
                amount=Decimal(projected_seconds),
                currency=plan.currency,
            ),
            "charges_overage": plan.charges_overage and not summary.is_trial,
            "overage_cost": summary.overage_cost,
            "projected_overage_cost": call_overage_cost(
                plan=plan, overage_seconds=projected_seconds - included
            ),
            "overage_cap": plan.overage_cap,
            "links": _alert_links(subscription.organization),
        }

    notification_send(
        organization=subscription.organization,
        kind=Notification.Kind.PROJECTED_OVERAGE,
        dedup_key=f"projected-overage:call_seconds:{period.start.isoformat()}",
        template="projected_overage",
        context=context,
        link=absolute_url("usage:dashboard", subscription.organization.slug),
        link_label="See your usage",
        data={
            "metric": Metric.CALL_SECONDS.value,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "projected_exhaustion_at": exhaustion_at.isoformat(),
            "projected_seconds": projected_seconds,
            "included_seconds": included,
        },
    )
