"""The platform API against its OpenAPI document: every text field refuses NUL, and a fuzzer
finds no server error, no status the document does not list, no refusal code it does not list
with its status, and no write on a refusal."""

import datetime as dt

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from djmoney.money import Money
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from billing.catalog import services as catalog_services
from billing.subscriptions import services as subscription_services
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
)
from tests.usage.test_api import call as api_call
from usage import services
from usage.api import api as platform_api
from usage.models import (
    AIEmployee,
    Budget,
    BudgetChange,
    Call,
    EmployeeUsageCounter,
    PhoneNumber,
    SpendCap,
    SpendCapChange,
    UsageCounter,
    UsageReport,
)
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db

SPEC = platform_api.get_openapi_schema()
WRITTEN = (
    AIEmployee,
    Call,
    PhoneNumber,
    UsageCounter,
    UsageReport,
    EmployeeUsageCounter,
    SpendCap,
    SpendCapChange,
    Budget,
    BudgetChange,
)


def rows_written() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WRITTEN}


def resolved(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def text_fields(schema: dict, at: tuple = ()):
    """Where a body holds text, by the document: a path of keys (and index 0 in lists)."""
    schema = resolved(schema)
    if schema.get("type") == "string" or any(
        resolved(option).get("type") == "string" for option in schema.get("anyOf", [])
    ):
        yield at
    for name, field in schema.get("properties", {}).items():
        yield from text_fields(field, (*at, name))
    if schema.get("type") == "array":
        yield from text_fields(schema["items"], (*at, 0))


def every_text_field():
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["schema"].get("type") == "string":
                    yield f"{method.upper()} {path}", (parameter["in"], parameter["name"])
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            for field in text_fields(body["schema"]) if body else ():
                yield f"{method.upper()} {path}", ("body", *field)


@pytest.fixture
def valid_requests(now):
    """A request each endpoint would accept, by its document's method and path."""
    subscription = SubscriptionFactory(
        plan=PlanFactory(max_active_employees=5),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )
    organization = subscription.organization
    employee = EmployeeFactory(organization=organization)
    PhoneNumberRateFactory()
    number = services.phone_number_provision(
        organization=organization, number="+12125550100", number_type="local", country="US"
    )
    org = {"org": organization.slug}
    call = api_call(employee)
    employee_path = org | {"employee_id": employee.pk}
    number_path = org | {"number_id": number.pk}
    measured_at = "2026-03-16T09:30:00+00:00"
    invoice = subscription.invoices.get()
    line_path = org | {"number": invoice.number, "line_id": invoice.lines.first().pk}
    prefix = "POST /api/v1/orgs/{org}"
    return {
        f"{prefix}/calls/authorize": (org, {"employee_id": employee.pk, "direction": "inbound"}),
        f"{prefix}/calls": (org, call),
        "POST /api/v1/calls/batch": ({}, {"calls": [call | org]}),
        f"{prefix}/employees": (org, {"name": "Front desk", "cost_center": "Clinic"}),
        f"{prefix}/employees/{{employee_id}}/deactivate": (employee_path, None),
        f"{prefix}/employees/{{employee_id}}/reactivate": (employee_path, None),
        f"{prefix}/phone-numbers": (
            org,
            {
                "number": "+12125550101",
                "type": "local",
                "country": "US",
                "region": "",
                "vanity": False,
                "employee_id": employee.pk,
            },
        ),
        f"{prefix}/phone-numbers/{{number_id}}/assign": (number_path, {"employee_id": employee.pk}),
        f"{prefix}/phone-numbers/{{number_id}}/release": (number_path, None),
        f"{prefix}/storage": (org, {"report_id": "s1", "bytes": 5, "measured_at": measured_at}),
        f"{prefix}/api-usage": (org, {"report_id": "a1", "count": 5, "measured_at": measured_at}),
        "GET /api/v1/orgs/{org}/usage": (org, None),
        "GET /api/v1/orgs/{org}/alerts": (org, None),
        "GET /api/v1/orgs/{org}/features": (org, None),
        "GET /api/v1/orgs/{org}/features/{code}": (org | {"code": "core_calling"}, None),
        "GET /api/v1/orgs/{org}/invoices/{number}/lines/{line_id}/calls": (line_path, None),
        "GET /api/v1/orgs/{org}/caps": (org, None),
        "PUT /api/v1/orgs/{org}/caps": (
            org,
            {
                "overage_spend": "10.00",
                "employees": [{"employee_id": employee.pk, "call_seconds": 600}],
                "cost_centers": [{"cost_center": employee.cost_center, "call_seconds": 600}],
            },
        ),
        "GET /api/v1/orgs/{org}/budgets": (org, None),
        "PUT /api/v1/orgs/{org}/budgets": (
            org,
            {
                "monthly_budget": "500.00",
                "cost_centers": [{"cost_center": employee.cost_center, "monthly_budget": "50"}],
            },
        ),
        "GET /api/v1/orgs/{org}/upcoming-invoice": (org, None),
        "GET /api/v1/orgs/{org}/costs": (org | {"month": "2026-03"}, None),
    }


def with_nul(value: str) -> str:
    return f"{value}\x00"


@pytest.mark.parametrize(
    ("operation", "field"),
    [
        pytest.param(*case, id=f"{case[0]} {'.'.join(map(str, case[1]))}")
        for case in every_text_field()
    ],
)
def test_nul_in_any_text_field_is_422_naming_the_field_and_writes_nothing(
    client, valid_requests, operation, field
):
    # Given a request the endpoint would accept, but for a NUL in one of its text fields
    method, path = operation.split()
    path_params, body = valid_requests[operation]
    source, *location = field
    if source in ("path", "query"):
        path_params = path_params | {location[0]: with_nul(path_params[location[0]])}
    else:
        *parents, name = location
        holder = body
        for key in parents:
            holder = holder[key]
        holder[name] = with_nul(str(holder[name]))
    token = service_token_create(name="calling platform", all_organizations=True)[1]
    before = rows_written()

    # When it is sent
    escaped = {key: str(value).replace("\x00", "%00") for key, value in path_params.items()}
    url = path.format(**escaped)
    query = "&".join(f"{key}={value}" for key, value in escaped.items() if f"{{{key}}}" not in path)
    url += f"?{query}" if query else ""
    response = getattr(client, method.lower())(
        url,
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    # Then it is refused, naming the field, and nothing is written
    assert response.status_code == 422, response.content
    [problem] = response.json()["detail"]
    assert (problem["loc"][0], problem["loc"][-len(location) :]) == (source, location)
    assert problem["type"] == "nul_character"
    assert rows_written() == before


def test_the_text_fields_are_read_from_the_document():
    fields = list(every_text_field())

    assert {operation for operation, _ in fields} == {
        f"{method.upper()} {path}"
        for path, operations in SPEC["paths"].items()
        for method in operations
    }
    assert ("POST /api/v1/calls/batch", ("body", "calls", 0, "org")) in fields
    assert ("POST /api/v1/orgs/{org}/phone-numbers", ("body", "region")) in fields


def test_operation_ids_name_the_endpoint_not_the_module_it_is_written_in():
    # Clients generated from the document keep their method names when the code moves.
    operation_ids = [
        operation["operationId"]
        for operations in SPEC["paths"].values()
        for operation in operations.values()
    ]

    assert sorted(operation_ids) == sorted(
        f"usage_api_{name}"
        for name in (
            "authorize_call",
            "record_call",
            "record_calls",
            "create_employee",
            "deactivate_employee",
            "reactivate_employee",
            "provision_number",
            "assign_number",
            "release_number",
            "report_storage",
            "report_api_usage",
            "get_usage",
            "get_alerts",
            "list_features",
            "get_feature",
            "list_line_calls",
            "get_upcoming_invoice",
            "get_costs",
            "get_budgets",
            "put_budgets",
            "get_caps",
            "put_caps",
        )
    )


# --- fuzzing ------------------------------------------------------------------------------

# The seeded world, with fixed ids, so that the fuzzer reaches real organizations, AI
# employees and numbers most of the time, and made-up ones the rest.
ORGANIZATIONS = ["acme", "northwind", "suspended", "unsubscribed"]
EMPLOYEES = {"acme": [7001, 7002, 7003], "northwind": [7004]}
NUMBERS = {"acme": [8001, 8002]}
FUZZER = schemathesis.openapi.from_dict(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "seed": 20260316,
            "generation": {"max-examples": 20, "deterministic": True},
            "dictionaries": {
                "organizations": {"values": ORGANIZATIONS},
                "employees": {"values": [id for ids in EMPLOYEES.values() for id in ids]},
                "numbers": {"values": [id for ids in NUMBERS.values() for id in ids]},
                "features": {"values": ["core_calling", "analytics_dashboards"]},
                # Calls and reports of this morning: a few ids, so repeats and conflicts too
                "ids": {"values": ["call-1", "call-2", "call-3"]},
                "connects": {"values": ["2026-03-16T09:00:00Z", "2026-03-16T09:30:00+01:00"]},
                "ends": {"values": ["2026-03-16T09:02:00Z", "2026-03-16T09:45:30.5Z"]},
            },
            "parameters": {
                "path.org": {"dictionary": "organizations", "probability": 0.8},
                "body.calls[*].org": {"dictionary": "organizations", "probability": 0.8},
                "path.employee_id": {"dictionary": "employees", "probability": 0.8},
                "body.employee_id": {"dictionary": "employees", "probability": 0.8},
                "body.calls[*].employee_id": {"dictionary": "employees", "probability": 0.8},
                "path.number_id": {"dictionary": "numbers", "probability": 0.8},
                "path.code": {"dictionary": "features", "probability": 0.8},
                "body.call_id": {"dictionary": "ids", "probability": 0.8},
                "body.calls[*].call_id": {"dictionary": "ids", "probability": 0.8},
                "body.report_id": {"dictionary": "ids", "probability": 0.8},
                "body.connected_at": {"dictionary": "connects", "probability": 0.8},
                "body.calls[*].connected_at": {"dictionary": "connects", "probability": 0.8},
                "body.measured_at": {"dictionary": "connects", "probability": 0.8},
                "body.ended_at": {"dictionary": "ends", "probability": 0.8},
                "body.calls[*].ended_at": {"dictionary": "ends", "probability": 0.8},
            },
        }
    ),
)


