"""While a dispute of an invoice is open, its payment retries and the suspension they would
lead to wait; they resume once the dispute is decided."""

import datetime as dt

import pytest

from billing.models import Organization
from billing.support import services as support_services
from payments import reminders, selectors, services
from payments.models import Collection
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    card,
    sign_in,
)

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)


def days(n):
    return APRIL + dt.timedelta(days=n)


def status(subscription):
    subscription.refresh_from_db()
    return subscription.status


@pytest.fixture
def staff():
    return StaffFactory(username="sam", roles=["Finance"])


@pytest.fixture
def subscription(settings):
    # One retry, a day after the first decline; after it, suspension.
    settings.PAYMENT_RETRY_DAYS = [1]
    return SubscriptionFactory(
        organization=OrganizationFactory(), plan=PlanFactory(), start=APRIL, now=APRIL
    )


@pytest.fixture
def declined(subscription):
    """April's invoice, declined on 1 Apr: past due, the last retry due on 2 Apr."""
    card(subscription.organization, "4000000000000341")
    invoice = subscription.invoices.get()
    services.invoice_collect(invoice=invoice, now=APRIL)
    assert status(subscription) == "past_due"
    return invoice


def dispute(invoice, now):
    return support_services.billing_request_open(
        organization=invoice.organization,
        kind="dispute",
        body="This month's fee was charged twice.",
        actor=UserFactory(),
        invoice=invoice,
        line=invoice.lines.get(kind="subscription"),
        now=now,
    )


def test_retries_wait_while_the_dispute_is_open_and_resume_once_it_is_decided(
    subscription, declined, staff
):
    request = dispute(declined, days(0.5))

    # When the retry falls due during the dispute, it waits: no charge, no suspension
    assert services.payment_retries_if_needed(now=days(3)) == 0
    assert declined.payment_attempts.count() == 1
    assert status(subscription) == "past_due"

    # Once the dispute is declined, the next run retries it, and the last failure suspends
    support_services.billing_request_decline(
        request=request, reason="The fee was charged once.", actor=staff, now=days(4)
    )
    services.payment_retries_if_needed(now=days(4))

    assert declined.payment_attempts.count() == 2
    assert Collection.objects.get(invoice=declined).state == "exhausted"
    assert status(subscription) == "suspended"


def test_the_banner_says_the_disputed_invoice_waits(subscription, declined, client):
    admin = UserFactory()
    MembershipFactory(organization=subscription.organization, user=admin)
    dispute(declined, days(0.5))
    sign_in(client, admin)

    page = client.get(f"/billing/{subscription.organization.slug}/").content.decode()

    assert "Under dispute: it is not retried, and suspends nothing" in page
    assert "We will try again on" not in page


def test_with_the_setting_off_a_dispute_holds_nothing_back(subscription, declined, settings):
    settings.BILLING_DISPUTE_PAUSES_DUNNING = False
    dispute(declined, days(0.5))

    services.payment_retries_if_needed(now=days(3))

    assert declined.payment_attempts.count() == 2
    assert status(subscription) == "suspended"


def test_a_question_about_the_invoice_holds_nothing_back(subscription, declined):
    support_services.billing_request_open(
        organization=declined.organization,
        kind="question",
        body="Why is it $199?",
        actor=UserFactory(),
        invoice=declined,
        now=days(0.5),
    )

    services.payment_retries_if_needed(now=days(3))

    assert status(subscription) == "suspended"


def test_an_invoice_paid_by_transfer_is_not_suspended_past_its_grace_while_disputed(settings):
    # Given an organization paying by invoice whose invoice is past its grace period
    settings.INVOICE_GRACE_DAYS = 14
    organization = OrganizationFactory(payment_terms=Organization.PaymentTerms.INVOICE, net_days=30)
    subscription = SubscriptionFactory(
        organization=organization, plan=PlanFactory(), start=APRIL, now=APRIL
    )
    invoice = subscription.invoices.get()
    request = dispute(invoice, days(1))
    past_grace = invoice.due_at + dt.timedelta(days=15)

    # Then, while it is disputed, it makes the subscription past due, never suspended
    assert selectors.status_owed(invoice=invoice, now=past_grace) == "past_due"
    reminders.invoice_reminders_if_needed(now=past_grace)
    assert status(subscription) == "past_due"

    # and once the dispute is decided, the next run suspends it
    support_services.billing_request_decline(
        request=request, reason="The invoice is right.", actor=StaffFactory(), now=past_grace
    )
    reminders.invoice_reminders_if_needed(now=past_grace)
    assert status(subscription) == "suspended"
