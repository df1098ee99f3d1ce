"""Writes of budgets: setting the monthly budgets of the organization and its cost centers
(each change recorded with who and when), and the job that alerts at their thresholds through the notification center.

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
from billing.locks import organization_lock
from billing.models import Notification, Organization, Subscription
from billing.notifications.emails import absolute_url
from billing.notifications.services import notification_send
from usage.budgets.selectors import BudgetFigures, Forecast, budgets_glance
from usage.models import Budget, BudgetChange, ServiceToken

FORECAST = "forecast"


@transaction.atomic
def budget_set(
    *,
    organization: Organization,
    amount: Decimal | None,
    cost_center: str = "",
    actor: AbstractBaseUser | None = None,
    token: ServiceToken | None = None,
    now: dt.datetime | None = None,
) -> Budget | None:
    """The monthly budget of the organization, or of one of its cost centers, in its
    currency; `None` removes it. A change is recorded (`BudgetChange`: from, to, who, when);
    setting the amount it has records nothing."""
    now = now or timezone.now()
    if amount is not None and amount <= 0:
        raise BillingError(ErrorCode.BUDGET_INVALID, field="monthly_budget")
    if (
        amount is not None
        and cost_center
        and not organization.employees.filter(cost_center=cost_center).exists()
    ):
        raise BillingError(
            ErrorCode.COST_CENTER_NOT_FOUND,
            f"No AI employee of {organization} is in the cost center {cost_center!r}.",
            field="cost_centers",
        )
    # Changes of one organization's budgets take turns, so each records what it replaced.
    organization_lock().filter(pk=organization.pk).get()
    budget = Budget.objects.filter(organization=organization, cost_center=cost_center).first()
    before = budget.amount.amount if budget else None
    if before == amount:
        return budget
    if amount is None:
        budget.delete()
        budget = None
    else:
        budget = budget or Budget(organization=organization, cost_center=cost_center)
        budget.amount = Money(amount, organization.currency)
        budget.changed_at, budget.changed_by = now, actor
        budget.save()
    BudgetChange.objects.create(
        organization=organization,
        cost_center=cost_center,
        previous_amount=before,
        new_amount=amount,
        changed_at=now,
        changed_by=actor,
        changed_by_token=token,
    )
    return budget


@transaction.atomic
def budgets_replace(
    *,
    organization: Organization,
    amount: Decimal | None,
    cost_centers: dict[str, Decimal],
    actor: AbstractBaseUser | None = None,
    token: ServiceToken | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Make the budgets exactly these: the organization's (`None`: none) and its cost
    centers' (left out: none). All or nothing."""
    wanted = {"": amount} | {name: value for name, value in cost_centers.items()}
    dropped = (
        Budget.objects.filter(organization=organization)
        .exclude(cost_center__in=wanted)
        .values_list("cost_center", flat=True)
    )
    for cost_center in [*dropped, *wanted]:
        budget_set(
            organization=organization,
            amount=wanted.get(cost_center),
            cost_center=cost_center,
            actor=actor,
            token=token,
            now=now,
        )


def crossed(figures: BudgetFigures) -> list[str]:
    """The thresholds a budget passed: percents, then `forecast`."""
    percents = [
        str(percent)
        for percent in sorted(settings.BUDGET_ALERT_PERCENTS)
        if figures.percent >= percent
    ]
    return percents + ([FORECAST] if figures.forecast_exceeds else [])


def _dedup_prefix(figures: BudgetFigures, forecast: Forecast) -> str:
    return f"budget:{figures.key}:{forecast.spend.period.start.isoformat()}:"


def budget_alerts_if_needed(*, now: dt.datetime) -> int:
    """The hourly job: alert each budget (the organization's, a cost center's) whose spend or
    forecast crossed a threshold this usage month and was not alerted for it yet. Returns
    the notices sent."""
    organizations = Organization.objects.filter(
        pk__in=Budget.objects.values("organization_id"),
        subscriptions__status__in=(Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE),
    )
    # What was alerted already, read once: each notice lists the thresholds it told.
    alerted: dict[tuple[int, str], set[str]] = {}
    for organization_id, dedup_key, data in Notification.objects.filter(
        kind=Notification.Kind.BUDGET_ALERT, created_at__gte=now - dt.timedelta(days=400)
    ).values_list("organization_id", "dedup_key", "data"):
        prefix = dedup_key.rsplit(":", 1)[0] + ":"
        alerted.setdefault((organization_id, prefix), set()).update(data.get("thresholds", []))
    sent = 0
    for organization in organizations:
        subscription = organization.subscriptions.exclude(status=Subscription.Status.CANCELED).get()
        glance = budgets_glance(subscription=subscription, now=now)
        forecast = glance.forecast
        if forecast is None or forecast.spend.is_trial:
            continue
        for item in glance.budgets:
            told = alerted.get((organization.pk, _dedup_prefix(item, forecast)), set())
            new = [threshold for threshold in crossed(item) if threshold not in told]
            if new:
                budget_alert_send(
                    organization=organization, figures=item, forecast=forecast, thresholds=new
                )
                sent += 1
    return sent


def _money(money: Money) -> str:
    return str(money.amount)


@transaction.atomic
def budget_alert_send(
    *,
    organization: Organization,
    figures: BudgetFigures,
    forecast: Forecast,
    thresholds: list[str],
) -> None:
    """One notice for the thresholds crossed together, under the key of the highest."""
    period = forecast.spend.period
    percents = [threshold for threshold in thresholds if threshold != FORECAST]
    key = percents[-1] if percents else FORECAST
    facts = {
        "budget_name": figures.name,
        "budget": figures.budget,
        "spent": figures.spent,
        "percent": figures.percent,
        "forecast": figures.forecast,
        "forecast_low": figures.low,
        "forecast_high": figures.high,
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
        dedup_key=_dedup_prefix(figures, forecast) + key,
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
            "budget_of": figures.key,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "thresholds": thresholds,
            "currency": figures.budget.currency.code,
            "budget": _money(figures.budget),
            "spent": _money(figures.spent),
            "percent": figures.percent,
            "forecast": _money(figures.forecast),
            "forecast_low": _money(figures.low),
            "forecast_high": _money(figures.high),
            "days_left": forecast.days_left,
        },
    )
