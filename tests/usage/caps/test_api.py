"""`GET/PUT /api/v1/orgs/{org}/caps`: the caps and their use, set whole, refusals naming
the field, nothing written on bad input."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from tests.factories import EmployeeFactory, PlanFactory, SubscriptionFactory, record_call
from usage.models import SpendCap, SpendCapChange
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def token():
    return service_token_create(name="calling platform", all_organizations=True)[1]


@pytest.fixture
def api(client, token):
    class Api:
        def put(self, path, body):
            return client.put(
                f"/api/v1/{path}",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )

        def post(self, path, body):
            return client.post(
                f"/api/v1/{path}",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )

        def get(self, path):
            return client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    return Api()


@pytest.fixture
def employee(now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=600, overage_cap=Money(Decimal("100"), "USD")),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )
    return EmployeeFactory(organization=subscription.organization, name="Ava", cost_center="Sales")


def test_put_sets_the_caps_and_authorization_applies_them(api, employee, now):
    # Given 900 s used: 300 s of overage ($1.20)
    record_call(employee=employee, seconds=900, connected_at=now - dt.timedelta(hours=1))
    slug = employee.organization.slug

    # When the platform sets every kind of cap
    response = api.put(
        f"orgs/{slug}/caps",
        {
            "overage_spend": "40.00",
            "employees": [{"employee_id": employee.pk, "call_seconds": 900}],
            "cost_centers": [{"cost_center": "Sales", "call_seconds": 3600}],
        },
    )

    # Then it answers the caps with their use, and the AI employee at its cap is refused
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["overage_spend"], body["plan_overage_cap"], body["overage_spent"]) == (
        "40.00",
        "100.00",
        "1.20",
    )
    assert body["employees"] == [
        {"employee_id": employee.pk, "name": "Ava", "call_seconds": 900, "used_seconds": 900}
    ]
    assert body["cost_centers"] == [
        {"cost_center": "Sales", "call_seconds": 3600, "used_seconds": 900}
    ]
    assert api.get(f"orgs/{slug}/caps").json() == body
    authorize = api.post(f"orgs/{slug}/calls/authorize", {"employee_id": employee.pk}).json()
    assert (authorize["allowed"], authorize["reason"]) == (False, "employee_cap_reached")
    # And the change is recorded as made through the API
    assert {change.changed_by_token.name for change in SpendCapChange.objects.all()} == {
        "calling platform"
    }


def test_put_without_a_list_removes_those_caps(api, employee):
    slug = employee.organization.slug
    api.put(f"orgs/{slug}/caps", {"employees": [{"employee_id": employee.pk, "call_seconds": 60}]})

    response = api.put(f"orgs/{slug}/caps", {})

    assert response.status_code == 200
    assert not SpendCap.objects.exists()
    assert SpendCapChange.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"overage_spend": "100.01"}, 422, "overage_spend"),  # above the plan's cap
        ({"overage_spend": "-1"}, 422, "overage_spend"),
        ({"overage_spend": "1.001"}, 422, "overage_spend"),
        ({"overage_spend": "ten"}, 422, "overage_spend"),
        ({"employees": [{"employee_id": 0, "call_seconds": 60}]}, 422, "employee_id"),
        ({"employees": [{"employee_id": 999_999, "call_seconds": 60}]}, 404, "employees"),
        ({"employees": [{"employee_id": "EMPLOYEE", "call_seconds": 0}]}, 422, "call_seconds"),
        ({"employees": [{"employee_id": "EMPLOYEE", "call_seconds": 60}] * 2}, 422, "employees"),
        ({"cost_centers": [{"cost_center": "Nobody", "call_seconds": 60}]}, 404, "cost_centers"),
        ({"cost_centers": [{"cost_center": "", "call_seconds": 60}]}, 422, "cost_center"),
        ({"cost_centers": [{"cost_center": "Sa\x00les", "call_seconds": 60}]}, 422, "cost_center"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(
    api, employee, body, status, field
):
    for cap in body.get("employees", []):
        if cap["employee_id"] == "EMPLOYEE":
            cap["employee_id"] = employee.pk

    response = api.put(f"orgs/{employee.organization.slug}/caps", body)

    assert response.status_code == status, response.content
    answer = response.json()
    if "code" in answer:
        assert answer["field"] == field
    else:
        assert field in {str(part) for problem in answer["detail"] for part in problem["loc"]}
    assert not SpendCap.objects.exists() and not SpendCapChange.objects.exists()


def test_a_block_plan_has_no_overage_to_cap(api, now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(overage_policy="block"),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )

    response = api.put(f"orgs/{subscription.organization.slug}/caps", {"overage_spend": "5"})

    assert response.status_code == 409
    assert response.json()["code"] == "no_overage_to_cap"


def test_an_unknown_organization_is_404(api):
    assert api.get("orgs/nobody/caps").json()["code"] == "organization_not_found"
    assert api.put("orgs/nobody/caps", {}).status_code == 404
