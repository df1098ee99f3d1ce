import datetime as dt

import pytest
from django.db import IntegrityError
from django_q.conf import Conf
from djmoney.money import Money

from billing.errors import BillingError
from billing.invoicing import selectors as invoicing_selectors
from billing.lifecycle import renewals
from billing.models import Invoice
from payments import services
from payments.gateways import ChargeResult, MethodRefused
from payments.gateways.sandbox import SandboxGateway
from payments.models import Collection, PaymentAttempt
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    card,
)
from usage import selectors as usage_selectors
from usage import services as usage_services

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)


def days(n):
    return APRIL + dt.timedelta(days=n)


def collect(invoice, now, **kwargs):
    return services.invoice_collect(invoice=invoice, now=now, **kwargs)


@pytest.fixture
def subscription():
    return SubscriptionFactory(
        organization=OrganizationFactory(), plan=PlanFactory(), start=APRIL, now=APRIL
    )


@pytest.fixture
def invoice(subscription):
    return subscription.invoices.get()


def status(subscription):
    subscription.refresh_from_db()
    return subscription.status


class TestSandboxCards:
    @pytest.mark.parametrize(
        ("number", "code"),
        [
            ("4000000000000002", "card_declined"),
            ("4000000000009995", "insufficient_funds"),
            ("4000000000000069", "expired_card"),
            ("4100000000000019", "fraudulent"),
            ("4000000000000119", "processing_error"),
            ("4111111111111111", "card_declined"),  # a real-looking number is not a test card
        ],
    )
    def test_stripes_test_cards_are_refused_when_attached(self, number, code):
        with pytest.raises(MethodRefused) as refused:
            SandboxGateway.attach_card(number=number)

        assert refused.value.code == code

    def test_4242_attaches_and_is_charged(self, subscription, invoice):
        card(subscription.organization)

        attempt = collect(invoice, APRIL)

        assert attempt.status == "succeeded"
        invoice.refresh_from_db()
        assert (invoice.status, invoice.payment_method_description) == ("paid", "Visa •••• 4242")
        assert invoice.payment_reference == attempt.processor_reference.strip()

    def test_0341_attaches_but_every_charge_fails(self, subscription, invoice):
        card(subscription.organization, "4000000000000341")

        assert collect(invoice, APRIL) is None
        assert invoice.payment_attempts.get().failure_code == "card_declined"


class TestFallback:
    def test_the_default_first_then_backups_in_priority_order(self, subscription, invoice):
        organization = subscription.organization
        failing_default = card(organization, "4000000000000341")
        second_backup = card(organization, "4000000000000341", expiry=(6, 2031))
        first_backup = card(organization, "5555555555554444")
        services.payment_method_reorder(
            organization=organization,
            method_ids=[failing_default.pk, first_backup.pk, second_backup.pk],
        )

        attempt = collect(invoice, APRIL)

        tried = list(
            invoice.payment_attempts.order_by("pk").values_list("payment_method_id", "status")
        )
        assert tried == [(failing_default.pk, "failed"), (first_backup.pk, "succeeded")]
        assert attempt.payment_method == first_backup


class TestDunningTimeline:
    def test_decline_retries_past_due_suspension_new_card_pay_now_active(
        self, subscription, invoice, mailoutbox, django_capture_on_commit_callbacks
    ):
        organization = subscription.organization
        employee = EmployeeFactory(organization=organization)
        card(organization, "4000000000000341")

        # Day 0: the first charge is declined → past due, retry on day 1, customer told why
        with django_capture_on_commit_callbacks(execute=True):
            collect(invoice, APRIL)
        collection = Collection.objects.get(invoice=invoice)
        assert status(subscription) == "past_due"
        assert collection.next_retry_at == days(1)
        failure_mail = mailoutbox[-1]
        assert "The card was declined" in failure_mail.body and "2 Apr 2026" in failure_mail.body
        assert usage_selectors.call_authorize(
            organization_slug=organization.slug, employee_id=employee.pk, now=APRIL
        ).allowed

        # Retries on days 1, 3, 5 and 7; nothing happens between them
        for day, next_day in ((1, 3), (3, 5), (5, 7)):
            assert services.payment_retries_if_needed(now=days(day) - dt.timedelta(minutes=1)) == 0
            services.payment_retries_if_needed(now=days(day))
            collection.refresh_from_db()
            assert collection.next_retry_at == days(next_day)
            assert status(subscription) == "past_due"
        services.payment_retries_if_needed(now=days(7))

        # After the last failure: suspended; calls refused, no new AI employees
        collection.refresh_from_db()
        assert (collection.state, collection.failures, collection.next_retry_at) == (
            "exhausted",
            5,
            None,
        )
        assert status(subscription) == "suspended"
        assert (
            usage_selectors.call_authorize(
                organization_slug=organization.slug, employee_id=employee.pk, now=days(8)
            ).reason
            == "subscription_suspended"
        )
        with pytest.raises(BillingError):
            usage_services.employee_create(organization=organization, name="New", now=days(8))
        assert invoice.payment_attempts.count() == 5

        # A new card, made the default, and "pay now": paid and active again at once
        card(organization, "4242424242424242", make_default=True, now=days(9))
        with django_capture_on_commit_callbacks(execute=True):
            attempt = collect(invoice, days(9), on_request=True)
        assert attempt.status == "succeeded"
        assert status(subscription) == "active"
        invoice.refresh_from_db()
        assert invoice.status == "paid"
        assert (
            "Receipt" in mailoutbox[-1].subject
            and attempt.processor_reference in mailoutbox[-1].body
        )
        assert usage_selectors.call_authorize(
            organization_slug=organization.slug, employee_id=employee.pk, now=days(9)
        ).allowed

    def test_a_failed_pay_now_does_not_advance_the_schedule(self, subscription, invoice):
        card(subscription.organization, "4000000000000341")
        collect(invoice, APRIL)

        collect(invoice, days(0.5), on_request=True)

        assert Collection.objects.get(invoice=invoice).next_retry_at == days(1)

    def test_the_retry_schedule_is_a_setting(self, subscription, invoice, settings):
        settings.PAYMENT_RETRY_DAYS = [2]
        card(subscription.organization, "4000000000000341")

        collect(invoice, APRIL)
        services.payment_retries_if_needed(now=days(2))

        assert status(subscription) == "suspended"


