"""The organization 360 page: one organization's subscription, usage, money, collection,
payment methods, notices and staff actions on one admin page, with the actions the viewer's
role allows, in a constant number of queries."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.invoicing import services as invoicing_services
from payments import services as payment_services
from tests.factories import (
    StaffFactory,
    SubscriptionFactory,
    declined_invoice,
    sign_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(now, email_invoice):
    """Acme Dental: its first invoice e-mailed, then declined on its only card, and $30 of
    goodwill credit granted by Finance."""
    organization = SubscriptionFactory(
        organization__name="Acme Dental", organization__slug="acme-dental", now=now
    ).organization
    email_invoice(organization.invoices.get())
    declined_invoice(organization, now=now)
    invoicing_services.balance_credit_grant(
        organization=organization,
        kind="goodwill",
        amount=Money("30.00", "USD"),
        description="Calls dropped on the 3rd",
        actor=StaffFactory(username="fiona", roles=["Finance"]),
    )
    return organization


def url(organization):
    return reverse("admin:billing_organization_360", args=[organization.pk])


def test_support_sees_the_whole_organization_on_one_page(client, acme):
    sign_in(client, StaffFactory(username="sam", roles=["Support"]))

    response = client.get(url(acme))

    assert response.status_code == 200
    page = response.content.decode()
    subscription = acme.subscriptions.get()
    invoice = acme.invoices.get()
    assert str(subscription.plan) in page
    assert 'id="status-360">Past due' in page
    assert 'id="balance-360">$30.00' in page
    assert invoice.number in page
    assert "Retries exhausted" in page or "Retrying" in page  # the dunning state
    assert "card was declined" in page.lower()  # the last decline's reason
    assert "•••• 0341" in page
    assert "Calls dropped on the 3rd" in page  # the staff action, with its reason
    assert "fiona" in page
    assert "Call time" in page  # usage against the allowance
    # Support's actions are offered; Finance's are not.
    assert reverse("admin:payments_invoice_retry", args=[invoice.pk]) in page
    assert reverse("admin:billing_invoice_void", args=[invoice.pk]) not in page


def test_finance_is_offered_the_money_actions_too(client, acme):
    sign_in(client, StaffFactory(username="fiona2", roles=["Finance"]))
    invoice = acme.invoices.get()

    page = client.get(url(acme)).content.decode()

    assert reverse("admin:billing_invoice_void", args=[invoice.pk]) in page
    assert reverse("admin:payments_invoice_bank_transfer", args=[invoice.pk]) in page
    assert reverse("admin:billing_balanceentry_add") in page


@pytest.mark.parametrize("roles", [[], ["Catalog"]])
def test_staff_who_do_not_read_billing_are_refused(client, acme, roles):
    sign_in(client, StaffFactory(username="other", roles=roles))

    assert client.get(url(acme)).status_code == 403


def test_the_organization_page_and_list_link_to_it(client, acme):
    sign_in(client, StaffFactory(username="sam", roles=["Support"]))

    change = client.get(reverse("admin:billing_organization_change", args=[acme.pk]))
    listing = client.get(reverse("admin:billing_organization_changelist"))

    assert url(acme) in change.content.decode()
    assert url(acme) in listing.content.decode()


def test_the_page_runs_the_same_queries_however_much_the_organization_has(client, acme, now):
    support = StaffFactory(username="sam", roles=["Support"])
    sign_in(client, support)
    client.get(url(acme))  # warm: the session, the permissions

    with CaptureQueriesContext(connection) as small:
        assert client.get(url(acme)).status_code == 200
    for n in range(15):
        invoicing_services.balance_credit_grant(
            organization=acme,
            kind="goodwill",
            amount=Money("1.00", "USD"),
            description=f"Credit {n}",
            actor=StaffFactory(username=f"fin{n}", roles=["Finance"]),
        )
        payment_services.invoice_collect(
            invoice=acme.invoices.get(), now=now + dt.timedelta(minutes=n + 1), on_request=True
        )
    with CaptureQueriesContext(connection) as large:
        assert client.get(url(acme)).status_code == 200

    assert len(large) == len(small)
