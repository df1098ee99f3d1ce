"""AI employees: created against the plan's quota, deactivated, reactivated."""

from __future__ import annotations

from typing import Annotated

from ninja import Router, Schema
from ninja.responses import Status
from pydantic import StringConstraints

from billing.errors import ErrorCode
from usage import services
from usage.api import lookups
from usage.api.answers import (
    EMPLOYEE_LOOKUP,
    EMPLOYEE_QUOTA,
    answers,
)
from usage.api.inputs import Id, Input, PathText

router = Router(tags=["AI employees"])


class EmployeeIn(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    cost_center: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""
    inbound_capable: bool = True


class EmployeeOut(Schema):
    id: int
    name: str
    cost_center: str
    inbound_capable: bool
    is_active: bool


@router.post(
    "orgs/{org}/employees",
    **answers({201: EmployeeOut}, refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, *EMPLOYEE_QUOTA)),
    summary="Create an AI employee",
)
def create_employee(request, org: PathText, payload: EmployeeIn):
    """Checked against the plan's quota before anything is configured: at the limit the
    answer is 409 `employee_quota_reached` with the limit and the ways out."""
    employee = services.employee_create(
        organization=lookups.organization(org), **payload.model_dump()
    )
    return Status(201, employee)


@router.post(
    "orgs/{org}/employees/{employee_id}/deactivate",
    **answers({200: EmployeeOut}, refusals=EMPLOYEE_LOOKUP, body=False),
)
def deactivate_employee(request, org: PathText, employee_id: Id):
    employee = lookups.employee(lookups.organization(org), employee_id)
    return services.employee_deactivate(employee=employee)


@router.post(
    "orgs/{org}/employees/{employee_id}/reactivate",
    **answers({200: EmployeeOut}, refusals=(*EMPLOYEE_LOOKUP, *EMPLOYEE_QUOTA), body=False),
)
def reactivate_employee(request, org: PathText, employee_id: Id):
    employee = lookups.employee(lookups.organization(org), employee_id)
    return services.employee_reactivate(employee=employee)
