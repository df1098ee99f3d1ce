"""Reads of budgets: the month's spend so far, its forecast to the end of the usage month
with a band, and each budget against them.

Spend is what the month's invoice will charge before discounts, taxes and credits: the
plan's monthly fee and the phone numbers' fees (committed when the month starts, so counted
in full from its first day), the call overage so far and the storage overage at the month's
peak, priced by the same functions the renewal invoices them with. Nothing used in a free
trial is charged, so a trial spends nothing.

The forecast carries the call time on at the month's pace, weighed by the organization's
day-of-week pattern from the earlier months (a practice closed at weekends is not projected
to call on Saturdays), or at a plain pace without history; fees and storage stay as they
are. The band is an 80% range from how much the organization's days vary (at least 20%).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.db.models.functions import TruncDate
from djmoney.money import Money

from billing.catalog.selectors import plans_offered
from billing.models import Organization, Subscription
from billing.money import round_money
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage.alerts.pace import call_time_projection, hour_of_week_weights
from usage.models import AIEmployee, Budget, Call, EmployeeUsageCounter, UsageCounter
from usage.plan_fit.selectors import PlanFit, Scenario, plan_fit
from usage.selectors import call_overage_cost, number_fees_for_period, storage_overage_cost

DAY = dt.timedelta(days=1)
# Two-sided 80% range of a normal spread: the band holds the month's end four times in five.
BAND_Z = Decimal("1.2816")
# The least the days are taken to vary: a fortnight of steady days understates how much the
# rest of the month can differ (a holiday, a campaign, calls later in the day than usual).
LEAST_SPREAD = Decimal("0.2")


@dataclass(frozen=True)
class SpendSoFar:
    """This usage month's spend so far, before discounts, taxes and credits."""

    period: periods.Period
    is_trial: bool
    fees: Money  # the plan's monthly fee and the phone numbers'
    call_overage: Money
    storage_overage: Money
    call_seconds: int
    storage_peak_bytes: int

    @property
    def total(self) -> Money:
        return self.fees + self.call_overage + self.storage_overage


def organization_spend_so_far(*, subscription: Subscription, now: dt.datetime) -> SpendSoFar:
    """The organization's spend in the usage month containing `now`. Three queries."""
    period = subscription.usage_period_at(now)
    plan = subscription.plan
    counter = UsageCounter.objects.filter(
        organization_id=subscription.organization_id, period_start=period.start
    ).first()
    seconds = counter.call_seconds if counter else 0
    peak = counter.storage_peak_bytes if counter else 0
    zero = Money(0, plan.currency)
    is_trial = period == subscription.trial_period
    if is_trial:
        return SpendSoFar(period, True, zero, zero, zero, seconds, peak)
    numbers = number_fees_for_period(
        organization=subscription.organization, plan=plan, period=period
    )
    included = plan.included_call_seconds
    return SpendSoFar(
        period=period,
        is_trial=False,
        fees=plan.monthly_equivalent + sum((fee.amount for fee in numbers), zero),
        call_overage=call_overage_cost(
            plan=plan, overage_seconds=seconds - included if included is not None else 0
        ),
        storage_overage=storage_overage_cost(plan=plan, peak_bytes=peak),
        call_seconds=seconds,
        storage_peak_bytes=peak,
    )


def _spend_with(spend: SpendSoFar, plan, call_seconds: int) -> Money:
    """The month's spend if its call time ended at `call_seconds`."""
    if spend.is_trial:
        return spend.total
    included = plan.included_call_seconds
    overage = call_seconds - included if included is not None else 0
    return (
        spend.fees + spend.storage_overage + call_overage_cost(plan=plan, overage_seconds=overage)
    )


def weekday_weights(
    *, organization_id: int, tz: ZoneInfo, before: dt.datetime
) -> dict[tuple[int, int], Decimal] | None:
    """The organization's day-of-week pattern from the months before `before`, as weights
    per (ISO weekday, hour) that are equal within a day: how the week's calls fall by day,
    without betting on the hour."""
    hourly = hour_of_week_weights(organization_id=organization_id, tz=tz, before=before)
    if hourly is None:
        return None
    by_day = {weekday: Decimal(0) for weekday in range(1, 8)}
    for (weekday, _), seconds in hourly.items():
        by_day[weekday] += seconds
    return {(weekday, hour): by_day[weekday] for weekday in by_day for hour in range(24)}


def _daily_spread(
    *, organization_id: int, period: periods.Period, now: dt.datetime, tz: ZoneInfo, weights
) -> tuple[Decimal, int]:
    """How much the month's whole days so far vary, as a coefficient of variation of their
    call seconds (each day divided by its weekday's weight), at least `LEAST_SPREAD`, and
    how many days that is. Without two days to compare, a spread of 1: the band is wide
    until there are."""
    by_day = dict(
        Call.objects.filter(organization_id=organization_id, usage_period_start=period.start)
        .annotate(day=TruncDate("connected_at", tzinfo=tz))
        .values("day")
        .annotate(seconds=Sum("billable_seconds"))
        .values_list("day", "seconds")
    )
    first = period.start.astimezone(tz).date()
    today = now.astimezone(tz).date()
    day_weight = {}
    if weights is not None:
        mean = sum(weights.values()) / len(weights)
        day_weight = {weekday: weights[weekday, 0] / mean for weekday in range(1, 8)}
    rates = []
    day = first
    while day < today:
        weight = day_weight.get(day.isoweekday(), Decimal(1)) if day_weight else Decimal(1)
        if weight > 0:
            rates.append(Decimal(by_day.get(day, 0)) / weight)
        day += DAY
    if len(rates) < 2:
        return Decimal(1), len(rates)
    mean = sum(rates) / len(rates)
    if mean <= 0:
        return Decimal(1), len(rates)
    variance = sum((rate - mean) ** 2 for rate in rates) / len(rates)
    return max(variance.sqrt() / mean, LEAST_SPREAD), len(rates)


