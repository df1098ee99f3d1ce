"""The platform API (`/api/v1/`): the calling platform asks before calls and reports usage.

Thin adapters: parse and validate, call one service or selector, shape the answer. Refusals
carry a stable `code`; bad input gets 422 naming each field and problem, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections import defaultdict
from http import HTTPStatus
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, NinjaAPI, Query, Router, Schema
from ninja.responses import Status
from ninja.security import HttpBearer
from pydantic import AwareDatetime, BeforeValidator, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from billing.catalog.selectors import FeatureStatus, feature_status, feature_statuses
from billing.errors import BillingError, ErrorCode
from billing.models import Organization
from billing.subscriptions.selectors import subscription_live
from usage import selectors, services
from usage.alerts import selectors as alert_selectors
from usage.models import AIEmployee, PhoneNumber, ServiceToken, UsageReport

MAX_BATCH = 1000


class ServiceTokenAuth(HttpBearer):
    """The token, checked against the organization in the path (`{org}`), when there is
    one: an expired token gets 401 `token_expired`, one that does not reach the
    organization 403 `token_out_of_scope`."""

    def authenticate(self, request: HttpRequest, token: str) -> ServiceToken | None:
        route = request.resolver_match
        slug = route.kwargs.get("org") if route else None
        # A slug holding NUL names no organization, and PostgreSQL cannot even compare it:
        # the token is checked alone, and the path's own validation refuses it (422).
        if slug is not None and "\x00" in slug:
            slug = None
        return selectors.service_token_for_request(
            token=token, organization_slug=slug, now=timezone.now()
        )


api = NinjaAPI(
    title="Billing platform API",
    version="1",
    description="Asked by the calling platform before every call and before creating an AI "
    "employee; told about finished calls, phone numbers, storage and API usage. "
    "Authenticate with `Authorization: Bearer <service token>` (created by staff in the admin). "
    "A token reaches every organization only when made to (the calling platform's own token); "
    "otherwise only the organizations it names: any other gets 403 `token_out_of_scope`, in "
    "the path or in a batch. A token past its expiry gets 401 `token_expired`.",
    auth=ServiceTokenAuth(),
    urls_namespace="api",
)


@api.exception_handler(BillingError)
def refused(request, error: BillingError):
    """Every refusal, with its code's status from the registry."""
    if isinstance(error, services.ReportRejected):
        body = {"detail": _problems(error.problems)}
    else:
        body = {"code": error.code, "detail": error.message, **error.details}
    return api.create_response(request, body, status=error.status)


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


def _found(rows, code: ErrorCode, detail: str):
    found = rows.first()
    if found is None:
        raise BillingError(code, detail)
    return found


def _organization(slug: str) -> Organization:
    return _found(
        Organization.objects.filter(slug=slug),
        ErrorCode.ORGANIZATION_NOT_FOUND,
        f"There is no organization with the id {slug!r}.",
    )


def _employee(organization: Organization, employee_id: int) -> AIEmployee:
    return _found(
        organization.employees.filter(pk=employee_id),
        ErrorCode.EMPLOYEE_NOT_FOUND,
        f"{organization} has no AI employee with the id {employee_id}.",
    )


def _number(organization: Organization, number_id: int) -> PhoneNumber:
    return _found(
        organization.phone_numbers.filter(pk=number_id),
        ErrorCode.PHONE_NUMBER_NOT_FOUND,
        f"{organization} has no phone number with the id {number_id}.",
    )


# --- what the endpoints answer besides their own results ----------------------------------


class Message(Schema):
    detail: str


class Unauthorized(Schema):
    """No token, an unknown or revoked one (`detail` only), or an expired one (`code`
    `token_expired`)."""

    code: str | None = Field(None, description="`token_expired`, or absent.")
    detail: str


class FieldProblem(Schema):
    loc: list[str | int] = Field(
        description="Where: `path` or `body`, then the field (in a batch, `calls` and the "
        "call's index first)."
    )
    msg: str
    type: str = Field(description="What, as a stable code.")


class ValidationErrors(Schema):
    detail: list[FieldProblem]


class Refusal(Schema):
    code: str = Field(description="Why, as a stable code.")
    detail: str = Field(description="Why, and what to do, for a person.")


class LimitRefusal(Refusal):
    """`employee_quota_reached` and `phone_number_limit_reached` say which limit."""

    limit: int | None = None
    active: int | None = None
    ways_out: list[str] | None = None


class ConflictingCall(Schema):
    call_id: str
    fields: list[str] = Field(description="What differs from the call recorded under this id.")
    index: int | None = Field(description="The call's place in the batch.")


