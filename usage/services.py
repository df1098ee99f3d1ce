"""Writes of the usage app's inventory: AI employees and phone numbers, and the deletion of
an organization's usage data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.errors import BillingError, ErrorCode
from billing.models import Organization, Subscription
from billing.subscriptions.services import subscription_lock_live
from usage.alerts.selectors import Metric
from usage.alerts.services import Change, usage_alert_notices_queue, usage_alerts_evaluate
from usage.metering.services import usage_period_for
from usage.models import (
    AIEmployee,
    Call,
    PhoneNumber,
    PhoneNumberRate,
    UsageCounter,
    UsageReport,
)

BLOCKED_STATUSES = (Subscription.Status.SUSPENDED,)


def _refuse_when_suspended(subscription: Subscription, action: str) -> None:
    if subscription.status in BLOCKED_STATUSES:
        raise BillingError(
            ErrorCode.SUBSCRIPTION_SUSPENDED,
            f"The subscription is suspended for non-payment, so {action}. "
            "Update the payment method or pay the open invoice to restore service.",
        )


# --- AI employees -------------------------------------------------------------------------


def _check_employee_quota(subscription: Subscription) -> None:
    limit = subscription.plan.max_active_employees
    if limit is None:
        return
    active = AIEmployee.objects.filter(
        organization_id=subscription.organization_id, is_active=True
    ).count()
    if active >= limit:
        raise BillingError(
            ErrorCode.EMPLOYEE_QUOTA_REACHED,
            f"{active} of {limit} AI employees active: the {subscription.plan.name} plan allows "
            f"{limit}. Upgrade to a plan with more AI employees, or deactivate one to free a place.",
            limit=limit,
            active=active,
            ways_out=["upgrade", "deactivate"],
        )


@transaction.atomic
def employee_create(
    *,
    organization: Organization,
    name: str,
    cost_center: str = "",
    inbound_capable: bool = True,
    now: dt.datetime | None = None,
) -> AIEmployee:
    """Create an AI employee. The quota is checked before anything else is done."""
    now = now or timezone.now()
    subscription = subscription_lock_live(organization_id=organization.pk)
    _refuse_when_suspended(subscription, "no AI employees can be created")
    _check_employee_quota(subscription)
    employee = AIEmployee(
        organization=organization,
        name=name,
        cost_center=cost_center,
        inbound_capable=inbound_capable,
        created_at=now,
    )
    employee.full_clean()
    employee.save()
    _count_alerts(subscription, Metric.ACTIVE_EMPLOYEES, now)
    return employee


@transaction.atomic
def employee_deactivate(*, employee: AIEmployee, now: dt.datetime | None = None) -> AIEmployee:
    """Take an employee out of service: configuration and history stay, the quota is freed."""
    now = now or timezone.now()
    AIEmployee.objects.filter(pk=employee.pk, is_active=True).update(
        is_active=False, deactivated_at=now
    )
    employee.refresh_from_db()
    return employee


@transaction.atomic
def employee_reactivate(*, employee: AIEmployee) -> AIEmployee:
    """Put an employee back in service: checked against the quota like a new one."""
    subscription = subscription_lock_live(organization_id=employee.organization_id)
    employee.refresh_from_db()
    if employee.is_active:
        return employee
    _refuse_when_suspended(subscription, "no AI employees can be reactivated")
    _check_employee_quota(subscription)
    employee.is_active = True
    employee.deactivated_at = None
    employee.save(update_fields=["is_active", "deactivated_at"])
    _count_alerts(subscription, Metric.ACTIVE_EMPLOYEES, timezone.now())
    return employee


def _count_alerts(subscription: Subscription, metric: str, now: dt.datetime) -> None:
    """Usage alerts on a count that just went up by one (the subscription row is locked, so
    counts change one at a time)."""
    if metric == Metric.ACTIVE_EMPLOYEES:
        count = AIEmployee.objects.filter(
            organization_id=subscription.organization_id, is_active=True
        ).count()
    else:
        count = PhoneNumber.objects.filter(
            organization_id=subscription.organization_id, released_at__isnull=True
        ).count()
    usage_alert_notices_queue(
        alerts=usage_alerts_evaluate(
            subscription=subscription,
            period=usage_period_for(subscription, now),
            changes=[Change(metric, Decimal(count - 1), Decimal(count))],
            now=now,
        )
    )


# --- phone numbers ------------------------------------------------------------------------


def _check_can_answer(employee: AIEmployee, organization_id: int) -> None:
    """Only an active AI employee of the organization that takes inbound calls answers a number."""
    if employee.organization_id != organization_id:
        raise BillingError(ErrorCode.UNKNOWN_EMPLOYEE)
    if not employee.is_active:
        raise BillingError(
            ErrorCode.EMPLOYEE_INACTIVE, f"{employee} is deactivated; reactivate it first."
        )
    if not employee.inbound_capable:
        raise BillingError(
            ErrorCode.EMPLOYEE_OUTBOUND_ONLY,
            f"{employee} only places calls and cannot answer a number.",
        )


def phone_number_rate(
    *, number_type: str, country: str, region: str, currency: str
) -> PhoneNumberRate:
    """The price-list entry for a number: the region's own rate, else the country's."""
    rate = (
        PhoneNumberRate.objects.filter(
            Q(region=region) | Q(region=""),
            number_type=number_type,
            country=country,
            monthly_price_currency=currency,
        )
        .order_by("-region")
        .first()
    )
    if rate is None:
        raise BillingError(
            ErrorCode.NO_RATE,
            f"No {number_type.replace('_', '-')} numbers are offered in {country} {region}".strip()
            + f" in {currency}.",
        )
    return rate


@transaction.atomic
def phone_number_provision(
    *,
    organization: Organization,
    number: str,
    number_type: str,
    country: str,
    region: str = "",
    vanity: bool = False,
    employee: AIEmployee | None = None,
    now: dt.datetime | None = None,
) -> PhoneNumber:
    now = now or timezone.now()
    subscription = subscription_lock_live(organization_id=organization.pk)
    _refuse_when_suspended(subscription, "no phone numbers can be provisioned")
    limit = subscription.plan.max_phone_numbers
    active = PhoneNumber.objects.filter(organization=organization, released_at__isnull=True)
    if limit is not None and active.count() >= limit:
        raise BillingError(
            ErrorCode.PHONE_NUMBER_LIMIT_REACHED,
            f"{limit} of {limit} phone numbers in use: the {subscription.plan.name} plan allows "
            f"{limit}. Release a number or upgrade for more.",
            limit=limit,
        )
    held = PhoneNumber.objects.filter(number=number).values_list("organization_id", "released_at")
    for holder, released_at in held:
        if holder == organization.pk and released_at is None:
            raise BillingError(
                ErrorCode.NUMBER_ALREADY_HELD, f"{number} is already one of your numbers."
            )
        if holder == organization.pk:
            raise BillingError(
                ErrorCode.NUMBER_RELEASED,
                f"{number} was released by this organization and cannot be provisioned again.",
            )
        if released_at is None:
            raise BillingError(ErrorCode.NUMBER_UNAVAILABLE, f"{number} is not available.")
    if employee is not None:
        _check_can_answer(employee, organization.pk)
    rate = phone_number_rate(
        number_type=number_type, country=country, region=region, currency=organization.currency
    )
    phone_number = PhoneNumber(
        organization=organization,
        number=number,
        number_type=number_type,
        country=country,
        region=region,
        is_vanity=vanity,
        monthly_fee=rate.monthly_fee(vanity=vanity),
        employee=employee,
        provisioned_at=now,
    )
    phone_number.full_clean()
    try:
        with transaction.atomic():
            phone_number.save()
    except IntegrityError as error:  # another request took the number first
        raise BillingError(ErrorCode.NUMBER_UNAVAILABLE, f"{number} is not available.") from error
    _count_alerts(subscription, Metric.PHONE_NUMBERS, now)
    return phone_number


@transaction.atomic
def phone_number_assign(*, phone_number: PhoneNumber, employee: AIEmployee | None) -> PhoneNumber:
    if phone_number.released_at is not None:
        raise BillingError(ErrorCode.NUMBER_RELEASED, f"{phone_number} has been released.")
    if employee is not None:
        _check_can_answer(employee, phone_number.organization_id)
    phone_number.employee = employee
    phone_number.save(update_fields=["employee"])
    return phone_number


@transaction.atomic
def phone_number_release(
    *, phone_number: PhoneNumber, now: dt.datetime | None = None
) -> PhoneNumber:
    """Stop future charges. The partial month is not refunded and the number cannot return."""
    now = now or timezone.now()
    PhoneNumber.objects.filter(pk=phone_number.pk, released_at__isnull=True).update(
        released_at=now, employee=None
    )
    phone_number.refresh_from_db()
    return phone_number


# --- retention ----------------------------------------------------------------------------


@transaction.atomic
def organization_usage_data_delete(*, organization_id: int) -> dict[str, int]:
    """Delete an organization's calls, usage counters and reports, phone numbers and AI
    employees, for good. Billing records are untouched: invoice lines carry their own copy
    of what was billed. Returns how many rows of each kind were deleted."""
    # Calls go first: they protect the AI employees that made them.
    kinds = {
        "calls": Call,
        "usage_counters": UsageCounter,
        "usage_reports": UsageReport,
        "phone_numbers": PhoneNumber,
        "ai_employees": AIEmployee,
    }
    deleted = {}
    for kind, model in kinds.items():
        _, per_model = model.objects.filter(organization_id=organization_id).delete()
        deleted[kind] = per_model.get(model._meta.label, 0)
    return deleted
