"""Collecting invoices under concurrent workers and injected crashes, on PostgreSQL: at most
one successful payment per invoice, and one charge per try at the processor, whatever runs
twice or dies half-way."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing.errors import BillingError
from billing.models import Invoice, Subscription
from payments import reminders, services
from payments.gateways.sandbox import SandboxGateway
from payments.models import Collection, InvoiceReminder, PaymentAttempt
from tests.factories import OrganizationFactory, SubscriptionFactory, card

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
DAY_1 = APRIL + dt.timedelta(days=1)


def in_threads(work, items, workers):
    """Run `work(item)` for every item at once, each worker on its own connection. Returns
    each result, or the exception it raised."""
    barrier = threading.Barrier(workers)

    def run(item):
        try:
            barrier.wait(timeout=10)
            return work(item)
        except Exception as error:  # reported to the test as a result
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, items))


@pytest.fixture
def charges(monkeypatch):
    """The idempotency key of every charge the sandbox processor is asked for."""
    keys = []
    real_charge = SandboxGateway.charge

    def recording(self, **kwargs):
        keys.append(kwargs["idempotency_key"])
        return real_charge(self, **kwargs)

    monkeypatch.setattr(SandboxGateway, "charge", recording)
    return keys


@pytest.fixture
def subscription():
    return SubscriptionFactory(start=APRIL, now=APRIL)


@pytest.fixture
def invoice(subscription):
    return subscription.invoices.get()


def successes(invoice):
    return PaymentAttempt.objects.filter(invoice=invoice, status="succeeded")


def test_eight_workers_collecting_one_invoice_charge_it_once(invoice, charges):
    card(invoice.organization)

    results = in_threads(
        lambda _: services.invoice_collect(invoice=invoice, now=APRIL), range(8), workers=8
    )

    [success] = successes(invoice)
    assert results == [success] * 8  # each worker finds the one successful payment
    assert charges == [success.idempotency_key]
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_the_retry_job_and_pay_now_at_once_pay_at_most_once(subscription, invoice, charges):
    # Given a declined first charge (retry due on day 1), then a working backup card
    card(subscription.organization, "4000000000000341")
    services.invoice_collect(invoice=invoice, now=APRIL)
    good = card(subscription.organization, "4242424242424242")
    charges.clear()

    # When retry jobs on two clusters and the customer's "pay now" run at the same moment
    in_threads(
        lambda job: job(),
        [
            lambda: services.payment_retries_if_needed(now=DAY_1),
            lambda: services.payment_retries_if_needed(now=DAY_1),
            lambda: services.invoice_collect(invoice=invoice, now=DAY_1, on_request=True),
            lambda: services.invoice_collect(invoice=invoice, now=DAY_1, on_request=True),
        ],
        workers=4,
    )

    # Then the good card is charged once, and service is as it was before the decline
    [success] = successes(invoice)
    assert success.payment_method == good
    assert [key for key in charges if key.endswith(f"method-{good.pk}")] == [
        success.idempotency_key
    ]
    assert Collection.objects.get(invoice=invoice).state == "paid"
    assert Subscription.objects.get(pk=subscription.pk).status == "active"


def test_a_crash_after_the_processor_answered_is_recovered_with_the_same_key(
    invoice, charges, monkeypatch
):
    card(invoice.organization)
    recording_charge = SandboxGateway.charge

    def charge_then_crash(self, **kwargs):
        recording_charge(self, **kwargs)
        raise ConnectionError("the worker died after the processor charged the card")

    with monkeypatch.context() as patch:
        patch.setattr(SandboxGateway, "charge", charge_then_crash)
        [crash] = in_threads(
            lambda _: services.invoice_collect(invoice=invoice, now=APRIL), [0], workers=1
        )
    assert isinstance(crash, ConnectionError)
    assert not PaymentAttempt.objects.exists()  # rolled back with the crash

    # Four workers pick the invoice up again at once
    in_threads(lambda _: services.invoice_collect(invoice=invoice, now=APRIL), range(4), workers=4)

    [success] = successes(invoice)
    assert charges == [success.idempotency_key] * 2  # the processor sees one charge, asked twice
    assert Invoice.objects.get(pk=invoice.pk).payment_reference == success.processor_reference


def test_two_people_recording_one_transfer_record_it_once(invoice):
    results = in_threads(
        lambda reference: services.invoice_record_bank_transfer(
            invoice=invoice, reference=reference, received_at=APRIL, now=APRIL
        ),
        ["SEPA-A", "SEPA-B"],
        workers=2,
    )

    [success] = successes(invoice)
    [refused] = [result for result in results if isinstance(result, BillingError)]
    assert refused.code == "invoice_not_open"
    assert Invoice.objects.get(pk=invoice.pk).payment_reference == success.processor_reference


class TestPayByInvoice:
    @pytest.fixture
    def overdue(self):
        """Six invoice payers whose first invoice is 14 days overdue: due for suspension."""
        invoices = []
        for _ in range(6):
            organization = OrganizationFactory(payment_terms="invoice", net_days=30)
            subscription = SubscriptionFactory(organization=organization, start=APRIL, now=APRIL)
            invoices.append(subscription.invoices.get())
        return invoices

    def suspends_at(self, invoice):
        return invoice.due_at + dt.timedelta(days=14)

    def test_two_clusters_running_the_job_send_each_notice_once(self, overdue):
        now = self.suspends_at(overdue[0])

        sent = in_threads(
            lambda _: reminders.invoice_reminders_if_needed(now=now), range(4), workers=4
        )

        assert sum(sent) == 6
        assert InvoiceReminder.objects.filter(kind="suspension").count() == 6
        assert set(
            Subscription.objects.filter(invoices__in=overdue).values_list("status", flat=True)
        ) == {"suspended"}

    def test_a_transfer_recorded_while_the_job_suspends_leaves_the_invoice_paid_and_active(
        self, overdue
    ):
        now = self.suspends_at(overdue[0])

        results = in_threads(
            lambda work: work(),
            [
                lambda: reminders.invoice_reminders_if_needed(now=now),
                *(
                    lambda invoice=invoice: services.invoice_record_bank_transfer(
                        invoice=invoice, reference=f"SEPA-{invoice.pk}", received_at=now, now=now
                    )
                    for invoice in overdue
                ),
            ],
            workers=7,
        )

        assert not [result for result in results if isinstance(result, Exception)]
        assert set(
            Invoice.objects.filter(pk__in=[i.pk for i in overdue]).values_list("status", flat=True)
        ) == {"paid"}
        # Whichever came first, the transfer reinstates or the job finds the invoice paid
        assert set(
            Subscription.objects.filter(invoices__in=overdue).values_list("status", flat=True)
        ) == {"active"}
