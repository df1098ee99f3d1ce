"""What the organization's recent usage would have cost on other plans: each plan's cost
over the last closed usage months with a recommendation (upgrade, downgrade or keep), and
the recent months that would have gone past a plan's allowances."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import OuterRef
from djmoney.money import Money

from billing.models import Organization, Plan
from billing.money import round_money
from billing.subscriptions import periods
from usage.models import AIEmployee, PhoneNumber, UsageCounter
from usage.selectors import (
    GIB,
    Allowance,
    call_overage_cost,
    count_per_organization,
    storage_overage_cost,
)

# --- what each plan would have cost -------------------------------------------------------

COMPARED_MONTHS = 3
# Guide, page 5: an allowance nearly used up is a reason to upgrade; less than half of every
# allowance used, a reason to downgrade.
NEARLY_USED_PERCENT = 90
UNDERUSED_PERCENT = 50


@dataclass(frozen=True)
class UsedMonth:
    """What the organization used in one closed usage month."""

    period: periods.Period
    call_seconds: int
    api_calls: int
    storage_peak_bytes: int


def _refused_seconds(plan: Plan, overage_seconds: int) -> int:
    """Seconds beyond the allowance that calls would not have had: all of them on a `block`
    plan, those past the overage cap on a `charge` plan."""
    if overage_seconds <= 0:
        return 0
    if not plan.charges_overage:
        return overage_seconds
    rate = plan.overage_rate_per_second.amount
    if plan.overage_cap is None or rate <= 0:
        return 0
    return max(overage_seconds - int(plan.overage_cap.amount / rate), 0)


@dataclass(frozen=True)
class NamedAllowance:
    name: str
    allowance: Allowance

    def used_at_least(self, percent: int) -> bool:
        used, limit = self.allowance.used, self.allowance.limit
        return limit is not None and used > 0 and used * 100 >= percent * limit

    def used_below(self, percent: int) -> bool:
        used, limit = self.allowance.used, self.allowance.limit
        return limit is None or used == 0 or used * 100 < percent * limit


def _allowances(plan: Plan, month: UsedMonth, employees: int, numbers: int) -> list[NamedAllowance]:
    """A month's use against the plan's allowances. Only counters are kept per month, so AI
    employees and phone numbers are counted as they are now."""
    storage_limit = plan.storage_gb * GIB if plan.storage_gb is not None else None
    return [
        NamedAllowance("call time", Allowance(month.call_seconds, plan.included_call_seconds)),
        NamedAllowance("AI employees", Allowance(employees, plan.max_active_employees)),
        NamedAllowance("phone numbers", Allowance(numbers, plan.max_phone_numbers)),
        NamedAllowance("storage", Allowance(month.storage_peak_bytes, storage_limit)),
        NamedAllowance("API calls", Allowance(month.api_calls, plan.api_calls_per_month)),
    ]


@dataclass(frozen=True)
class PlanCost:
    """What the compared months would have cost on one plan, with the same usage."""

    plan: Plan
    months: int
    subscription: Money  # the plan's monthly price equivalent, once per month
    call_overage: Money  # the cap applied
    refused_seconds: int  # calls a `block` allowance or the overage cap would have refused
    storage_overage: Money  # on each month's peak
    phone_numbers: Money  # the numbers held now, beyond the plan's free ones
    fits: bool  # every allowance would have held every month's usage
    versus_current: Money | None = None  # per month, against the current plan

    @property
    def total(self) -> Money:
        return self.subscription + self.call_overage + self.storage_overage + self.phone_numbers

    @property
    def per_month(self) -> Money:
        return round_money(self.total / self.months)


def _plan_cost(
    plan: Plan, months: list[UsedMonth], employees: int, number_fees: list[Money]
) -> PlanCost:
    zero = Money(0, plan.currency)
    call_overage, storage_overage, refused = zero, zero, 0
    for month in months:
        included = plan.included_call_seconds
        overage = max(month.call_seconds - included, 0) if included is not None else 0
        call_overage += call_overage_cost(plan=plan, overage_seconds=overage)
        refused += _refused_seconds(plan, overage)
        storage_overage += storage_overage_cost(plan=plan, peak_bytes=month.storage_peak_bytes)
    # The plan's free numbers are the earliest provisioned, as on the invoice.
    numbers_a_month = sum(number_fees[plan.free_phone_numbers :], zero)
    return PlanCost(
        plan=plan,
        months=len(months),
        subscription=plan.monthly_equivalent * len(months),
        call_overage=call_overage,
        refused_seconds=refused,
        storage_overage=storage_overage,
        phone_numbers=numbers_a_month * len(months),
        fits=not any(
            named.allowance.over
            for month in months
            for named in _allowances(plan, month, employees, len(number_fees))
        ),
    )


@dataclass(frozen=True)
class PlanRecommendation:
    action: str  # "upgrade", "downgrade", or "keep": the plan fits
    current: PlanCost
    plan: PlanCost | None  # the plan to change to
    nearly_used: list[str]  # allowances of the current plan used ≥ 90% in one of the months

    @property
    def saving(self) -> Money | None:
        """A month, against the current plan."""
        return self.current.per_month - self.plan.per_month if self.plan else None


def _recommendation(
    current: PlanCost, costs: list[PlanCost], used: list[NamedAllowance]
) -> PlanRecommendation:
    """Guide, page 5: close to an allowance, upgrade when a higher plan costs less than the
    current one with its overage; under half of every allowance, downgrade to the cheapest
    lower plan that would have held the usage."""
    nearly_used = list(
        dict.fromkeys(named.name for named in used if named.used_at_least(NEARLY_USED_PERCENT))
    )
    action, candidates = "keep", []
    if nearly_used:
        action = "upgrade"
        candidates = [cost for cost in costs if cost.plan.rank > current.plan.rank]
    elif all(named.used_below(UNDERUSED_PERCENT) for named in used):
        action = "downgrade"
        candidates = [cost for cost in costs if cost.plan.rank < current.plan.rank and cost.fits]
    choice = min(
        (cost for cost in candidates if cost.total < current.total),
        key=lambda cost: (cost.total.amount, cost.plan.rank),
        default=None,
    )
    return PlanRecommendation(
        action=action if choice else "keep",
        current=current,
        plan=choice,
        nearly_used=nearly_used,
    )


@dataclass(frozen=True)
class Scenario:
    """Growth to plan for: calls up (or down) by a percent, and more AI employees, each
    calling like the average of those active now."""

    calls_percent: Decimal = Decimal(0)
    more_employees: int = 0

    def employees(self, active: int) -> int:
        return active + self.more_employees

    def call_seconds(self, seconds: int, active: int) -> int:
        factor = 1 + self.calls_percent / 100
        if active and self.more_employees:
            factor *= Decimal(active + self.more_employees) / active
        return int((seconds * factor).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class PlanFit:
    months: list[UsedMonth]  # newest first; empty before the first usage month closes
    costs: list[PlanCost]  # one per compared plan, in the order given
    current: PlanCost | None
    recommendation: PlanRecommendation | None  # with usage months and a current plan


def plan_fit(
    *,
    organization: Organization,
    current_plan: Plan | None,
    plans: list[Plan],
    scenario: Scenario | None = None,
) -> PlanFit:
    """What the organization's last closed usage months (up to three) would have cost on each
    of `plans` and on its current plan, from its real usage (grown as `scenario` says), and
    whether to change plans. Two queries whatever the number of months or plans (one before
    the first month closes)."""
    counters = list(
        UsageCounter.objects.filter(organization=organization, closed_at__isnull=False)
        .annotate(
            active_employees=count_per_organization(
                AIEmployee.objects.filter(organization=OuterRef("organization"), is_active=True)
            )
        )
        .order_by("-period_start")[:COMPARED_MONTHS]
    )
    if not counters:
        return PlanFit(months=[], costs=[], current=None, recommendation=None)
    employees = counters[0].active_employees or 0
    scenario = scenario or Scenario()
    months = [
        UsedMonth(
            periods.Period(counter.period_start, counter.period_end),
            scenario.call_seconds(counter.call_seconds, employees),
            counter.api_calls,
            counter.storage_peak_bytes,
        )
        for counter in counters
    ]
    employees = scenario.employees(employees)
    number_fees = [
        number.monthly_fee
        for number in PhoneNumber.objects.filter(
            organization=organization, released_at__isnull=True
        ).order_by("provisioned_at", "pk")
    ]
    current = _plan_cost(current_plan, months, employees, number_fees) if current_plan else None
    costs = [_plan_cost(plan, months, employees, number_fees) for plan in plans]
    if current is None:
        return PlanFit(months=months, costs=costs, current=None, recommendation=None)
    costs = [replace(cost, versus_current=cost.per_month - current.per_month) for cost in costs]
    used = [
        named
        for month in months
        for named in _allowances(current_plan, month, employees, len(number_fees))
    ]
    return PlanFit(
        months=months,
        costs=costs,
        current=current,
        recommendation=_recommendation(current, costs, used),
    )


# --- recent usage against another plan ----------------------------------------------------


@dataclass(frozen=True)
class MonthBeyondPlan:
    """A recent usage month that would have gone past a plan's allowances."""

    period: periods.Period
    is_current: bool  # the month so far
    call_seconds: int
    included_seconds: int
    over_seconds: int
    refused_seconds: int  # calls the plan would have refused (`block`, or past the cap)
    call_overage: Money  # what the plan would have charged for the rest
    storage_overage: Money


