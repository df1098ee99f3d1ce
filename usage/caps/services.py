"""Writes of spend caps. Every change is recorded (`SpendCapChange`: what, from, to, who,
when) in the transaction that makes it; authorization reads the caps on every call, so a
change applies from the next one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.errors import BillingError, ErrorCode
from billing.locks import organization_lock
from billing.models import Organization
from billing.subscriptions.selectors import subscription_live
from usage.models import AIEmployee, ServiceToken, SpendCap, SpendCapChange

Scope = SpendCap.Scope


def _check_overage_spend(organization: Organization, amount: Decimal) -> None:
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION, field="overage_spend")
    plan = subscription.plan
    if not plan.charges_overage or plan.included_call_seconds is None:
        raise BillingError(
            ErrorCode.NO_OVERAGE_TO_CAP,
            f"The {plan.name} plan does not charge overage, so there is no overage spend to cap.",
            field="overage_spend",
        )
    if plan.overage_cap is not None and amount > plan.overage_cap.amount:
        raise BillingError(
            ErrorCode.CAP_ABOVE_PLAN_CAP,
            f"The overage spend cap is at most the {plan.name} plan's own overage cap of "
            f"{plan.overage_cap}.",
            field="overage_spend",
        )


def _check_targets(
    organization: Organization, employees: Mapping[int, int], cost_centers: Mapping[str, int]
) -> dict[int, AIEmployee]:
    """The AI employees capped, all the organization's; the cost centers, each one of its
    AI employees'."""
    found = {
        e.pk: e for e in AIEmployee.objects.filter(organization=organization, pk__in=employees)
    }
    for employee_id in employees:
        if employee_id not in found:
            raise BillingError(
                ErrorCode.EMPLOYEE_NOT_FOUND,
                f"{organization} has no AI employee with the id {employee_id}.",
                field="employees",
            )
    known = set(
        AIEmployee.objects.filter(organization=organization, cost_center__in=cost_centers)
        .values_list("cost_center", flat=True)
        .distinct()
    )
    for cost_center in cost_centers:
        if cost_center not in known:
            raise BillingError(
                ErrorCode.COST_CENTER_NOT_FOUND,
                f"No AI employee of {organization} is in the cost center {cost_center!r}.",
                field="cost_centers",
            )
    return found


def _subject(scope: str, employee: AIEmployee | None, cost_center: str) -> str:
    if scope == Scope.OVERAGE_SPEND:
        return "Overage spend"
    if scope == Scope.EMPLOYEE:
        return f"AI employee {employee.name}"
    return f"Cost center {cost_center}"


@transaction.atomic
def spend_caps_replace(
    *,
    organization: Organization,
    overage_spend: Decimal | None,
    employees: Mapping[int, int],
    cost_centers: Mapping[str, int],
    actor: AbstractBaseUser | None = None,
    token: ServiceToken | None = None,
    now: dt.datetime | None = None,
) -> list[SpendCapChange]:
    """Make the organization's caps exactly these: the overage spend cap (money, `None`: no
    cap), and call seconds per usage month per AI employee id and per cost center (absent:
    no cap). Returns the changes recorded, one per cap set, changed or removed."""
    now = now or timezone.now()
    if overage_spend is not None:
        if overage_spend < 0:
            raise BillingError(
                ErrorCode.CAP_INVALID,
                "The overage spend cap is zero or more.",
                field="overage_spend",
            )
        _check_overage_spend(organization, overage_spend)
    for limit in (*employees.values(), *cost_centers.values()):
        if limit <= 0:
            raise BillingError(ErrorCode.CAP_INVALID, "A call-time cap is more than zero.")
    found = _check_targets(organization, employees, cost_centers)
    # Changes of one organization's caps take turns, so each records what it replaced.
    organization_lock().filter(pk=organization.pk).get()
    current = {
        (cap.scope, cap.employee_id, cap.cost_center): cap
        for cap in SpendCap.objects.filter(organization=organization).select_related("employee")
    }
    wanted: dict[tuple[str, int | None, str], Decimal | int] = {
        (Scope.EMPLOYEE, employee_id, ""): seconds for employee_id, seconds in employees.items()
    }
    wanted |= {(Scope.COST_CENTER, None, name): seconds for name, seconds in cost_centers.items()}
    if overage_spend is not None:
        wanted[Scope.OVERAGE_SPEND, None, ""] = overage_spend
    changes = []
    for key in sorted(current.keys() | wanted.keys(), key=str):
        scope, employee_id, cost_center = key
        cap = current.get(key)
        before = _limit(cap)
        after = wanted.get(key)
        if before == after:
            continue
        employee = cap.employee if cap is not None else found.get(employee_id)
        if after is None:
            cap.delete()
        else:
            cap = cap or SpendCap(
                organization=organization,
                scope=scope,
                employee=employee,
                cost_center=cost_center,
            )
            if scope == Scope.OVERAGE_SPEND:
                cap.overage_limit = Money(after, organization.currency)
            else:
                cap.call_seconds_limit = after
            cap.changed_at, cap.changed_by = now, actor
            cap.save()
        changes.append(
            SpendCapChange.objects.create(
                organization=organization,
                scope=scope,
                employee=employee,
                subject=_subject(scope, employee, cost_center),
                previous_limit=before,
                new_limit=after,
                changed_at=now,
                changed_by=actor,
                changed_by_token=token,
            )
        )
    return changes


def _limit(cap: SpendCap | None) -> Decimal | int | None:
    if cap is None:
        return None
    if cap.scope == Scope.OVERAGE_SPEND:
        return cap.overage_limit.amount
    return cap.call_seconds_limit
