"""What the endpoints answer besides their own results: the bodies of refusals, the
refusals several endpoints share, and the statuses each endpoint declares."""

from __future__ import annotations

import functools
import operator
from collections import defaultdict
from http import HTTPStatus

from ninja import Field, Schema

from billing.errors import ErrorCode


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


def answers(results: dict, *, refusals: tuple[ErrorCode, ...] = (), body: bool = True) -> dict:
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