def usage_beyond_plan(
    *, organization: Organization, plan: Plan, now: dt.datetime
) -> list[MonthBeyondPlan]:
    """The organization's last closed usage months (up to three) and the month so far, those
    of them whose use would have gone past `plan`'s call or storage allowance, newest first:
    what the plan would have refused or charged. One query."""
    counters = list(
        UsageCounter.objects.filter(organization=organization, period_start__lte=now).order_by(
            "-period_start"
        )[: COMPARED_MONTHS + 1]
    )
    if counters and now not in periods.Period(counters[0].period_start, counters[0].period_end):
        counters = counters[:COMPARED_MONTHS]  # nothing used this month yet
    beyond = []
    for counter in counters:
        period = periods.Period(counter.period_start, counter.period_end)
        included = plan.included_call_seconds
        over = max(counter.call_seconds - included, 0) if included is not None else 0
        storage = storage_overage_cost(plan=plan, peak_bytes=counter.storage_peak_bytes)
        if not over and not storage.amount:
            continue
        beyond.append(
            MonthBeyondPlan(
                period=period,
                is_current=now in period,
                call_seconds=counter.call_seconds,
                included_seconds=included or 0,
                over_seconds=over,
                refused_seconds=_refused_seconds(plan, over),
                call_overage=call_overage_cost(plan=plan, overage_seconds=over),
                storage_overage=storage,
            )
        )
    return beyond