class CallConflictRefusal(Refusal):
    """`call_conflict`: a call id already recorded with other content."""

    conflicts: list[ConflictingCall]


# The body of a refusal that says more than its code and detail.
REFUSAL_BODIES: dict[ErrorCode, type[Schema]] = {
    ErrorCode.TOKEN_EXPIRED: Unauthorized,
    ErrorCode.EMPLOYEE_QUOTA_REACHED: LimitRefusal,
    ErrorCode.PHONE_NUMBER_LIMIT_REACHED: LimitRefusal,
    ErrorCode.CALL_CONFLICT: CallConflictRefusal,
    ErrorCode.INVALID_REPORT: ValidationErrors,
}

# Refusals several endpoints share.
TOKEN_REFUSALS = (ErrorCode.TOKEN_EXPIRED, ErrorCode.TOKEN_OUT_OF_SCOPE)
EMPLOYEE_LOOKUP = (ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.EMPLOYEE_NOT_FOUND)
NUMBER_LOOKUP = (ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.PHONE_NUMBER_NOT_FOUND)
EMPLOYEE_QUOTA = (
    ErrorCode.NO_SUBSCRIPTION,
    ErrorCode.SUBSCRIPTION_SUSPENDED,
    ErrorCode.EMPLOYEE_QUOTA_REACHED,
)
ANSWERING = (ErrorCode.EMPLOYEE_INACTIVE, ErrorCode.EMPLOYEE_OUTBOUND_ONLY)
REPORT_REFUSALS = (
    ErrorCode.ORGANIZATION_NOT_FOUND,
    ErrorCode.NO_SUBSCRIPTION,
    ErrorCode.INVALID_REPORT,
)


def _answers(results: dict, *, refusals: tuple[ErrorCode, ...] = (), body: bool = True) -> dict:
    """Every status an endpoint answers, with its body and the codes it may carry: its
    `results`; 400 for a body that is not JSON; 401 without a valid token, or an expired
    one; 403 for an organization the token does not reach; each of its `refusals` with its
    code's status and body; 422 naming each invalid field. Returns the `response` and
    `openapi_extra` arguments of the endpoint's decorator."""
    bodies: dict[int, set[type[Schema]]] = defaultdict(set)
    bodies[int(HTTPStatus.UNAUTHORIZED)].add(Unauthorized)
    bodies[int(HTTPStatus.UNPROCESSABLE_ENTITY)].add(ValidationErrors)
    codes: dict[int, list[ErrorCode]] = defaultdict(list)
    for code in (*TOKEN_REFUSALS, *refusals):
        schema = REFUSAL_BODIES.get(code, Refusal)
        bodies[int(code.status)].add(schema)
        if schema is not ValidationErrors:  # its body carries the code
            codes[int(code.status)].append(code)
    response = results | ({400: Message} if body else {})
    for status in sorted(bodies):
        schemas = sorted(bodies[status], key=lambda schema: schema.__name__)
        response[status] = functools.reduce(operator.or_, schemas)  # one, or any of them
    described = {
        status: {
            "description": f"{HTTPStatus(status).phrase}: "
            + ", ".join(f"`{code}`" for code in sorted(listed))
        }
        for status, listed in codes.items()
    }
    return {"response": response, "openapi_extra": {"responses": described}}


def _refuse_nul(value):
    """PostgreSQL text cannot hold the NUL character: refused as bad input, where it comes
    in, rather than failing at the database."""
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError(
            "nul_character", "Text cannot contain the NUL character (U+0000)."
        )
    return value


