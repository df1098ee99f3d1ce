"""Row locks: every one taken through the lock modules, in the one order billing/locks.py
documents, and a transaction that takes them out of order fails."""

from pathlib import Path

import pytest
from django.apps import apps
from django.db import transaction

from billing import locks
from billing.locks import LOCK_ORDER, LockOrderError
from billing.models import Feature, Invoice, Organization
from payments import locks as payment_locks
from tests.factories import SubscriptionFactory

ROOT = Path(__file__).resolve().parents[2]
LOCK_MODULES = {ROOT / "billing" / "locks.py"}


@pytest.fixture
def subscription(now):
    return SubscriptionFactory(now=now)


def test_every_kind_in_the_lock_order_is_a_model():
    assert [apps.get_model(label)._meta.label for label in LOCK_ORDER] == list(LOCK_ORDER)


def test_no_row_is_locked_outside_the_lock_modules():
    lockers = [
        path.relative_to(ROOT)
        for app in ("billing", "usage", "payments", "config")
        for path in (ROOT / app).rglob("*.py")
        if path not in LOCK_MODULES and "select_for_update" in path.read_text()
    ]

    assert lockers == []


@pytest.mark.django_db
class TestLockOrder:
    def test_locks_taken_in_order_pass(self, subscription):
        invoice = subscription.invoices.get()

        with transaction.atomic():
            payment_locks.collection_lock().filter(invoice=invoice).first()
            locks.invoice_lock().get(pk=invoice.pk)
            locks.subscription_lock().get(pk=subscription.pk)
            locks.organization_lock().get(pk=subscription.organization_id)

    def test_a_lock_taken_out_of_order_raises(self, subscription):
        invoice = subscription.invoices.get()

        with transaction.atomic():
            locks.subscription_lock().get(pk=subscription.pk)
            with pytest.raises(
                LockOrderError, match=r"billing\.Invoice locked while holding billing\.Subscription"
            ):
                locks.invoice_lock().get(pk=invoice.pk)

    def test_a_row_already_held_can_be_taken_again(self, subscription):
        with transaction.atomic():
            locks.subscription_lock().get(pk=subscription.pk)
            locks.organization_lock().get(pk=subscription.organization_id)

            again = locks.subscription_lock().get(pk=subscription.pk)

        assert again == subscription

    def test_another_row_of_a_kind_held_before_is_out_of_order(self, now, subscription):
        other = SubscriptionFactory(now=now)

        with transaction.atomic():
            locks.subscription_lock().get(pk=subscription.pk)
            locks.organization_lock().get(pk=subscription.organization_id)
            with pytest.raises(LockOrderError):
                locks.subscription_lock().get(pk=other.pk)

    def test_asking_whether_rows_exist_locks_them_too(self, subscription):
        with transaction.atomic():
            locks.organization_lock().get(pk=subscription.organization_id)
            with pytest.raises(LockOrderError):
                locks.subscription_lock().filter(pk=subscription.pk).exists()

    def test_each_transaction_starts_afresh(self, subscription):
        invoice = subscription.invoices.get()
        with transaction.atomic():
            locks.organization_lock().get(pk=subscription.organization_id)

        with transaction.atomic():
            locks.invoice_lock().get(pk=invoice.pk)

    def test_the_check_can_be_turned_off(self, settings, subscription):
        settings.BILLING_CHECK_LOCK_ORDER = False
        invoice = subscription.invoices.get()

        with transaction.atomic():
            locks.organization_lock().get(pk=subscription.organization_id)
            locks.invoice_lock().get(pk=invoice.pk)

    def test_a_model_outside_the_order_cannot_be_locked(self):
        with pytest.raises(LockOrderError, match="no place in the lock order"):
            locks.rows_lock(Feature.objects.all())


@pytest.mark.django_db(transaction=True)
class TestLockOrderAcrossCommits:
    """Outside a test's own transaction: a transaction's locks end with its commit or its
    rollback."""

    def test_a_committed_transaction_leaves_no_lock_behind(self, subscription):
        invoice = subscription.invoices.get()
        with transaction.atomic():
            locks.organization_lock().get(pk=subscription.organization_id)

        with transaction.atomic():
            locks.invoice_lock().get(pk=invoice.pk)

    def test_a_rolled_back_transaction_leaves_no_lock_behind(self, subscription):
        invoice = subscription.invoices.get()
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            locks.organization_lock().get(pk=subscription.organization_id)
            1 / 0  # noqa: B018

        with transaction.atomic():
            locks.invoice_lock().get(pk=invoice.pk)

    def test_out_of_order_in_one_transaction_still_raises(self, subscription):
        invoice = subscription.invoices.get()

        with pytest.raises(LockOrderError), transaction.atomic():
            locks.organization_lock().get(pk=Organization.objects.get().pk)
            Invoice.objects.get(pk=invoice.pk)
            locks.invoice_lock().get(pk=invoice.pk)