class TestExactlyOneSuccessfulCharge:
    def test_running_collection_again_never_charges_twice(self, subscription, invoice):
        card(subscription.organization)

        first = collect(invoice, APRIL)
        again = collect(invoice, APRIL)

        assert first == again
        assert invoice.payment_attempts.filter(status="succeeded").count() == 1

    def test_a_crash_after_the_charge_is_recovered_with_the_same_idempotency_key(
        self, subscription, invoice, monkeypatch
    ):
        card(subscription.organization)
        charged_keys = []
        real_charge = SandboxGateway.charge

        def charge_then_crash(self, **kwargs):
            charged_keys.append(kwargs["idempotency_key"])
            real_charge(self, **kwargs)
            raise ConnectionError("worker died after the processor answered")

        with monkeypatch.context() as patch:
            patch.setattr(SandboxGateway, "charge", charge_then_crash)
            with pytest.raises(ConnectionError):
                collect(invoice, APRIL)
        assert PaymentAttempt.objects.count() == 0  # rolled back with the crash

        def remember(self, **kwargs):
            charged_keys.append(kwargs["idempotency_key"])
            return real_charge(self, **kwargs)

        monkeypatch.setattr(SandboxGateway, "charge", remember)
        attempt = collect(invoice, APRIL)

        assert charged_keys[0] == charged_keys[1]  # the processor sees one charge, asked twice
        assert attempt.status == "succeeded"

    def test_the_database_refuses_a_second_successful_payment(self, subscription, invoice):
        card(subscription.organization)
        attempt = collect(invoice, APRIL)
        twin = PaymentAttempt(
            invoice=invoice,
            amount=attempt.amount,
            status="succeeded",
            idempotency_key="other",
            attempted_at=APRIL,
        )

        with pytest.raises(IntegrityError):
            twin.save()


class TestPaymentMethods:
    def test_the_first_method_is_the_default_and_the_others_are_backups(self, subscription):
        first = card(subscription.organization)
        second = card(subscription.organization, "5555555555554444")

        assert (first.is_default, second.is_default) == (True, False)
        assert (first.label, second.label) == ("Visa •••• 4242", "Mastercard •••• 4444")

    def test_the_last_method_cannot_be_removed_while_a_subscription_needs_payment(
        self, subscription
    ):
        only = card(subscription.organization)

        with pytest.raises(BillingError) as refused:
            services.payment_method_remove(payment_method=only)

        assert refused.value.code == "last_method"

    def test_the_default_cannot_be_removed_until_another_is_chosen(self, subscription):
        default = card(subscription.organization)
        backup = card(subscription.organization, "5555555555554444")

        with pytest.raises(BillingError) as refused:
            services.payment_method_remove(payment_method=default)
        services.payment_method_set_default(payment_method=backup)
        services.payment_method_remove(payment_method=default)

        assert refused.value.code == "default_method"
        default.refresh_from_db()
        assert default.removed_at is not None

    def test_expiry_and_billing_address_are_updated_in_place(self, subscription):
        method = card(subscription.organization)

        services.payment_method_update(
            payment_method=method,
            exp_month=9,
            exp_year=2031,
            billing_name="Acme Dental",
            billing_address="1 Main St",
            billing_postal_code="10001",
            billing_country="US",
        )

        method.refresh_from_db()
        assert (method.expiry, method.billing_address, method.last4) == (
            "09/2031",
            "1 Main St",
            "4242",
        )


