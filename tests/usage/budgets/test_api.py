"""`GET/PUT /api/v1/orgs/{org}/budgets`."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from tests.factories import (
    EmployeeFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    record_call,
)
from usage.models import Budget, BudgetChange
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client):
    token = service_token_create(name="calling platform", all_organizations=True)[1]

    class Api:
        def put(self, path, body):
            return client.put(
                f"/api/v1/{path}",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )

        def get(self, path):
            return client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    return Api()


@pytest.fixture
def organization(now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(price=Money(100, "USD"), included_call_seconds=0),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )
    employee = EmployeeFactory(organization=subscription.organization)
    record_call(employee=employee, seconds=15_000, connected_at=now - dt.timedelta(hours=5))
    return subscription.organization


def test_put_sets_the_budget_and_answers_spend_and_forecast(api, organization):
    response = api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": "200"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("currency", "monthly_budget", "spent", "percent")} == {
        "currency": "USD",
        "monthly_budget": "200.00",
        "spent": "160.00",
        "percent": 80,
    }
    assert body["forecast_exceeds_budget"] is True and body["days_left"] == 16
    assert body["forecast_low"] <= body["forecast"] <= body["forecast_high"]
    assert api.get(f"orgs/{organization.slug}/budgets").json() == body


def test_null_removes_the_budget(api, organization):
    api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": "200"})

    body = api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": None}).json()

    assert (body["monthly_budget"], body["percent"]) == (None, None)
    assert not Budget.objects.exists()


@pytest.mark.parametrize("amount", ["0", "-1", "1.001", "lots", "1e40", True])
def test_bad_input_is_refused_naming_the_field(api, organization, amount):
    response = api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": amount})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "monthly_budget"]
    assert not Budget.objects.exists()


def test_without_a_subscription_there_is_nothing_to_budget(api):
    organization = EmployeeFactory().organization

    assert api.get(f"orgs/{organization.slug}/budgets").json()["code"] == "no_subscription"
    assert api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": "5"}).status_code == 409
    assert api.get("orgs/nobody/budgets").status_code == 404


def test_cost_center_budgets_are_set_whole_and_answered_with_their_share(api, organization):
    # Given $60 of overage, all Support's, and a 10% tax
    TaxRateFactory(percentage=Decimal("10"))

    body = api.put(
        f"orgs/{organization.slug}/budgets",
        {
            "monthly_budget": None,
            "cost_centers": [{"cost_center": "Support", "monthly_budget": "50"}],
        },
    ).json()

    assert body["cost_centers"][0] | {
        "forecast": None,
        "forecast_low": None,
        "forecast_high": None,
    } == {
        "cost_center": "Support",
        "monthly_budget": "50.00",
        "call_seconds": 15_000,
        "spent": "66.00",
        "percent": 132,
        "forecast": None,
        "forecast_low": None,
        "forecast_high": None,
        "forecast_exceeds_budget": True,
    }
    api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": None})
    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("cost_centers", "status"),
    [
        ([{"cost_center": "Nobody", "monthly_budget": "5"}], 404),
        ([{"cost_center": "Support", "monthly_budget": "5"}] * 2, 422),
        ([{"cost_center": "", "monthly_budget": "5"}], 422),
        ([{"cost_center": "Support", "monthly_budget": "0"}], 422),
    ],
)
def test_bad_cost_center_budgets_are_refused_and_nothing_is_written(
    api, organization, cost_centers, status
):
    response = api.put(
        f"orgs/{organization.slug}/budgets", {"monthly_budget": "200", "cost_centers": cost_centers}
    )

    assert response.status_code == status
    assert not Budget.objects.exists()


def test_a_change_through_the_api_is_recorded_with_its_token(api, organization):
    api.put(f"orgs/{organization.slug}/budgets", {"monthly_budget": "200"})

    [change] = BudgetChange.objects.all()

    assert (change.previous_amount, change.new_amount) == (None, Decimal("200.00"))
    assert change.changed_by is None and change.changed_by_token.name == "calling platform"
