"""The platform API (`/api/v1/`): the calling platform asks before calls and reports usage.

Thin adapters: parse and validate, call one service or selector, shape the answer. Refusals
carry a stable `code`; bad input gets 422 naming each field and problem, and writes nothing.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from ninja import NinjaAPI

from billing.errors import BillingError
from usage.api import (
    budgets,
    calls,
    caps,
    costs,
    employees,
    features,
    invoices,
    phone_numbers,
    usage,
)
from usage.api.auth import ServiceTokenAuth
from usage.metering import services as metering


class PlatformAPI(NinjaAPI):
    """Operation ids name the API and the endpoint, not the module the endpoint is written
    in, so that the published document stays the same when the code moves."""

    def get_openapi_operation_id(self, operation) -> str:
        return f"usage_api_{operation.view_func.__name__}"


api = PlatformAPI(
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
    if isinstance(error, metering.ReportRejected):
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


def _problems(problems: list[metering.Problem]) -> list[dict]:
    return [
        {
            "loc": ["body", *(["calls", p.index] if p.index is not None else []), p.field],
            "msg": p.message,
            "type": p.code,
        }
        for p in problems
    ]


for module in (calls, employees, phone_numbers, usage, caps, budgets, features, invoices, costs):
    api.add_router("", module.router)
