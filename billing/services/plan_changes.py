"""Plan changes that reach into the usage app: the preview with what the organization holds,
the change that lets AI employees and numbers go, and applying a scheduled change's removals
at renewal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing.accounts.services import Actor
from billing.errors import BillingError
from billing.models import Plan, Subscription
from billing.selectors import plan_change_preview
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import PlanChangePreview
from usage import services as usage_services
from usage.models import AIEmployee, PhoneNumber


def _chosen_removals(
    preview: PlanChangePreview, employee_ids: list[int], number_ids: list[int]
) -> dict[str, list[int]]:
    """The AI employees and numbers the admin chose to let go, checked to bring the
    organization within the new plan's limits."""
    active = {employee.pk for employee in preview.active_employees}
    held = {number.pk for number in preview.held_numbers}
    employees = sorted(set(employee_ids) & active)
    numbers = sorted(set(number_ids) & held)
    short_employees = preview.employees_over - len(employees)
    short_numbers = preview.numbers_over - len(numbers)
    if short_employees > 0 or short_numbers > 0:
        plan = preview.new_plan
        missing = []
        if short_employees > 0:
            missing.append(
                f"{short_employees} more AI employee{'s' if short_employees > 1 else ''} to "
                f"deactivate ({plan.name} allows {plan.max_active_employees})"
            )
        if short_numbers > 0:
            missing.append(
                f"{short_numbers} more phone number{'s' if short_numbers > 1 else ''} to "
                f"release ({plan.name} allows {plan.max_phone_numbers})"
            )
        raise BillingError(
            "over_new_limits",
            "Choose " + " and ".join(missing) + ".",
            employees_over=preview.employees_over,
            numbers_over=preview.numbers_over,
        )
    return {"employees": employees, "phone_numbers": numbers} if employees or numbers else {}


@transaction.atomic
def subscription_plan_change(
    *,
    subscription: Subscription,
    plan: Plan,
    actor: Actor = None,
    now: dt.datetime | None = None,
    at_period_end: bool = False,
    deactivate_employee_ids: list[int] = (),
    release_number_ids: list[int] = (),
) -> Subscription:
    """Change plans. An upgrade applies at once, its proration on the next invoice (or on
    an invoice of its own, `BILLING_INVOICE_PRORATIONS_IMMEDIATELY`); a downgrade, or any
    change `at_period_end`, is scheduled for the end of the period or of the commitment,
    with the AI employees and numbers chosen to go when it takes effect."""
    now = now or timezone.now()
    subscription = subscription_services.subscription_lock_for_plan_change(
        subscription=subscription, plan=plan
    )
    preview = plan_change_preview(
        subscription=subscription, plan=plan, now=now, at_period_end=at_period_end
    )
    removals = _chosen_removals(preview, list(deactivate_employee_ids), list(release_number_ids))
    if preview.applies_now and removals:
        _removals_apply(subscription, plan, removals, at=now)
    return subscription_services.subscription_plan_change_record(
        subscription=subscription, preview=preview, removals=removals, actor=actor, now=now
    )


@dataclass(frozen=True)
class Removals:
    """What a plan change took out of service: chosen by the admin, or, when they were
    not enough, the most recently added beyond the new limits."""

    employees: list[str]
    numbers: list[str]
    automatic: bool

    def __bool__(self) -> bool:
        return bool(self.employees or self.numbers)


def _removals_apply(
    subscription: Subscription, plan: Plan, chosen: dict, at: dt.datetime
) -> Removals:
    organization_id = subscription.organization_id
    employees = AIEmployee.objects.filter(organization_id=organization_id, is_active=True)
    numbers = PhoneNumber.objects.filter(organization_id=organization_id, released_at__isnull=True)
    let_go = list(employees.filter(pk__in=chosen.get("employees", [])))
    released = list(numbers.filter(pk__in=chosen.get("phone_numbers", [])))
    automatic = False
    # Added since the choice was made, or never chosen: the newest go first, never silently.
    if plan.max_active_employees is not None:
        staying = employees.exclude(pk__in=[e.pk for e in let_go]).order_by("created_at", "pk")
        extra = list(staying[plan.max_active_employees :])
        automatic |= bool(extra)
        let_go += extra
    if plan.max_phone_numbers is not None:
        kept = numbers.exclude(pk__in=[n.pk for n in released]).order_by("provisioned_at", "pk")
        extra = list(kept[plan.max_phone_numbers :])
        automatic |= bool(extra)
        released += extra
    for employee in let_go:
        usage_services.employee_deactivate(employee=employee, now=at)
    for number in released:
        usage_services.phone_number_release(phone_number=number, now=at)
    return Removals(
        employees=[employee.name for employee in let_go],
        numbers=[number.number for number in released],
        automatic=automatic,
    )


def scheduled_change_apply(*, subscription: Subscription, at: dt.datetime) -> Removals:
    """Take out of service what the scheduled plan leaves no room for, at the moment the
    change takes effect. Called by renewal, under the subscription's lock."""
    removals = _removals_apply(
        subscription, subscription.scheduled_plan, subscription.scheduled_removals, at
    )
    subscription.scheduled_removals = {}
    return removals
