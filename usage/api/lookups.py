"""The rows a path names, or the refusal that says which is missing (404)."""

from __future__ import annotations

from billing.errors import BillingError, ErrorCode
from billing.models import Organization
from usage.models import AIEmployee, PhoneNumber


def _found(rows, code: ErrorCode, detail: str):
    found = rows.first()
    if found is None:
        raise BillingError(code, detail)
    return found


def organization(slug: str) -> Organization:
    return _found(
        Organization.objects.filter(slug=slug),
        ErrorCode.ORGANIZATION_NOT_FOUND,
        f"There is no organization with the id {slug!r}.",
    )


def employee(organization: Organization, employee_id: int) -> AIEmployee:
    return _found(
        organization.employees.filter(pk=employee_id),
        ErrorCode.EMPLOYEE_NOT_FOUND,
        f"{organization} has no AI employee with the id {employee_id}.",
    )


def phone_number(organization: Organization, number_id: int) -> PhoneNumber:
    return _found(
        organization.phone_numbers.filter(pk=number_id),
        ErrorCode.PHONE_NUMBER_NOT_FOUND,
        f"{organization} has no phone number with the id {number_id}.",
    )
