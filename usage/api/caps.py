"""Spend caps: the organization's own hard monthly limits, checked by `calls/authorize`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from billing.errors import ErrorCode
from billing.models import Organization
from usage.api import lookups
from usage.api.answers import answers
from usage.api.inputs import Id, Input, PathText
from usage.caps import selectors as cap_selectors
from usage.caps import services as cap_services

router = Router(tags=["spend caps"])

CallSeconds = Annotated[int, Field(gt=0, le=2**31 - 1)]
CostCenter = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class EmployeeCapIn(Input):
    employee_id: Id
    call_seconds: CallSeconds = Field(description="Call seconds per usage month.")


class CostCenterCapIn(Input):
    cost_center: CostCenter
    call_seconds: CallSeconds = Field(description="Call seconds per usage month.")


class CapsIn(Input):
    overage_spend: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = Field(
        None,
        description="At most this much overage a usage month, in the organization's "
        "currency, and at most the plan's own overage cap; null: no cap of its own.",
    )
    employees: list[EmployeeCapIn] = Field(
        default_factory=list, description="Every AI employee capped; the others have no cap."
    )
    cost_centers: list[CostCenterCapIn] = Field(
        default_factory=list, description="Every cost center capped; the others have no cap."
    )

    @field_validator("employees")
    @classmethod
    def _employees_once(cls, caps: list[EmployeeCapIn]) -> list[EmployeeCapIn]:
        if len({cap.employee_id for cap in caps}) < len(caps):
            raise PydanticCustomError("repeated", "Each AI employee appears at most once.")
        return caps

    @field_validator("cost_centers")
    @classmethod
    def _cost_centers_once(cls, caps: list[CostCenterCapIn]) -> list[CostCenterCapIn]:
        if len({cap.cost_center for cap in caps}) < len(caps):
            raise PydanticCustomError("repeated", "Each cost center appears at most once.")
        return caps


class CallTimeCapOut(Schema):
    call_seconds: int | None = Field(description="The cap per usage month; null: none.")
    used_seconds: int = Field(description="Call seconds this usage month.")


class EmployeeCapOut(CallTimeCapOut):
    employee_id: int
    name: str


class CostCenterCapOut(CallTimeCapOut):
    cost_center: str


class CapsOut(Schema):
    currency: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    overage_spend: str | None = Field(description="The organization's own cap; null: none.")
    plan_overage_cap: str | None = Field(description="The plan's cap; null: none.")
    overage_spent: str | None = Field(description="Overage this usage month so far.")
    employees: list[EmployeeCapOut] = Field(description="Active AI employees, and capped ones.")
    cost_centers: list[CostCenterCapOut]


CAP_REFUSALS = (
    ErrorCode.ORGANIZATION_NOT_FOUND,
    ErrorCode.NO_SUBSCRIPTION,
    ErrorCode.NO_OVERAGE_TO_CAP,
    ErrorCode.CAP_ABOVE_PLAN_CAP,
    ErrorCode.CAP_INVALID,
    ErrorCode.EMPLOYEE_NOT_FOUND,
    ErrorCode.COST_CENTER_NOT_FOUND,
)


def money_text(money) -> str | None:
    return None if money is None else str(money.amount)


def _caps_out(organization: Organization) -> CapsOut:
    overview = cap_selectors.spend_caps_overview(organization=organization, now=timezone.now())
    return CapsOut(
        currency=organization.currency,
        period_start=overview.period.start if overview.period else None,
        period_end=overview.period.end if overview.period else None,
        overage_spend=money_text(overview.overage_spend_cap),
        plan_overage_cap=money_text(overview.plan_overage_cap),
        overage_spent=money_text(overview.overage_spent),
        employees=[
            EmployeeCapOut(
                employee_id=state.key,
                name=state.name,
                call_seconds=state.limit,
                used_seconds=state.used,
            )
            for state in overview.employees
        ],
        cost_centers=[
            CostCenterCapOut(
                cost_center=state.key, call_seconds=state.limit, used_seconds=state.used
            )
            for state in overview.cost_centers
        ],
    )


@router.get(
    "orgs/{org}/caps",
    **answers({200: CapsOut}, refusals=(ErrorCode.ORGANIZATION_NOT_FOUND,), body=False),
    summary="Spend caps and their use this month",
)
def get_caps(request, org: PathText):
    """The organization's own hard monthly limits, checked by `calls/authorize`: its overage
    spend (refused with `spend_cap_reached`), each AI employee's call time
    (`employee_cap_reached`) and each cost center's (`cost_center_cap_reached`)."""
    return _caps_out(lookups.organization(org))


@router.put(
    "orgs/{org}/caps",
    **answers({200: CapsOut}, refusals=CAP_REFUSALS),
    summary="Set the spend caps",
)
def put_caps(request, org: PathText, payload: CapsIn):
    """Replaces every cap: what the body leaves out has no cap. Each change is recorded (with
    this token) and applies from the next authorization. A refusal names its `field`."""
    organization = lookups.organization(org)
    cap_services.spend_caps_replace(
        organization=organization,
        overage_spend=payload.overage_spend,
        employees={cap.employee_id: cap.call_seconds for cap in payload.employees},
        cost_centers={cap.cost_center: cap.call_seconds for cap in payload.cost_centers},
        token=request.auth,
    )
    return _caps_out(organization)
