"""The platform API (`/api/v1/`): the calling platform asks before calls and reports usage.

Thin adapters: parse and validate, call one service or selector, shape the answer. Refusals
carry a stable `code`; bad input gets 422 naming each field and problem, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, NinjaAPI, Router, Schema
from ninja.responses import Status
from ninja.security import HttpBearer
from pydantic import AwareDatetime, StringConstraints

from billing.errors import BillingError
from billing.models import Organization
from billing.selectors import (
    FeatureStatus,
    feature_status,
    feature_statuses,
    subscription_live,
)
from usage import selectors, services
from usage.models import AIEmployee, PhoneNumber, ServiceToken, UsageReport

MAX_BATCH = 1000


class ServiceTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ServiceToken | None:
        return (
            ServiceToken.objects.filter(
                token_hash=ServiceToken.hash(token), revoked_at__isnull=True
            )
            .only("pk")
            .first()
        )


api = NinjaAPI(
    title="Billing platform API",
    version="1",
    description="Asked by the calling platform before every call and before creating an AI "
    "employee; told about finished calls, phone numbers, storage and API usage. "
    "Authenticate with `Authorization: Bearer <service token>` (created by staff in the admin).",
    auth=ServiceTokenAuth(),
    urls_namespace="api",
)


@api.exception_handler(BillingError)
def refused(request, error: BillingError):
    if isinstance(error, services.ReportRejected):
        return api.create_response(request, {"detail": _problems(error.problems)}, status=422)
    return api.create_response(
        request, {"code": error.code, "detail": error.message, **error.details}, status=409
    )


@api.exception_handler(ValidationError)
def invalid(request, error: ValidationError):
    """Model validation that the schemas did not catch: 422 naming the fields, like the rest."""
    detail = [
        {"loc": ["body", field], "msg": message, "type": "invalid"}
        for field, messages in error.message_dict.items()
        for message in messages
    ]
    return api.create_response(request, {"detail": detail}, status=422)


def _problems(problems: list[services.Problem]) -> list[dict]:
    return [
        {
            "loc": ["body", *(["calls", p.index] if p.index is not None else []), p.field],
            "msg": p.message,
            "type": p.code,
        }
        for p in problems
    ]


def _organization(slug: str) -> Organization:
    return get_object_or_404(Organization, slug=slug)


CallId = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Direction = Literal["inbound", "outbound"]
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


# --- calls --------------------------------------------------------------------------------

calls = Router(tags=["calls"])


class AuthorizeIn(Schema):
    employee_id: int = Field(gt=0)
    direction: Direction = "outbound"


class AuthorizeOut(Schema):
    allowed: bool
    reason: str = Field(description="`ok`, or why the call is refused (a stable code).")
    remaining_seconds: int | None = Field(
        description="Seconds left before calls are refused; null when there is no limit."
    )


@calls.post("orgs/{org}/calls/authorize", response=AuthorizeOut, summary="May this call start?")
def authorize_call(request, org: str, payload: AuthorizeIn):
    """Refused when the subscription is suspended or canceled, the AI employee is inactive or
    not the organization's, the allowance is used up on a `block` plan, or the overage cap is
    reached. An allowed call always completes: report it when it ends."""
    return selectors.call_authorize(
        organization_slug=org, employee_id=payload.employee_id, now=timezone.now()
    )


class CallIn(Schema):
    call_id: CallId = Field(description="The platform's id: a repeated report changes nothing.")
    employee_id: int = Field(gt=0)
    direction: Direction
    connected_at: AwareDatetime
    ended_at: AwareDatetime


class CallOut(Schema):
    call_id: str
    recorded: bool = Field(description="False when this call id had already been recorded.")
    billable_seconds: int


def _report(org: str, call: CallIn) -> services.CallReport:
    return services.CallReport(
        call_id=call.call_id,
        organization=org,
        employee_id=call.employee_id,
        direction=call.direction,
        connected_at=call.connected_at,
        ended_at=call.ended_at,
    )


@calls.post(
    "orgs/{org}/calls", response={200: CallOut, 201: CallOut}, summary="Report a finished call"
)
def record_call(request, org: str, payload: CallIn):
    try:
        result = services.calls_record(reports=[_report(org, payload)])
    except services.ReportRejected as rejected:
        if any(p.field == "organization" for p in rejected.problems):
            _organization(org)  # 404 for an unknown organization
        raise
    seconds = services.billable_seconds(payload.connected_at, payload.ended_at)
    recorded = bool(result.recorded)
    return Status(
        201 if recorded else 200,
        CallOut(call_id=payload.call_id, recorded=recorded, billable_seconds=seconds),
    )


class BatchCallIn(CallIn):
    org: str = Field(description="The organization's id (its slug).")


class BatchIn(Schema):
    calls: list[BatchCallIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchOut(Schema):
    recorded: int
    duplicates: list[str] = Field(description="Call ids that had already been recorded.")


@calls.post("calls/batch", response=BatchOut, summary="Report up to 1,000 finished calls")
def record_calls(request, payload: BatchIn):
    """Accepted or rejected whole: one bad call rejects the batch and nothing is written."""
    result = services.calls_record(reports=[_report(call.org, call) for call in payload.calls])
    return BatchOut(recorded=len(result.recorded), duplicates=result.duplicates)


# --- AI employees -------------------------------------------------------------------------

employees = Router(tags=["AI employees"])


class EmployeeIn(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    cost_center: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""
    inbound_capable: bool = True


class EmployeeOut(Schema):
    id: int
    name: str
    cost_center: str
    inbound_capable: bool
    is_active: bool


class Refusal(Schema):
    code: str
    detail: str


@employees.post(
    "orgs/{org}/employees",
    response={201: EmployeeOut, 409: Refusal},
    summary="Create an AI employee",
)
def create_employee(request, org: str, payload: EmployeeIn):
    """Checked against the plan's quota before anything is configured: at the limit the
    answer is 409 `employee_quota_reached` with the limit and the ways out."""
    employee = services.employee_create(organization=_organization(org), **payload.dict())
    return Status(201, employee)


def _employee(org: str, employee_id: int) -> AIEmployee:
    return get_object_or_404(AIEmployee, pk=employee_id, organization__slug=org)


@employees.post("orgs/{org}/employees/{employee_id}/deactivate", response=EmployeeOut)
def deactivate_employee(request, org: str, employee_id: int):
    return services.employee_deactivate(employee=_employee(org, employee_id))


@employees.post(
    "orgs/{org}/employees/{employee_id}/reactivate", response={200: EmployeeOut, 409: Refusal}
)
def reactivate_employee(request, org: str, employee_id: int):
    return services.employee_reactivate(employee=_employee(org, employee_id))


# --- phone numbers ------------------------------------------------------------------------

numbers = Router(tags=["phone numbers"])


class PhoneNumberIn(Schema):
    number: E164
    type: Literal["local", "toll_free"] = "local"
    country: Country
    region: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] = ""
    vanity: bool = False
    employee_id: int | None = None


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


@numbers.post(
    "orgs/{org}/phone-numbers",
    response={201: PhoneNumberOut, 409: Refusal},
    summary="Provision a number",
)
def provision_number(request, org: str, payload: PhoneNumberIn):
    organization = _organization(org)
    employee = _employee(org, payload.employee_id) if payload.employee_id else None
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


def _number(org: str, number_id: int) -> PhoneNumber:
    return get_object_or_404(PhoneNumber, pk=number_id, organization__slug=org)


class AssignIn(Schema):
    employee_id: int | None


@numbers.post(
    "orgs/{org}/phone-numbers/{number_id}/assign", response={200: PhoneNumberOut, 409: Refusal}
)
def assign_number(request, org: str, number_id: int, payload: AssignIn):
    employee = _employee(org, payload.employee_id) if payload.employee_id else None
    return services.phone_number_assign(phone_number=_number(org, number_id), employee=employee)


@numbers.post("orgs/{org}/phone-numbers/{number_id}/release", response=PhoneNumberOut)
def release_number(request, org: str, number_id: int):
    """Stops future charges; no refund for the partial month; the number cannot come back."""
    return services.phone_number_release(phone_number=_number(org, number_id))


# --- storage, API usage and the usage summary ---------------------------------------------

usage = Router(tags=["usage"])


class StorageIn(Schema):
    report_id: CallId
    bytes: int = Field(
        ge=0,
        le=10**18,
        description="Bytes stored now. Allowances and overage count GiB of 2^30 bytes.",
    )
    measured_at: AwareDatetime


class ApiUsageIn(Schema):
    report_id: CallId
    count: int = Field(ge=0, le=10**12)
    measured_at: AwareDatetime


class ReportOut(Schema):
    recorded: bool = Field(description="False when this report id had already been recorded.")


@usage.post(
    "orgs/{org}/storage", response={200: ReportOut, 201: ReportOut}, summary="Report stored bytes"
)
def report_storage(request, org: str, payload: StorageIn):
    recorded = services.usage_report_record(
        organization=_organization(org),
        kind=UsageReport.Kind.STORAGE,
        report_id=payload.report_id,
        quantity=payload.bytes,
        measured_at=payload.measured_at,
    )
    return Status(201 if recorded else 200, {"recorded": recorded})


@usage.post(
    "orgs/{org}/api-usage", response={200: ReportOut, 201: ReportOut}, summary="Report API calls"
)
def report_api_usage(request, org: str, payload: ApiUsageIn):
    recorded = services.usage_report_record(
        organization=_organization(org),
        kind=UsageReport.Kind.API_CALLS,
        report_id=payload.report_id,
        quantity=payload.count,
        measured_at=payload.measured_at,
    )
    return Status(201 if recorded else 200, {"recorded": recorded})


class AllowanceOut(Schema):
    used: int
    limit: int | None


class UsageOut(Schema):
    period_start: dt.datetime
    period_end: dt.datetime
    is_trial: bool = Field(
        description="The free trial: its usage is recorded and shown, and never charged."
    )
    plan: str
    call_seconds: AllowanceOut
    remaining_seconds: int | None
    overage_seconds: int
    overage_cost: str
    projected_seconds: int
    projected_overage_cost: str
    currency: str
    calls: int
    employees: AllowanceOut
    phone_numbers: AllowanceOut
    storage_bytes: AllowanceOut = Field(
        description="Bytes stored now; the limit is the plan's GiB × 2^30 bytes."
    )
    api_calls: AllowanceOut


@usage.get("orgs/{org}/usage", response={200: UsageOut, 409: Refusal}, summary="Usage this month")
def get_usage(request, org: str):
    organization = _organization(org)
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError("no_subscription", "The organization has no live subscription.")
    summary = selectors.usage_summary(subscription=subscription, now=timezone.now())
    return UsageOut(
        period_start=summary.period.start,
        period_end=summary.period.end,
        is_trial=summary.is_trial,
        plan=str(summary.plan),
        call_seconds=vars(summary.call_seconds),
        remaining_seconds=summary.remaining_seconds,
        overage_seconds=summary.overage_seconds,
        overage_cost=str(summary.overage_cost.amount),
        projected_seconds=summary.projected_seconds,
        projected_overage_cost=str(summary.projected_overage_cost.amount),
        currency=summary.plan.currency,
        calls=summary.calls,
        employees=vars(summary.employees),
        phone_numbers=vars(summary.phone_numbers),
        storage_bytes=vars(summary.storage_bytes),
        api_calls=vars(summary.api_calls),
    )


# --- features -----------------------------------------------------------------------------

features = Router(tags=["features"])


class FeatureOut(Schema):
    code: str
    name: str
    enabled: bool = Field(description="Whether the organization may use the feature now.")
    source: Literal["plan", "trial"] | None = Field(
        description="What gives it: the plan of the live subscription, or a trial granted "
        "by staff; null when locked."
    )
    trial_ends_at: dt.datetime | None = Field(description="When a trial ends (exclusive).")
    included_in_plan: str | None = Field(
        description="When the organization's plan lacks the feature: the code of the "
        "cheapest plan offered to it that includes it; null otherwise, or when none does."
    )


def _feature_out(status: FeatureStatus) -> FeatureOut:
    return FeatureOut(
        code=status.feature.code,
        name=status.feature.name,
        enabled=status.enabled,
        source=status.source,
        trial_ends_at=status.trial_ends_at,
        included_in_plan=status.upgrade_plan.code if status.upgrade_plan else None,
    )


@features.get(
    "orgs/{org}/features", response=list[FeatureOut], summary="Every feature, enabled or not"
)
def list_features(request, org: str):
    """Gate the platform's own features with the check the billing pages use. Never cached:
    a plan change or a trial counts from the next request."""
    statuses = feature_statuses(organization=_organization(org), now=timezone.now())
    return [_feature_out(status) for status in statuses]


@features.get(
    "orgs/{org}/features/{code}",
    response={200: FeatureOut, 404: Refusal},
    summary="May the organization use this feature?",
)
def get_feature(request, org: str, code: str):
    status = feature_status(organization=_organization(org), code=code, now=timezone.now())
    if status is None:
        detail = f"There is no feature with the code {code!r}."
        return Status(404, Refusal(code="unknown_feature", detail=detail))
    return _feature_out(status)


for router in (calls, employees, numbers, usage, features):
    api.add_router("", router)
