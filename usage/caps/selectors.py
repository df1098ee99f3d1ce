"""Reads of spend caps for the caps page, the API and the admin: each cap, its use this
usage month, and the record of changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from djmoney.money import Money

from billing.models import Organization, Subscription
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage.models import AIEmployee, EmployeeUsageCounter, SpendCap, SpendCapChange
from usage.selectors import usage_summary

HISTORY_SHOWN = 50


@dataclass(frozen=True)
class CallTimeCapState:
    """An AI employee or a cost center: its cap (seconds, `None`: none) and use this month."""

    key: int | str  # the AI employee's id, or the cost center's name
    name: str
    limit: int | None
    used: int
    is_active: bool = True

    @property
    def percent(self) -> int | None:
        if self.limit is None:
            return None
        return self.used * 100 // self.limit

    @property
    def limit_minutes(self) -> int | None:
        return None if self.limit is None else -(-self.limit // 60)


@dataclass(frozen=True)
class SpendCapsOverview:
    subscription: Subscription | None
    period: periods.Period | None
    overage_spend_cap: Money | None
    plan_overage_cap: Money | None
    overage_spent: Money | None
    employees: list[CallTimeCapState]
    cost_centers: list[CallTimeCapState]
    changes: list[SpendCapChange]

    @property
    def can_cap_overage(self) -> bool:
        plan = self.subscription.plan if self.subscription else None
        return bool(plan and plan.charges_overage and plan.included_call_seconds is not None)


def spend_caps_overview(*, organization: Organization, now: dt.datetime) -> SpendCapsOverview:
    """The organization's caps and their use in the current usage month, in a constant
    number of queries whatever the number of AI employees."""
    subscription = subscription_live(organization=organization)
    period = subscription.usage_period_at(now) if subscription else None
    caps = list(SpendCap.objects.filter(organization=organization))
    overage = next((c.overage_limit for c in caps if c.scope == SpendCap.Scope.OVERAGE_SPEND), None)
    by_employee = {c.employee_id: c.call_seconds_limit for c in caps if c.employee_id}
    by_cost_center = {
        c.cost_center: c.call_seconds_limit for c in caps if c.scope == SpendCap.Scope.COST_CENTER
    }
    used_by_employee: dict[int, int] = {}
    used_by_cost_center: dict[str, int] = {}
    if period is not None:
        counters = EmployeeUsageCounter.objects.filter(
            organization=organization, period_start=period.start
        )
        used_by_employee = dict(
            counters.values("employee")
            .annotate(seconds=Sum("call_seconds"))
            .values_list("employee", "seconds")
        )
        used_by_cost_center = dict(
            counters.values("cost_center")
            .annotate(seconds=Sum("call_seconds"))
            .values_list("cost_center", "seconds")
        )
    employees = list(AIEmployee.objects.filter(organization=organization).order_by("name", "pk"))
    cost_center_names = sorted({e.cost_center for e in employees if e.cost_center})
    summary = usage_summary(subscription=subscription, now=now) if subscription else None
    return SpendCapsOverview(
        subscription=subscription,
        period=period,
        overage_spend_cap=overage,
        plan_overage_cap=subscription.plan.overage_cap if subscription else None,
        overage_spent=summary.overage_cost if summary else None,
        employees=[
            CallTimeCapState(
                e.pk, e.name, by_employee.get(e.pk), used_by_employee.get(e.pk, 0), e.is_active
            )
            for e in employees
            if e.is_active or e.pk in by_employee
        ],
        cost_centers=[
            CallTimeCapState(name, name, by_cost_center.get(name), used_by_cost_center.get(name, 0))
            for name in cost_center_names
        ],
        changes=list(
            SpendCapChange.objects.filter(organization=organization).select_related(
                "changed_by", "changed_by_token"
            )[:HISTORY_SHOWN]
        ),
    )