class TestBankTransfersAndRefunds:
    def test_staff_record_a_bank_transfer_for_an_invoice_payer(self, subscription, invoice):
        attempt = services.invoice_record_bank_transfer(
            invoice=invoice, reference="SEPA-2026-0412", received_at=days(5), now=days(5)
        )

        invoice.refresh_from_db()
        assert (invoice.status, invoice.payment_reference, invoice.payment_method_description) == (
            "paid",
            "SEPA-2026-0412",
            "Bank transfer",
        )
        assert attempt.channel == "bank_transfer"

    def test_a_refund_goes_through_the_gateway_and_is_documented_by_a_credit_note(
        self, subscription, invoice
    ):
        card(subscription.organization)
        attempt = collect(invoice, APRIL)

        refund = services.payment_refund(
            attempt=attempt, amount=Money("50.00", "USD"), reason="Outage", now=days(3)
        )

        assert refund.processor_reference.startswith("re_sandbox_")
        assert refund.credit_note.amount == Money("50.00", "USD")
        assert invoicing_selectors.organization_balance(
            organization=subscription.organization
        ) == Money(0, "USD")
        assert Invoice.objects.get(pk=invoice.pk).total == Money("199.00", "USD")


def test_renewal_invoices_are_collected_automatically(
    subscription, django_capture_on_commit_callbacks, monkeypatch, settings, tmp_path
):
    # Given a card on file, and queued tasks run at once (as a cluster would run them)
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(Conf, "SYNC", True)
    card(subscription.organization)

    # When the period renews
    with django_capture_on_commit_callbacks(execute=True):
        [renewal] = renewals.subscription_renew_if_needed(
            subscription_id=subscription.pk, now=days(31)
        )

    # Then its invoice is charged to the default method
    renewal.refresh_from_db()
    assert renewal.status == "paid"
    assert renewal.payment_method_description == "Visa •••• 4242"


def test_methods_of_another_processor_are_never_charged(subscription, invoice, settings):
    # Given a sandbox card left over after switching to Stripe
    card(subscription.organization)
    settings.PAYMENT_GATEWAY = "stripe"

    # When the invoice is collected, it is not "paid" with no money
    assert collect(invoice, APRIL) is None
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert (
        Collection.objects.get(invoice=invoice).last_failure_message == "No payment method on file."
    )


def test_without_retries_the_first_failure_suspends(subscription, invoice, settings):
    settings.PAYMENT_RETRY_DAYS = []
    card(subscription.organization, "4000000000000341")

    collect(invoice, APRIL)

    assert status(subscription) == "suspended"


def test_a_debit_still_processing_is_not_retried_on_a_backup(subscription, invoice, monkeypatch):
    # Given a bank debit that the processor reports as processing (it settles days later)
    card(subscription.organization)
    backup = card(subscription.organization, "5555555555554444")
    monkeypatch.setattr(
        SandboxGateway,
        "charge",
        lambda self, **kwargs: ChargeResult(False, "pi_processing", failure_code="processing"),
    )

    # When the invoice is collected
    assert collect(invoice, APRIL) is None

    # Then the attempt waits for the webhook: no backup charged, the schedule untouched
    attempt = invoice.payment_attempts.get()
    assert (attempt.status, attempt.payment_method.is_default) == ("pending", True)
    assert not invoice.payment_attempts.filter(payment_method=backup).exists()
    assert Collection.objects.get(invoice=invoice).failures == 0
    assert status(subscription) == "active"


class TestReinstatementWithSeveralUnpaidInvoices:
    """Service follows what is still unpaid: a payment restores it at once, unless another
    invoice still suspends it; while another is only being retried, service is back on and
    the subscription stays past due."""

    @pytest.fixture
    def two_unpaid(self, subscription, invoice, settings):
        # April is declined on 1 Apr and retried on 11 May; May, issued on 1 May, is declined
        # too. April's retry fails on 11 May: suspended, with May still being retried.
        settings.PAYMENT_RETRY_DAYS = [40]
        card(subscription.organization, "4000000000000341")
        collect(invoice, APRIL)
        [may] = renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=days(30))
        collect(may, days(30))
        services.payment_retries_if_needed(now=days(40))
        assert status(subscription) == "suspended"
        card(subscription.organization, "4242424242424242", make_default=True, now=days(41))
        return invoice, may

    def test_paying_the_invoice_being_retried_leaves_service_suspended(
        self, subscription, two_unpaid
    ):
        april, may = two_unpaid

        collect(may, days(41), on_request=True)

        assert Invoice.objects.get(pk=may.pk).status == "paid"
        assert status(subscription) == "suspended"  # April, unpaid after every retry, remains
        assert Invoice.objects.get(pk=april.pk).status == "open"

    def test_paying_the_invoice_that_suspended_restores_service_at_once(
        self, subscription, two_unpaid
    ):
        april, may = two_unpaid
        employee = EmployeeFactory(organization=subscription.organization)

        collect(april, days(41), on_request=True)

        # Service is back while May's retries go on: past due, calls allowed
        assert status(subscription) == "past_due"
        assert usage_selectors.call_authorize(
            organization_slug=subscription.organization.slug,
            employee_id=employee.pk,
            now=days(41),
        ).allowed
        # and paying May too puts the subscription in good standing
        collect(may, days(41), on_request=True)
        assert status(subscription) == "active"