@pytest.fixture
def world(now):
    """Organizations on a plan with room, on a plan at its limits, suspended, and without a
    subscription; AI employees active, deactivated and outbound-only; numbers held and
    released; the price list; and a service token."""
    catalog_services.catalog_load()
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    acme = SubscriptionFactory(
        organization=OrganizationFactory(slug="acme"),
        plan=PlanFactory(
            max_active_employees=3,
            max_phone_numbers=2,
            free_phone_numbers=1,
            overage_policy="block",
        ),
        start=start,
        now=now,
    ).organization
    northwind = SubscriptionFactory(
        organization=OrganizationFactory(slug="northwind"), start=start, now=now
    ).organization
    suspended = SubscriptionFactory(
        organization=OrganizationFactory(slug="suspended"), start=start, now=now
    )
    subscription_services.subscription_set_status(
        subscription=suspended, status="past_due", reason="Card declined", now=now
    )
    subscription_services.subscription_set_status(
        subscription=suspended, status="suspended", reason="Retries exhausted", now=now
    )
    OrganizationFactory(slug="unsubscribed")
    EmployeeFactory(id=7001, organization=acme)
    EmployeeFactory(id=7002, organization=acme, is_active=False)
    EmployeeFactory(id=7003, organization=acme, inbound_capable=False)
    EmployeeFactory(id=7004, organization=northwind)
    PhoneNumberRateFactory()
    PhoneNumberRateFactory(number_type="toll_free")
    for id, number in zip(NUMBERS["acme"], ["+12125550100", "+12125550101"], strict=True):
        PhoneNumber.objects.create(
            id=id,
            organization=acme,
            number=number,
            number_type="local",
            country="US",
            monthly_fee=Money("1.75", "USD"),
            provisioned_at=now,
        )
    PhoneNumber.objects.filter(id=8002).update(released_at=now)
    return service_token_create(name="calling platform", all_organizations=True)[1]


FUZZER.app = WSGIHandler()


@pytest.fixture
def requests_in_the_tests_transaction():
    """Like the test client, keep the database connection open between requests, so that
    the application works in the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@FUZZER.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_only_what_its_document_says_and_refusals_write_nothing(
    case, world, requests_in_the_tests_transaction
):
    before = rows_written()

    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {world}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            ignored_auth,
        ],
    )

    if 400 <= response.status_code < 500:
        assert rows_written() == before, f"{response.status_code} after writing"
    is_json = response.headers.get("content-type") == ["application/json; charset=utf-8"]
    refusal = response.json() if response.status_code >= 400 and is_json else {}
    if "code" in refusal:
        answers = SPEC["paths"][case.path][case.method.lower()]["responses"]
        listed = {str(status): answer["description"] for status, answer in answers.items()}
        assert f"`{refusal['code']}`" in listed[str(response.status_code)], (
            f"{refusal['code']} is not listed with {response.status_code}"
        )