class Input(Schema):
    """Every request body: no text field may hold NUL."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value):
        return _refuse_nul(value)


# A text path parameter, held to the same rule as the bodies.
PathText = Annotated[str, BeforeValidator(_refuse_nul)]

# A row's id: a positive 64-bit integer (the database's largest).
Id = Annotated[int, Field(gt=0, le=2**63 - 1)]
CallId = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Direction = Literal["inbound", "outbound"]
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


# --- calls --------------------------------------------------------------------------------

calls = Router(tags=["calls"])


class AuthorizeIn(Input):
    employee_id: Id
    direction: Direction = "outbound"


class AuthorizeOut(Schema):
    allowed: bool
    reason: str = Field(description="`ok`, or why the call is refused (a stable code).")
    remaining_seconds: int | None = Field(
        description="Seconds left before calls are refused; null when there is no limit."
    )
    usage_percent: int | None = Field(
        description="Percent of the included call time used this usage month (may pass 100); "
        "null when call time is unlimited."
    )
    warning: Literal["approaching_allowance", "allowance_used", "overage_cap_near"] | None = Field(
        description="The alert state, to warn before calls must be refused: "
        "`approaching_allowance` (a call-time alert threshold was crossed this month), "
        "`allowance_used` (the included call time is used: on a `charge` plan calls go on "
        "as overage), `overage_cap_near` (an overage-cap alert was crossed); null otherwise."
    )


@calls.post(
    "orgs/{org}/calls/authorize",
    **_answers({200: AuthorizeOut}),
    summary="May this call start?",
)
def authorize_call(request, org: PathText, payload: AuthorizeIn):
    """Refused when the subscription is suspended or canceled, the AI employee is inactive or
    not the organization's, the allowance is used up on a `block` plan, or the overage cap is
    reached; an unknown organization or AI employee is refused too (200, `allowed: false`).
    An allowed call always completes: report it when it ends."""
    return selectors.call_authorize(
        organization_slug=org, employee_id=payload.employee_id, now=timezone.now()
    )


class CallIn(Input):
    call_id: CallId = Field(
        description="The platform's id. Reported again unchanged, it changes nothing; with "
        "another organization, AI employee, direction or time, it is refused (409 "
        "`call_conflict`)."
    )
    employee_id: Id
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
    "orgs/{org}/calls",
    **_answers(
        {200: CallOut, 201: CallOut},
        refusals=(
            ErrorCode.ORGANIZATION_NOT_FOUND,
            ErrorCode.INVALID_REPORT,
            ErrorCode.CALL_CONFLICT,
        ),
    ),
    summary="Report a finished call",
)
def record_call(request, org: PathText, payload: CallIn):
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


class BatchIn(Input):
    calls: list[BatchCallIn] = Field(min_length=1, max_length=MAX_BATCH)


class BatchOut(Schema):
    recorded: int
    duplicates: list[str] = Field(description="Call ids that had already been recorded.")


@calls.post(
    "calls/batch",
    **_answers({200: BatchOut}, refusals=(ErrorCode.INVALID_REPORT, ErrorCode.CALL_CONFLICT)),
    summary="Report up to 1,000 finished calls",
)
def record_calls(request, payload: BatchIn):
    """Accepted or rejected whole: one bad call (422), one call id already recorded with
    other content (409 `call_conflict`, naming its index), or one organization the token
    does not reach (403 `token_out_of_scope`) rejects the batch, and nothing is written."""
    selectors.service_token_check_reach(
        service_token=request.auth, organization_slugs={call.org for call in payload.calls}
    )
    result = services.calls_record(reports=[_report(call.org, call) for call in payload.calls])
    return BatchOut(recorded=len(result.recorded), duplicates=result.duplicates)


# --- AI employees -------------------------------------------------------------------------

employees = Router(tags=["AI employees"])


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


@employees.post(
    "orgs/{org}/employees",
    **_answers({201: EmployeeOut}, refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, *EMPLOYEE_QUOTA)),
    summary="Create an AI employee",
)
def create_employee(request, org: PathText, payload: EmployeeIn):
    """Checked against the plan's quota before anything is configured: at the limit the
    answer is 409 `employee_quota_reached` with the limit and the ways out."""
    employee = services.employee_create(organization=_organization(org), **payload.dict())
    return Status(201, employee)


@employees.post(
    "orgs/{org}/employees/{employee_id}/deactivate",
    **_answers({200: EmployeeOut}, refusals=EMPLOYEE_LOOKUP, body=False),
)
def deactivate_employee(request, org: PathText, employee_id: Id):
    employee = _employee(_organization(org), employee_id)
    return services.employee_deactivate(employee=employee)


@employees.post(
    "orgs/{org}/employees/{employee_id}/reactivate",
    **_answers({200: EmployeeOut}, refusals=(*EMPLOYEE_LOOKUP, *EMPLOYEE_QUOTA), body=False),
)
def reactivate_employee(request, org: PathText, employee_id: Id):
    employee = _employee(_organization(org), employee_id)
    return services.employee_reactivate(employee=employee)


# --- phone numbers ------------------------------------------------------------------------

numbers = Router(tags=["phone numbers"])


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


@numbers.post(
    "orgs/{org}/phone-numbers",
    **_answers(
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
    organization = _organization(org)
    employee = _employee(organization, payload.employee_id) if payload.employee_id else None
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


@numbers.post(
    "orgs/{org}/phone-numbers/{number_id}/assign",
    **_answers(
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
    organization = _organization(org)
    number = _number(organization, number_id)
    employee = _employee(organization, payload.employee_id) if payload.employee_id else None
    return services.phone_number_assign(phone_number=number, employee=employee)


@numbers.post(
    "orgs/{org}/phone-numbers/{number_id}/release",
    **_answers({200: PhoneNumberOut}, refusals=NUMBER_LOOKUP, body=False),
)
def release_number(request, org: PathText, number_id: Id):
    """Stops future charges; no refund for the partial month; the number cannot come back."""
    number = _number(_organization(org), number_id)
    return services.phone_number_release(phone_number=number)


# --- storage, API usage and the usage summary ---------------------------------------------

usage = Router(tags=["usage"])


class StorageIn(Input):
    report_id: CallId
    bytes: int = Field(
        ge=0,
        le=10**18,
        description="Bytes stored now. Allowances and overage count GiB of 2^30 bytes.",
    )
    measured_at: AwareDatetime


class ApiUsageIn(Input):
    report_id: CallId
    count: int = Field(ge=0, le=10**12)
    measured_at: AwareDatetime


class ReportOut(Schema):
    recorded: bool = Field(description="False when this report id had already been recorded.")


@usage.post(
    "orgs/{org}/storage",
    **_answers({200: ReportOut, 201: ReportOut}, refusals=REPORT_REFUSALS),
    summary="Report stored bytes",
)
def report_storage(request, org: PathText, payload: StorageIn):
    recorded = services.usage_report_record(
        organization=_organization(org),
        kind=UsageReport.Kind.STORAGE,
        report_id=payload.report_id,
        quantity=payload.bytes,
        measured_at=payload.measured_at,
    )
    return Status(201 if recorded else 200, {"recorded": recorded})


@usage.post(
    "orgs/{org}/api-usage",
    **_answers({200: ReportOut, 201: ReportOut}, refusals=REPORT_REFUSALS),
    summary="Report API calls",
)
def report_api_usage(request, org: PathText, payload: ApiUsageIn):
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


@usage.get(
    "orgs/{org}/usage",
    **_answers(
        {200: UsageOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.NO_SUBSCRIPTION),
        body=False,
    ),
    summary="Usage this month",
)
def get_usage(request, org: PathText):
    organization = _organization(org)
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
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


class ThresholdOut(Schema):
    unit: Literal["percent", "absolute"] = Field(
        description="`percent` of the limit, or an `absolute` amount: minutes of call time, "
        "GiB of storage, money of overage in `currency`, a count otherwise."
    )
    value: str = Field(description="A decimal, as text.")
    is_default: bool = Field(description="One of the default percents every plan starts with.")
    enabled: bool
    level: str | None = Field(
        description="Where it is crossed, in the metric's base unit (seconds, bytes, money, "
        "a count); null for a percent of an unlimited allowance."
    )
    crossed_at: dt.datetime | None = Field(description="When it was crossed this period.")


class MetricAlertsOut(Schema):
    metric: Literal[
        "call_seconds",
        "active_employees",
        "phone_numbers",
        "storage",
        "api_calls",
        "overage_spend",
        "overage_cap",
    ]
    used: str = Field(description="This period, in the metric's base unit.")
    limit: str | None = Field(
        description="The plan's limit in the base unit (overage spend: the plan's monthly "
        "price; overage cap: the cap); null when unlimited."
    )
    percent: int | None
    snoozed: bool = Field(description="No notices about it until the period ends.")
    thresholds: list[ThresholdOut]


class AlertsOut(Schema):
    period_start: dt.datetime
    period_end: dt.datetime
    currency: str
    metrics: list[MetricAlertsOut]


@usage.get(
    "orgs/{org}/alerts",
    **_answers(
        {200: AlertsOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.NO_SUBSCRIPTION),
        body=False,
    ),
    summary="Usage alert thresholds and their state this month",
)
def get_alerts(request, org: PathText):
    """Each metric the plan watches, its thresholds (default and the organization's own, on
    or off) and which were crossed this usage month. Crossed thresholds send notices (in
    the app, by e-mail, and to the organization's webhooks: see the README for the webhook
    events, their payload and the `Billing-Signature` header)."""
    organization = _organization(org)
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    now = timezone.now()
    summary = selectors.usage_summary(subscription=subscription, now=now)
    states = alert_selectors.alert_states(
        subscription=subscription, used=alert_selectors.metric_values(summary), now=now
    )
    return AlertsOut(
        period_start=summary.period.start,
        period_end=summary.period.end,
        currency=summary.plan.currency,
        metrics=[
            MetricAlertsOut(
                metric=state.metric,
                used=str(state.used),
                limit=str(state.limit) if state.limit is not None else None,
                percent=state.percent,
                snoozed=state.snoozed,
                thresholds=[
                    ThresholdOut(
                        unit=item.threshold.unit,
                        value=f"{item.threshold.value.normalize():f}",
                        is_default=item.threshold.is_default,
                        enabled=item.threshold.is_enabled,
                        level=str(item.level) if item.level is not None else None,
                        crossed_at=item.fired_at,
                    )
                    for item in state.thresholds
                ],
            )
            for state in states
        ],
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
    "orgs/{org}/features",
    **_answers({200: list[FeatureOut]}, refusals=(ErrorCode.ORGANIZATION_NOT_FOUND,), body=False),
    summary="Every feature, enabled or not",
)
def list_features(request, org: PathText):
    """Gate the platform's own features with the check the billing pages use. Never cached:
    a plan change or a trial counts from the next request."""
    statuses = feature_statuses(organization=_organization(org), now=timezone.now())
    return [_feature_out(status) for status in statuses]


@features.get(
    "orgs/{org}/features/{code}",
    **_answers(
        {200: FeatureOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.UNKNOWN_FEATURE),
        body=False,
    ),
    summary="May the organization use this feature?",
)
def get_feature(request, org: PathText, code: PathText):
    """404 `unknown_feature` for a code that is not a feature."""
    status = feature_status(organization=_organization(org), code=code, now=timezone.now())
    if status is None:
        raise BillingError(
            ErrorCode.UNKNOWN_FEATURE, f"There is no feature with the code {code!r}."
        )
    return _feature_out(status)


# --- invoices -----------------------------------------------------------------------------

invoices = Router(tags=["invoices"])

MAX_PAGE_SIZE = 500


class LineCallsQuery(Schema):
    employee_id: Id | None = Field(None, description="Only this AI employee's calls.")
    phone_number: E164 | None = Field(
        None, description="Only calls of the AI employee answering this number."
    )
    direction: Direction | None = None
    min_seconds: int | None = Field(None, ge=0, description="At least this many seconds.")
    max_seconds: int | None = Field(None, ge=0, description="At most this many seconds.")
    page: int = Field(1, ge=1, le=10**9)
    page_size: int = Field(100, ge=1, le=MAX_PAGE_SIZE)


class LineCallOut(Schema):
    call_id: str
    employee_id: int
    employee: str
    direction: Direction
    connected_at: dt.datetime
    ended_at: dt.datetime
    billable_seconds: int


class LineCallsOut(Schema):
    invoice_number: str
    line_id: int
    period_start: dt.datetime
    period_end: dt.datetime
    rate_per_second: str = Field(description="The invoice's own per-second overage rate.")
    currency: str
    count: int = Field(description="Calls matching the filters, on every page.")
    page: int
    pages: int
    calls: list[LineCallOut]


@invoices.get(
    "orgs/{org}/invoices/{number}/lines/{line_id}/calls",
    **_answers(
        {200: LineCallsOut},
        refusals=(
            ErrorCode.ORGANIZATION_NOT_FOUND,
            ErrorCode.INVOICE_NOT_FOUND,
            ErrorCode.LINE_NOT_FOUND,
            ErrorCode.NOT_A_CALL_LINE,
        ),
        body=False,
    ),
    summary="The calls behind a call overage line",
)
def list_line_calls(
    request, org: PathText, number: PathText, line_id: Id, filters: Query[LineCallsQuery]
):
    """The calls of the usage month a call overage line charges, oldest first, a page at a
    time: what the organization's billing page shows when it questions the line."""
    line = selectors.call_line_for(organization=_organization(org), number=number, line_id=line_id)
    calls = selectors.line_calls(
        line=line,
        filters=selectors.CallFilters(
            employee_id=filters.employee_id,
            number=filters.phone_number or "",
            direction=filters.direction or "",
            min_seconds=filters.min_seconds,
            max_seconds=filters.max_seconds,
        ),
    )
    paginator = Paginator(calls, filters.page_size)
    return LineCallsOut(
        invoice_number=line.invoice.number,
        line_id=line.pk,
        period_start=line.period_start,
        period_end=line.period_end,
        rate_per_second=f"{line.unit_price.amount:f}",
        currency=str(line.amount.currency),
        count=paginator.count,
        page=filters.page,
        pages=paginator.num_pages,
        calls=[
            LineCallOut(
                call_id=call.platform_call_id,
                employee_id=call.employee_id,
                employee=call.employee.name,
                direction=call.direction,
                connected_at=call.connected_at,
                ended_at=call.ended_at,
                billable_seconds=call.billable_seconds,
            )
            for call in paginator.page(filters.page).object_list
        ]
        if filters.page <= paginator.num_pages
        else [],
    )


for router in (calls, employees, numbers, usage, features, invoices):
    api.add_router("", router)
