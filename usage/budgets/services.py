"""Writes of budgets: setting the organization's monthly budget, and the job that alerts at
its thresholds through the notification center.

A budget alert fires once per threshold and usage month: at each of
`BUDGET_ALERT_PERCENTS` of the budget actually spent, and when the forecast passes the
budget. Each threshold has its own dedup key, so two runs of the job at once, or a run
repeated, alert once; thresholds crossed together go in one notice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.errors import BillingError, ErrorCode
from billing.models import Notification, Organization, Subscription
from billing.notifications.emails import absolute_url
from billing.notifications.services import notification_send
from usage.budgets.selectors import BudgetState, spend_forecast
from usage.models import Budget

FORECAST = "forecast"


@transaction.atomic
def budget_set(
    *,
    organization: Organization,
    amount: Decimal | None,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> Budget | None:
    """The organization's monthly budget, in its currency; `None` removes it."""
    now = now or timezone.now()
    if amount is None:
        Budget.objects.filter(organization=organization, cost_center="").delete()
        return None
    if amount <= 0:
        raise BillingError(ErrorCode.BUDGET_INVALID, field="monthly_budget")
    budget, _ = Budget.objects.update_or_create(
        organization=organization,
        cost_center="",
        defaults={
            "amount": Money(amount, organization.currency),
            "changed_at": now,
            "changed_by": actor,
        },
    )
    return budget


def _dedup_prefix(state: BudgetState) -> str:
    return f"budget:organization:{state.forecast.spend.period.start.isoformat()}:"


def crossed_thresholds(state: BudgetState) -> list[str]:
    """The thresholds this month's spend and forecast are past: percents, then `forecast`."""
    if state.budget is None or state.forecast.spend.is_trial:
        return []
    crossed = [
        str(percent)
        for percent in sorted(settings.BUDGET_ALERT_PERCENTS)
        if state.percent is not None and state.percent >= percent
    ]
    return crossed + ([FORECAST] if state.forecast_exceeds else [])


def budget_alerts_if_needed(*, now: dt.datetime) -> int:
    """The hourly job: alert each organization whose spend or forecast crossed a threshold
    of its budget this usage month and was not alerted for it yet. Returns the notices sent."""
    budgets = Budget.objects.filter(
        cost_center="",
        organization__subscriptions__status__in=(
            Subscription.Status.ACTIVE,
            Subscription.Status.PAST_DUE,
        ),
    ).select_related("organization")
    # What was alerted already, read once: each notice lists the thresholds it told.
    alerted: dict[tuple[int, str], set[str]] = {}
    for organization_id, dedup_key, data in Notification.objects.filter(
        kind=Notification.Kind.BUDGET_ALERT, created_at__gte=now - dt.timedelta(days=400)
    ).values_list("organization_id", "dedup_key", "data"):
        prefix = dedup_key.rsplit(":", 1)[0] + ":"
        alerted.setdefault((organization_id, prefix), set()).update(data.get("thresholds", []))
    sent = 0
    for budget in budgets:
        organization = budget.organization
        subscription = organization.subscriptions.exclude(status=Subscription.Status.CANCELED).get()
        state = BudgetState(budget, spend_forecast(subscription=subscription, now=now))
        told = alerted.get((organization.pk, _dedup_prefix(state)), set())
        new = [threshold for threshold in crossed_thresholds(state) if threshold not in told]
        if new:
            budget_alert_send(organization=organization, state=state, thresholds=new)
            sent += 1
    return sent


def _money(money: Money) -> str:
    return str(money.amount)


@transaction.atomic
def budget_alert_send(*, organization: Organization, state: BudgetState, thresholds: list[str]):
    """One notice for the thresholds crossed together, under the key of the highest."""
    forecast, period = state.forecast, state.forecast.spend.period
    percents = [threshold for threshold in thresholds if threshold != FORECAST]
    key = percents[-1] if percents else FORECAST
    facts = {
        "budget": state.budget.amount,
        "spent": forecast.spend.total,
        "percent": state.percent,
        "forecast": forecast.total,
        "forecast_low": forecast.low,
        "forecast_high": forecast.high,
        "days_left": forecast.days_left,
        "period": period,
        "period_last_day": period.end - dt.timedelta(microseconds=1),
        "percents": percents,
        "forecast_exceeds": FORECAST in thresholds,
        "weighted": forecast.weighted,
    }
    notification_send(
        organization=organization,
        kind=Notification.Kind.BUDGET_ALERT,
        dedup_key=_dedup_prefix(state) + key,
        template="budget_alert",
        context=lambda: (
            facts
            | {
                "links": [
                    ("Budgets and forecast", absolute_url("usage:budgets", organization.slug)),
                    ("Spend caps", absolute_url("usage:caps", organization.slug)),
                    ("Usage", absolute_url("usage:dashboard", organization.slug)),
                ]
            }
        ),
        link=absolute_url("usage:budgets", organization.slug),
        link_label="See your budget",
        data={
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "thresholds": thresholds,
            "currency": state.budget.amount.currency.code,
            "budget": _money(state.budget.amount),
            "spent": _money(forecast.spend.total),
            "percent": state.percent,
            "forecast": _money(forecast.total),
            "forecast_low": _money(forecast.low),
            "forecast_high": _money(forecast.high),
            "days_left": forecast.days_left,
        },
    )
