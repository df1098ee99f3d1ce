"""The billing settings page: administrators change the billing contacts, address and tax ID;
each change is recorded; invoices finalized afterwards use the new details, earlier ones keep
theirs."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from billing.accounts.services import organization_billing_details_update
from billing.lifecycle import renewals
from billing.models import Membership
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
)
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)

DETAILS = {
    "billing_emails": "ap@acme.example.com, cfo@acme.example.com",
    "address_line1": "1 Harbour Street",
    "address_line2": "",
    "city": "Boston",
    "region": "MA",
    "postal_code": "02110",
    "country": "us",
    "tax_id": "US 98-7654321",
}


@pytest.fixture
def acme():
    organization = OrganizationFactory(
        name="Acme Dental",
        slug="acme",
        billing_emails="old@acme.example.com",
        address_line1="350 Fifth Avenue",
        city="New York",
        region="NY",
        postal_code="10118",
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="admin", first_name="Alice")
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="member"), role=Membership.Role.MEMBER
    )
    MembershipFactory(
        organization=OrganizationFactory(slug="rival"), user=UserFactory(username="rival")
    )
    StaffFactory(username="support")
    return organization


def test_an_administrator_changes_the_details_and_the_change_is_recorded(acme, client):
    client = signed_in(client, "admin")
    url = reverse("billing:settings", args=["acme"])

    response = client.post(url, DETAILS)

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.billing_email_list == ["ap@acme.example.com", "cfo@acme.example.com"]
    assert (acme.city, acme.country, acme.tax_id) == ("Boston", "US", "US 98-7654321")
    page = client.get(url).text
    assert "by Alice" in page
    assert "“New York” → “Boston”" in page


def test_invoices_finalized_afterwards_use_the_new_details_earlier_ones_keep_theirs(acme):
    # Given an invoice issued on the old details
    with time_machine.travel(START, tick=False):
        subscription = SubscriptionFactory(organization=acme, start=START, now=START)
    first = subscription.invoices.get()

    # When the details change, then the subscription renews
    organization_billing_details_update(
        organization=acme, actor=None, **{**DETAILS, "country": "US"}
    )
    renewal = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(renewal, tick=False):
        renewals.renew_subscriptions_if_needed(now=renewal)

    # Then the renewal invoice carries the new ones, the first invoice its own
    second = subscription.invoices.exclude(pk=first.pk).get()
    first.refresh_from_db()
    assert "New York" in first.customer_address and first.customer_emails == "old@acme.example.com"
    assert "Boston" in second.customer_address
    assert second.customer_emails == "ap@acme.example.com, cfo@acme.example.com"
    assert second.customer_tax_id == "US 98-7654321"


def test_an_invalid_address_is_refused_and_nothing_changes(acme, client):
    response = signed_in(client, "admin").post(
        reverse("billing:settings", args=["acme"]), {**DETAILS, "billing_emails": "not-an-email"}
    )

    assert response.status_code == 400
    assert "Enter a valid email address." in response.text
    acme.refresh_from_db()
    assert acme.billing_emails == "old@acme.example.com"


@pytest.mark.parametrize(
    ("username", "status"), [("member", 403), ("rival", 404), ("admin", 200), ("support", 200)]
)
def test_who_sees_the_billing_settings(acme, client, username, status):
    response = signed_in(client, username).get(reverse("billing:settings", args=["acme"]))

    assert response.status_code == status


@pytest.mark.parametrize("username", ["member", "support"])
def test_only_administrators_change_the_details(acme, client, username):
    response = signed_in(client, username).post(reverse("billing:settings", args=["acme"]), DETAILS)

    assert response.status_code == 403
    acme.refresh_from_db()
    assert acme.city == "New York"