@dataclass(frozen=True)
class Forecast:
    spend: SpendSoFar
    projected_seconds: int  # the month's call time at this pace
    low_seconds: int
    high_seconds: int
    total: Money  # the month's spend at this pace
    low: Money  # the band: four months in five end between low and high
    high: Money
    days_left: int  # counting today
    weighted: bool  # by the organization's day-of-week pattern, else the plain pace


def spend_forecast(*, subscription: Subscription, now: dt.datetime) -> Forecast:
    """Where this usage month's spend ends at the pace so far, with its band."""
    spend = organization_spend_so_far(subscription=subscription, now=now)
    period, plan, tz = spend.period, subscription.plan, subscription.tzinfo
    weights = weekday_weights(
        organization_id=subscription.organization_id, tz=tz, before=period.start
    )
    projection = call_time_projection(
        period=period, used=spend.call_seconds, included=0, now=now, tz=tz, weights=weights
    )
    used, projected = spend.call_seconds, max(projection.projected_seconds, spend.call_seconds)
    days_left = max(math.ceil((period.end - now) / DAY), 0)
    spread, days_seen = _daily_spread(
        organization_id=subscription.organization_id,
        period=period,
        now=now,
        tz=tz,
        weights=weights if projection.weighted else None,
    )
    rest = Decimal(projected - used)
    width = (
        BAND_Z * spread * (Decimal(1) / max(days_left, 1) + Decimal(1) / max(days_seen, 1)).sqrt()
    )
    low = used + int(rest * max(Decimal(0), 1 - width))
    high = used + int(rest * (1 + width))
    return Forecast(
        spend=spend,
        projected_seconds=projected,
        low_seconds=low,
        high_seconds=high,
        total=_spend_with(spend, plan, projected),
        low=_spend_with(spend, plan, low),
        high=_spend_with(spend, plan, high),
        days_left=days_left,
        weighted=projection.weighted,
    )


@dataclass(frozen=True)
class BudgetState:
    budget: Budget | None
    forecast: Forecast

    @property
    def percent(self) -> int | None:
        if self.budget is None:
            return None
        return int(self.forecast.spend.total.amount * 100 / self.budget.amount.amount)

    @property
    def forecast_percent(self) -> int | None:
        if self.budget is None:
            return None
        return int(self.forecast.total.amount * 100 / self.budget.amount.amount)

    @property
    def forecast_exceeds(self) -> bool:
        return self.budget is not None and self.forecast.total > self.budget.amount


def organization_budget(*, organization: Organization) -> Budget | None:
    return Budget.objects.filter(organization=organization, cost_center="").first()


def budget_state(*, organization: Organization, now: dt.datetime) -> BudgetState | None:
    """The organization's budget (or none) against this month's spend and forecast; None
    without a live subscription."""
    subscription = subscription_live(organization=organization)
    if subscription is None:
        return None
    return BudgetState(
        budget=organization_budget(organization=organization),
        forecast=spend_forecast(subscription=subscription, now=now),
    )


@dataclass(frozen=True)
class CostCenterBudget:
    """A cost center's share of the month: its share of the call seconds, times the usage
    charges (call and storage overage; the fees stay the organization's), so far and at
    this pace, against its budget (if any)."""

    cost_center: str
    budget: Budget | None
    call_seconds: int
    spent: Money
    forecast: Money
    low: Money
    high: Money

    @property
    def percent(self) -> int | None:
        if self.budget is None:
            return None
        return int(self.spent.amount * 100 / self.budget.amount.amount)

    @property
    def forecast_exceeds(self) -> bool:
        return self.budget is not None and self.forecast > self.budget.amount


def cost_center_budgets(
    *, organization: Organization, forecast: Forecast
) -> list[CostCenterBudget]:
    """Every cost center of the organization's AI employees (and any with a budget), by
    name. Three queries."""
    spend = forecast.spend
    seconds = dict(
        EmployeeUsageCounter.objects.filter(
            organization=organization, period_start=spend.period.start
        )
        .values("cost_center")
        .annotate(seconds=Sum("call_seconds"))
        .values_list("cost_center", "seconds")
    )
    total = sum(seconds.values())  # calls of AI employees without a cost center included
    budgets = {
        budget.cost_center: budget
        for budget in Budget.objects.filter(organization=organization).exclude(cost_center="")
    }
    names = set(budgets) | set(
        AIEmployee.objects.filter(organization=organization)
        .exclude(cost_center="")
        .values_list("cost_center", flat=True)
    )

    def share(amount: Money, name: str) -> Money:
        if not total:
            return amount * 0
        return round_money(amount * Decimal(seconds.get(name, 0)) / Decimal(total))

    usage_so_far = spend.call_overage + spend.storage_overage
    return [
        CostCenterBudget(
            cost_center=name,
            budget=budgets.get(name),
            call_seconds=seconds.get(name, 0),
            spent=share(usage_so_far, name),
            forecast=share(forecast.total - spend.fees, name),
            low=share(forecast.low - spend.fees, name),
            high=share(forecast.high - spend.fees, name),
        )
        for name in sorted(names)
    ]


def scenario_costs(*, organization: Organization, scenario: Scenario) -> PlanFit:
    """What the organization's last three closed usage months would cost, grown as
    `scenario` says, on its current plan and on each plan offered to it (the plans page's
    comparison, with the growth applied)."""
    subscription = subscription_live(organization=organization)
    return plan_fit(
        organization=organization,
        current_plan=subscription.plan if subscription else None,
        plans=plans_offered(organization=organization),
        scenario=scenario,
    )
