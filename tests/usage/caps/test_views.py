"""The spend caps page: administrators set the caps, members and support staff read them,
outsiders get 404; bad input is refused naming the field, and nothing is written."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
    sign_in,
)
from usage.caps.services import spend_caps_replace
from usage.models import SpendCap, SpendCapChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization(now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=600, overage_cap=Money(Decimal("100"), "USD")),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )
    organization = subscription.organization
    ava = EmployeeFactory(organization=organization, name="Ava", cost_center="Sales")
    EmployeeFactory(organization=organization, name="Ben", cost_center="Front desk")
    record_call(employee=ava, seconds=900, connected_at=now - dt.timedelta(hours=1))
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(organization=organization, user=UserFactory(username="member"), role="member")
    return organization


def url(organization):
    return reverse("usage:caps", args=[organization.slug])


def form_data(organization, **values):
    """What the page posts: every field empty (no cap) unless given."""
    ava, ben = organization.employees.order_by("name")
    data = {
        "overage_spend": "",
        f"employee_{ava.pk}": "",
        f"employee_{ben.pk}": "",
        "cost_center_0": "",
        "cost_center_0_name": "Front desk",
        "cost_center_1": "",
        "cost_center_1_name": "Sales",
    }
    return data | values


def test_an_administrator_sets_caps_in_money_and_minutes(client, organization):
    # Given the administrator on the caps page
    sign_in(client, UserFactory._meta.model.objects.get(username="admin"))
    ava = organization.employees.get(name="Ava")

    # When they cap overage at $40, Ava at 20 minutes and Sales at 60
    response = client.post(
        url(organization),
        form_data(
            organization,
            overage_spend="40",
            **{f"employee_{ava.pk}": "20", "cost_center_1": "60"},
        ),
    )

    # Then the caps are saved in seconds, recorded with who, and shown with this month's use
    assert response.status_code == 302
    assert {str(cap) for cap in SpendCap.objects.all()} == {
        "Overage spend at most $40.00",
        "Ava: at most 1200 s of calls",
        "Sales: at most 3600 s of calls",
    }
    assert {change.changed_by.username for change in SpendCapChange.objects.all()} == {"admin"}
    page = client.get(url(organization)).text
    assert "The caps are saved" in page
    assert "$1.20 of overage so far" in page
    assert 'value="20"' in page and 'value="60"' in page
    assert "15 min (75%)" in page  # Ava's 900 s of her 1,200


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"overage_spend": "100.01"},
            "overage_spend",
            "at most the Professional plan's own overage cap of $100.00",
        ),
        ({"overage_spend": "-5"}, "overage_spend", "greater than or equal to 0"),
        ({"overage_spend": "abc"}, "overage_spend", "Enter a number"),
        ({"cost_center_0": "0"}, "cost_center_0", "greater than or equal to 1"),
        ({"cost_center_0": "1.5"}, "cost_center_0", "Enter a whole number"),
        ({"cost_center_0": "10", "cost_center_0_name": "Nobody"}, None, "cost center 'Nobody'"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, organization, values, field, message):
    sign_in(client, UserFactory._meta.model.objects.get(username="admin"))

    response = client.post(url(organization), form_data(organization, **values))

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert message in " ".join(errors[field or "__all__"])
    assert message.replace("'", "&#x27;") in response.text
    assert not SpendCap.objects.exists() and not SpendCapChange.objects.exists()


@pytest.mark.parametrize(
    ("username", "status"), [("member", 200), ("rival", 404), ("support", 200), ("admin", 200)]
)
def test_who_sees_the_caps_page(client, organization, username, status, now):
    spend_caps_replace(
        organization=organization,
        overage_spend=Decimal("40"),
        employees={},
        cost_centers={"Sales": 3_600},
        now=now,
    )
    MembershipFactory(user=UserFactory(username="rival"))
    StaffFactory(username="support")
    sign_in(client, UserFactory._meta.model.objects.get(username=username))

    response = client.get(url(organization))

    assert response.status_code == status
    if status == 200:
        assert "60 min" in response.text  # Sales's cap, to read
        assert ("Save caps" in response.text) == (username == "admin")


def test_anonymous_visitors_are_sent_to_sign_in(client, organization):
    response = client.get(url(organization))

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("username", ["member", "support"])
def test_only_administrators_change_caps(client, organization, username):
    StaffFactory(username="support")
    sign_in(client, UserFactory._meta.model.objects.get(username=username))

    response = client.post(url(organization), form_data(organization, overage_spend="10"))

    assert response.status_code == 403
    assert not SpendCap.objects.exists()


def test_the_page_runs_a_constant_number_of_queries(
    client, organization, now, django_assert_max_num_queries
):
    sign_in(client, UserFactory._meta.model.objects.get(username="admin"))
    client.get(url(organization))
    for n in range(20):
        EmployeeFactory(organization=organization, cost_center=f"Team {n}")

    with django_assert_max_num_queries(25):
        client.get(url(organization))
