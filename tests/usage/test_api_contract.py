"""The platform API against its OpenAPI document: every text field refuses NUL."""

import datetime as dt

import pytest

from tests.factories import (
    EmployeeFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
)
from tests.usage.test_api import call as api_call
from usage import services
from usage.api import api as platform_api
from usage.models import AIEmployee, Call, PhoneNumber, UsageCounter, UsageReport

pytestmark = pytest.mark.django_db

SPEC = platform_api.get_openapi_schema()
WRITTEN = (AIEmployee, Call, PhoneNumber, UsageCounter, UsageReport)


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
                    yield f"{method.upper()} {path}", ("path", parameter["name"])
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
        "GET /api/v1/orgs/{org}/features": (org, None),
        "GET /api/v1/orgs/{org}/features/{code}": (org | {"code": "core_calling"}, None),
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
    if source == "path":
        path_params = path_params | {location[0]: with_nul(path_params[location[0]])}
    else:
        *parents, name = location
        holder = body
        for key in parents:
            holder = holder[key]
        holder[name] = with_nul(str(holder[name]))
    token = services.service_token_create(name="calling platform")[1]
    before = rows_written()

    # When it is sent
    url = path.format(
        **{key: str(value).replace("\x00", "%00") for key, value in path_params.items()}
    )
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
