"""Calls: may this call start, and the finished calls, one or a batch."""

from __future__ import annotations

from typing import Literal

from django.utils import timezone
from ninja import Field, Router, Schema
from ninja.responses import Status
from pydantic import AwareDatetime

from billing.errors import ErrorCode
from usage import selectors
from usage.api import lookups
from usage.api.answers import (
    answers,
)
from usage.api.inputs import CallId, Direction, Id, Input, PathText
from usage.metering import services as metering
from usage.tokens import selectors as token_selectors

MAX_BATCH = 1000

router = Router(tags=["calls"])


class AuthorizeIn(Input):
    employee_id: Id
    direction: Direction = "outbound"


class AuthorizeOut(Schema):
    allowed: bool
    reason: str = Field(
        description="`ok`, or why the call is refused (a stable code): "
        "`subscription_suspended`, `no_subscription`, `employee_not_found`, "
        "`employee_inactive`, `balance_exhausted`, `overage_cap_reached` (the plan's), "
        "`spend_cap_reached` (the organization's own overage cap), `employee_cap_reached`, "
        "`cost_center_cap_reached` (call-time caps the organization set)."
    )
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


@router.post(
    "orgs/{org}/calls/authorize",
    **answers({200: AuthorizeOut}),
    summary="May this call start?",
)
def authorize_call(request, org: PathText, payload: AuthorizeIn):
    """Refused when the subscription is suspended or canceled, the AI employee is inactive or
    not the organization's, the allowance is used up on a `block` plan, the overage cap is
    reached (the plan's, or the organization's own), or the AI employee's or its cost
    center's monthly call-time cap is reached; an unknown organization or AI employee is refused too (200, `allowed: false`).
    An allowed call always completes: report it when it ends."""
    authorization = selectors.call_authorize(
        organization_slug=org, employee_id=payload.employee_id, now=timezone.now()
    )
    # The selector's answer has the schema's fields and types: not validated a second time.
    return AuthorizeOut.model_construct(**vars(authorization))


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


def _report(org: str, call: CallIn) -> metering.CallReport:
    return metering.CallReport(
        call_id=call.call_id,
        organization=org,
        employee_id=call.employee_id,
        direction=call.direction,
        connected_at=call.connected_at,
        ended_at=call.ended_at,
    )


@router.post(
    "orgs/{org}/calls",
    **answers(
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
        result = metering.calls_record(reports=[_report(org, payload)])
    except metering.ReportRejected as rejected:
        if any(p.field == "organization" for p in rejected.problems):
            lookups.organization(org)  # 404 for an unknown organization
        raise
    seconds = metering.billable_seconds(payload.connected_at, payload.ended_at)
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


@router.post(
    "calls/batch",
    **answers({200: BatchOut}, refusals=(ErrorCode.INVALID_REPORT, ErrorCode.CALL_CONFLICT)),
    summary="Report up to 1,000 finished calls",
)
def record_calls(request, payload: BatchIn):
    """Accepted or rejected whole: one bad call (422), one call id already recorded with
    other content (409 `call_conflict`, naming its index), or one organization the token
    does not reach (403 `token_out_of_scope`) rejects the batch, and nothing is written."""
    token_selectors.service_token_check_reach(
        service_token=request.auth, organization_slugs={call.org for call in payload.calls}
    )
    result = metering.calls_record(reports=[_report(call.org, call) for call in payload.calls])
    return BatchOut(recorded=len(result.recorded), duplicates=result.duplicates)
