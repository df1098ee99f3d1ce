"""An invoice issued to an organization that pays automatically leaves the transaction as one
queued task: its charge, then its notice, which tells how the charge went."""

import datetime as dt

import pytest
from django_q.tasks import async_task

from billing.lifecycle import renewals
from billing.models import Notification
from billing.notifications import invoice_notices
from tests.factories import OrganizationFactory, PlanFactory, SubscriptionFactory, card

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
MAY = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


@pytest.fixture
def subscription():
    return SubscriptionFactory(
        organization=OrganizationFactory(), plan=PlanFactory(), start=APRIL, now=APRIL
    )


def renew_and_commit(subscription, django_capture_on_commit_callbacks, monkeypatch):
    """Renew at the end of April and commit; returns the invoice and the tasks queued for it."""
    queued = []

    def queue(task, *args, **kwargs):
        queued.append(task)
        return async_task(task, *args, **kwargs)

    monkeypatch.setattr(invoice_notices, "async_task", queue)
    with django_capture_on_commit_callbacks(execute=True):
        [invoice] = renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=MAY)
    invoice.refresh_from_db()
    return invoice, queued


def issued_notice(invoice) -> Notification:
    return Notification.objects.get(dedup_key=f"invoice:{invoice.pk}:issued")


def test_a_renewal_charged_automatically_queues_one_task_and_its_notice_says_paid(
    subscription, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    # Given an organization with a card that pays
    card(subscription.organization)
    mailoutbox.clear()

    # When its renewal commits
    invoice, queued = renew_and_commit(
        subscription, django_capture_on_commit_callbacks, monkeypatch
    )

    # Then one task was queued for the invoice, which charged it and then told the customer
    assert queued == ["payments.tasks.invoice_collect_and_notify"]
    assert invoice.status == "paid"
    assert "paid" in issued_notice(invoice).title
    assert any(
        f"Invoice {invoice.number}" in mail.subject and "paid" in mail.subject
        for mail in mailoutbox
    )


def test_a_declined_charge_still_sends_the_invoice_notice(
    subscription, django_capture_on_commit_callbacks, monkeypatch
):
    # Given an organization whose card is declined
    card(subscription.organization, "4000000000000341")

    # When its renewal commits
    invoice, _ = renew_and_commit(subscription, django_capture_on_commit_callbacks, monkeypatch)

    # Then the invoice is still owed, and its notice went out all the same
    assert invoice.status == "open"
    assert issued_notice(invoice).title.startswith(f"Invoice {invoice.number}")
