"""Phone numbers: provisioned against the plan's limit, assigned, released."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Field, Router, Schema
from ninja.responses import Status
from pydantic import StringConstraints

from billing.errors import ErrorCode
from usage import services
from usage.api import lookups
from usage.api.answers import (
    ANSWERING,
    EMPLOYEE_LOOKUP,
    NUMBER_LOOKUP,
    answers,
)
from usage.api.inputs import E164, Country, Id, Input, PathText
from usage.models import PhoneNumber

router = Router(tags=["phone numbers"])


class PhoneNumberIn(Input):
    number: E164
    type: Literal["local", "toll_free"] = "local"
    country: Country
    region: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""
    vanity: bool = False
    employee_id: Id | None = None


class PhoneNumberOut(Schema):
    id: int
    number: str
    type: str = Field(alias="number_type")
    country: str
    region: str
    vanity: bool = Field(alias="is_vanity")
    monthly_fee: str
    currency: str
    employee_id: int | None
    provisioned_at: dt.datetime
    released_at: dt.datetime | None

    @staticmethod
    def resolve_monthly_fee(number: PhoneNumber) -> str:
        return str(number.monthly_fee.amount)

    @staticmethod
    def resolve_currency(number: PhoneNumber) -> str:
        return str(number.monthly_fee.currency)


@router.post(
    "orgs/{org}/phone-numbers",
    **answers(
        {201: PhoneNumberOut},
        refusals=(
            *EMPLOYEE_LOOKUP,
            ErrorCode.NO_SUBSCRIPTION,
            ErrorCode.SUBSCRIPTION_SUSPENDED,
            ErrorCode.PHONE_NUMBER_LIMIT_REACHED,
            ErrorCode.NUMBER_ALREADY_HELD,
            ErrorCode.NUMBER_RELEASED,
            ErrorCode.NUMBER_UNAVAILABLE,
            ErrorCode.NO_RATE,
            *ANSWERING,
        ),
    ),
    summary="Provision a number",
)
def provision_number(request, org: PathText, payload: PhoneNumberIn):
    organization = lookups.organization(org)
    employee = lookups.employee(organization, payload.employee_id) if payload.employee_id else None
    number = services.phone_number_provision(
        organization=organization,
        number=payload.number,
        number_type=payload.type,
        country=payload.country,
        region=payload.region,
        vanity=payload.vanity,
        employee=employee,
    )
    return Status(201, number)


class AssignIn(Input):
    employee_id: Id | None


@router.post(
    "orgs/{org}/phone-numbers/{number_id}/assign",
    **answers(
        {200: PhoneNumberOut},
        refusals=(
            *NUMBER_LOOKUP,
            ErrorCode.EMPLOYEE_NOT_FOUND,
            ErrorCode.NUMBER_RELEASED,
            *ANSWERING,
        ),
    ),
)
def assign_number(request, org: PathText, number_id: Id, payload: AssignIn):
    organization = lookups.organization(org)
    number = lookups.phone_number(organization, number_id)
    employee = lookups.employee(organization, payload.employee_id) if payload.employee_id else None
    return services.phone_number_assign(phone_number=number, employee=employee)


@router.post(
    "orgs/{org}/phone-numbers/{number_id}/release",
    **answers({200: PhoneNumberOut}, refusals=NUMBER_LOOKUP, body=False),
)
def release_number(request, org: PathText, number_id: Id):
    """Stops future charges; no refund for the partial month; the number cannot come back."""
    number = lookups.phone_number(lookups.organization(org), number_id)
    return services.phone_number_release(phone_number=number)
