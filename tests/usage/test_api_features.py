"""`GET orgs/{org}/features`: the calling platform gates its own features with the check the
billing pages use."""

import datetime as dt

import pytest

from billing.catalog import services as catalog_services
from billing.lifecycle import services as lifecycle_services
from billing.models import Feature, Plan
from tests.factories import OrganizationFactory, SubscriptionFactory
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client):
    """GET /api/v1/… with a service token."""
    token = service_token_create(name="calling platform", all_organizations=True)[1]

    def get(path):
        return client.get(f"/api/v1/{path}", HTTP_AUTHORIZATION=f"Bearer {token}")

    return get


@pytest.fixture
def acme(now):
    """Acme Dental on Starter, trying the analytics dashboards for a week."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="acme")
    SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="starter-monthly"), now=now
    )
    catalog_services.feature_trial_grant(
        organization=organization,
        feature=Feature.objects.get(code="analytics_dashboards"),
        days=7,
        now=now,
    )
    return organization


def by_code(features):
    return {feature["code"]: feature for feature in features}


def test_every_feature_says_whether_and_why_the_organization_has_it(api, acme):
    response = api("orgs/acme/features")

    assert response.status_code == 200
    features = by_code(response.json())
    assert list(features) == list(Feature.objects.values_list("code", flat=True))
    assert features["core_calling"] == {
        "code": "core_calling",
        "name": "Core calling",
        "enabled": True,
        "source": "plan",
        "trial_ends_at": None,
        "included_in_plan": None,
    }
    assert features["analytics_dashboards"] == {
        "code": "analytics_dashboards",
        "name": "Analytics dashboards",
        "enabled": True,
        "source": "trial",
        "trial_ends_at": "2026-03-23T10:00:00Z",
        "included_in_plan": "professional-monthly",
    }
    assert features["audit_log"] == {
        "code": "audit_log",
        "name": "Audit log",
        "enabled": False,
        "source": None,
        "trial_ends_at": None,
        "included_in_plan": "business-monthly",
    }
    # Only custom Enterprise plans have it, and none is offered to Acme
    assert features["white_labeling"]["included_in_plan"] is None


def test_one_feature(api, acme):
    response = api("orgs/acme/features/audit_log")

    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert response.json()["included_in_plan"] == "business-monthly"


def test_an_unknown_feature_is_404_with_a_code(api, acme):
    response = api("orgs/acme/features/teleportation")

    assert response.status_code == 404
    assert response.json() == {
        "code": "unknown_feature",
        "detail": "There is no feature with the code 'teleportation'.",
    }


def test_an_unknown_organization_is_404(api, acme):
    assert api("orgs/nobody/features").status_code == 404
    assert api("orgs/nobody/features/core_calling").status_code == 404


def test_without_a_valid_token_the_answer_is_401(client, acme):
    assert client.get("/api/v1/orgs/acme/features").status_code == 401
    assert (
        client.get(
            "/api/v1/orgs/acme/features/core_calling", HTTP_AUTHORIZATION="Bearer wrong"
        ).status_code
        == 401
    )


def test_an_upgrade_counts_from_the_next_request(api, acme, now):
    assert api("orgs/acme/features/integrations").json()["enabled"] is False

    lifecycle_services.subscription_plan_change(
        subscription=acme.subscriptions.get(),
        plan=Plan.objects.get(code="professional-monthly"),
        now=now,
    )

    assert api("orgs/acme/features/integrations").json() | {"name": ""} == {
        "code": "integrations",
        "name": "",
        "enabled": True,
        "source": "plan",
        "trial_ends_at": None,
        "included_in_plan": None,
    }


def test_a_trial_ends_when_it_says(api, acme, time_machine):
    time_machine.move_to(dt.datetime(2026, 3, 23, 10, tzinfo=dt.UTC), tick=False)

    analytics = api("orgs/acme/features/analytics_dashboards").json()

    assert (analytics["enabled"], analytics["source"]) == (False, None)


def test_an_organization_without_a_subscription_has_only_its_trials(api, now):
    catalog_services.catalog_load()
    OrganizationFactory(slug="newcomer")

    features = by_code(api("orgs/newcomer/features").json())

    assert not any(feature["enabled"] for feature in features.values())
    # Without an interval of its own, the monthly plan is named
    assert features["core_calling"]["included_in_plan"] == "starter-monthly"


def test_the_list_runs_a_constant_number_of_queries(api, acme, django_assert_max_num_queries):
    # the token, the organization, the features with their access, the plans offering them
    with django_assert_max_num_queries(4):
        assert len(api("orgs/acme/features").json()) == 11
