"""Reads of budgets: the month's spend so far, its forecast to the end of the usage month
with a band, and each budget against them.

Spend is what the usage month costs once invoiced (`usage.costs.selectors.month_spend`,
priced by the renewal's code): the plan's fee for the month, the phone numbers' fees, the
call and storage overage, less the discount, with taxes, before credits. A free trial
spends nothing.

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
from usage.costs.selectors import MonthSpend, month_spend
from usage.models import AIEmployee, Budget, BudgetChange, Call, EmployeeUsageCounter
from usage.plan_fit.selectors import PlanFit, Scenario, plan_fit

DAY = dt.timedelta(days=1)
# Two-sided 80% range of a normal spread: the band holds the month's end four times in five.
BAND_Z = Decimal("1.2816")
# The least the days are taken to vary: a fortnight of steady days understates how much the
# rest of the month can differ (a holiday, a campaign, calls later in the day than usual).
LEAST_SPREAD = Decimal("0.2")


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
    spend: MonthSpend
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
    spend = month_spend(subscription=subscription, now=now)
    period, tz = spend.period, subscription.tzinfo
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
        total=spend.at(projected),
        low=spend.at(low),
        high=spend.at(high),
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
    """A cost center's share of the month's spend: its share of the call seconds, times the
    usage charges (call and storage overage, discounted and taxed like the organization's;
    the fees stay the organization's), so far and at this pace, against its budget (if any)."""

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


def _cost_center_budgets(
    *, organization_id: int, forecast: Forecast, budgets: dict[str, Budget], names: set[str]
) -> list[CostCenterBudget]:
    """The cost centers `names`, by name, against their `budgets`. One query."""
    spend = forecast.spend
    seconds = dict(
        EmployeeUsageCounter.objects.filter(
            organization_id=organization_id, period_start=spend.period.start
        )
        .values("cost_center")
        .annotate(seconds=Sum("call_seconds"))
        .values_list("cost_center", "seconds")
    )
    total = sum(seconds.values())  # calls of AI employees without a cost center included

    def share(amount: Money, name: str) -> Money:
        if not total:
            return amount * 0
        return round_money(amount * Decimal(seconds.get(name, 0)) / Decimal(total))

    return [
        CostCenterBudget(
            cost_center=name,
            budget=budgets.get(name),
            call_seconds=seconds.get(name, 0),
            spent=share(spend.overage, name),
            forecast=share(forecast.total - spend.fees, name),
            low=share(forecast.low - spend.fees, name),
            high=share(forecast.high - spend.fees, name),
        )
        for name in sorted(names)
    ]


def cost_center_budgets(
    *, organization: Organization, forecast: Forecast
) -> list[CostCenterBudget]:
    """Every cost center of the organization's AI employees (and any with a budget), by
    name. Three queries."""
    budgets = {
        budget.cost_center: budget
        for budget in Budget.objects.filter(organization=organization).exclude(cost_center="")
    }
    names = set(budgets) | set(
        AIEmployee.objects.filter(organization=organization)
        .exclude(cost_center="")
        .values_list("cost_center", flat=True)
    )
    return _cost_center_budgets(
        organization_id=organization.pk, forecast=forecast, budgets=budgets, names=names
    )


@dataclass(frozen=True)
class BudgetFigures:
    """One budget, the organization's (`cost_center` empty) or a cost center's, against its
    spend so far and forecast: what the alerts tell and the billing page shows."""

    cost_center: str
    budget: Money
    spent: Money
    percent: int
    forecast: Money
    low: Money
    high: Money
    forecast_exceeds: bool

    @property
    def key(self) -> str:
        return f"cost_center:{self.cost_center}" if self.cost_center else "organization"

    @property
    def name(self) -> str:
        """As a notice names it."""
        if self.cost_center:
            return f"the {self.cost_center} monthly budget"
        return "your monthly budget"

    @property
    def is_over(self) -> bool:
        return self.spent > self.budget

    @classmethod
    def of_organization(cls, state: BudgetState) -> BudgetFigures:
        forecast = state.forecast
        return cls(
            "",
            state.budget.amount,
            forecast.spend.total,
            state.percent,
            forecast.total,
            forecast.low,
            forecast.high,
            state.forecast_exceeds,
        )

    @classmethod
    def of_cost_center(cls, item: CostCenterBudget) -> BudgetFigures:
        return cls(
            item.cost_center,
            item.budget.amount,
            item.spent,
            item.percent,
            item.forecast,
            item.low,
            item.high,
            item.forecast_exceeds,
        )


@dataclass(frozen=True)
class BudgetsGlance:
    """Every budget of the organization against the month (the organization's first, then
    the cost centers' by name), with the forecast they come from."""

    forecast: Forecast | None  # None without a budget: nothing was forecast
    budgets: list[BudgetFigures]


def budgets_glance(*, subscription: Subscription, now: dt.datetime) -> BudgetsGlance:
    """The organization's budgets against this usage month's spend and forecast. One query
    without budgets; a fixed number with them, however many."""
    budgets = {
        budget.cost_center: budget
        for budget in Budget.objects.filter(organization_id=subscription.organization_id)
    }
    if not budgets:
        return BudgetsGlance(forecast=None, budgets=[])
    forecast = spend_forecast(subscription=subscription, now=now)
    figures = []
    if "" in budgets:
        figures.append(BudgetFigures.of_organization(BudgetState(budgets.pop(""), forecast)))
    if budgets:
        figures += [
            BudgetFigures.of_cost_center(item)
            for item in _cost_center_budgets(
                organization_id=subscription.organization_id,
                forecast=forecast,
                budgets=budgets,
                names=set(budgets),
            )
        ]
    return BudgetsGlance(forecast=forecast, budgets=figures)


HISTORY_SHOWN = 50


def budget_changes(*, organization: Organization) -> list[BudgetChange]:
    """The latest changes of the organization's budgets, newest first. One query."""
    return list(
        BudgetChange.objects.filter(organization=organization).select_related(
            "changed_by", "changed_by_token"
        )[:HISTORY_SHOWN]
    )


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
