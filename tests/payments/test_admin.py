"""Support staff's payments admin: read-only lists that stay fast, masked tokens, and the
retry, bank transfer and refund actions behind their confirmation pages."""

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import CreditNote
from payments import reminders, services
from payments.models import Collection, PaymentAttempt, PaymentMethod, Refund
from tests.factories import OrganizationFactory, SubscriptionFactory, UserFactory, card, sign_in
from tests.helpers import messages_of, usd

pytestmark = pytest.mark.django_db

APRIL = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)


@pytest.fixture
def subscription():
    return SubscriptionFactory(start=APRIL, now=APRIL)


@pytest.fixture
def invoice(subscription):
    """The first invoice, $199.00, open: its charge has not run yet."""
    return subscription.invoices.get()


@pytest.fixture
def paid(subscription, invoice):
    """The invoice charged to a Visa card."""
    card(subscription.organization)
    return services.invoice_collect(invoice=invoice, now=APRIL)


@pytest.fixture
def many_rows():
    """Attempts (declined, then paid by a backup), methods and collections across several
    organizations, and a bank transfer."""
    for n in range(6):
        subscription = SubscriptionFactory(start=APRIL, now=APRIL)
        card(subscription.organization, "4000000000000341")
        card(subscription.organization, "4242424242424242" if n % 2 else "5555555555554444")
        services.invoice_collect(invoice=subscription.invoices.get(), now=APRIL)
    services.invoice_record_bank_transfer(
        invoice=SubscriptionFactory(start=APRIL, now=APRIL).invoices.get(),
        reference="SEPA-1",
        received_at=APRIL,
    )


# --- lists and pages ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["paymentattempt", "paymentmethod", "collection"])
def test_changelists_run_a_constant_number_of_queries(
    staff_client, many_rows, model, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = staff_client.get(reverse(f"admin:payments_{model}_changelist"))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 7


@pytest.mark.parametrize("model", ["paymentattempt", "collection"])
def test_lists_that_grow_with_invoices_never_count_them_all(staff_client, many_rows, model):
    with CaptureQueriesContext(connection) as captured:
        staff_client.get(reverse(f"admin:payments_{model}_changelist"))

    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts
    assert all(re.search(r"\bLIMIT\b", sql, re.IGNORECASE) for sql in counts), counts


def test_attempt_list_shows_method_amount_status_failure_and_confirmation(staff_client, many_rows):
    response = staff_client.get(reverse("admin:payments_paymentattempt_changelist"))

    page = response.content.decode()
    declined = PaymentAttempt.objects.filter(status="failed").first()
    succeeded = PaymentAttempt.objects.filter(status="succeeded", channel="automatic").first()
    assert "Visa •••• 0341" in page
    assert "The card was declined by its bank." in page
    assert succeeded.processor_reference in page
    assert "Bank transfer" in page and "SEPA-1" in page
    assert declined.invoice.organization.name in page
    assert "$199.00" in page


@pytest.mark.parametrize(
    ("query", "found"),
    [({"status__exact": "failed"}, 6), ({"channel__exact": "bank_transfer"}, 1)],
)
def test_attempts_filter_by_status_and_channel(staff_client, many_rows, query, found):
    response = staff_client.get(reverse("admin:payments_paymentattempt_changelist"), query)

    assert len(response.context["cl"].result_list) == found


def test_attempts_are_found_by_invoice_or_confirmation_number(staff_client, paid):
    url = reverse("admin:payments_paymentattempt_changelist")

    by_invoice = staff_client.get(url, {"q": paid.invoice.number.lower()})
    by_confirmation = staff_client.get(url, {"q": paid.processor_reference})

    assert list(by_invoice.context["cl"].result_list) == [paid]
    assert list(by_confirmation.context["cl"].result_list) == [paid]


@pytest.mark.parametrize("model", ["paymentattempt", "paymentmethod", "collection"])
def test_payments_are_read_only(staff_client, paid, model):
    row = {"paymentattempt": paid, "paymentmethod": paid.payment_method}.get(
        model, Collection.objects.first()
    )
    change = reverse(f"admin:payments_{model}_change", args=[row.pk])

    response = staff_client.get(change)

    assert response.status_code == 200
    assert response.context["adminform"].form.fields == {}
    assert 'name="_save"' not in response.content.decode()
    assert staff_client.post(change, {}).status_code == 403
    assert staff_client.get(reverse(f"admin:payments_{model}_add")).status_code == 403
    assert (
        staff_client.get(reverse(f"admin:payments_{model}_delete", args=[row.pk])).status_code
        == 403
    )


def test_a_payment_method_shows_brand_last4_and_a_masked_token_never_the_token(staff_client, paid):
    method = paid.payment_method

    pages = [
        staff_client.get(reverse("admin:payments_paymentmethod_changelist")),
        staff_client.get(reverse("admin:payments_paymentmethod_change", args=[method.pk])),
    ]

    for response in pages:
        page = response.content.decode()
        assert "Visa •••• 4242" in page
        assert "Sandbox" in page
        assert f"pm_…{method.token[-4:]}" in page
        assert method.token not in page


def test_a_collection_shows_its_state_failures_next_retry_and_attempts(staff_client, invoice):
    card(invoice.organization, "4000000000000341")
    services.invoice_collect(invoice=invoice, now=APRIL)
    collection = Collection.objects.get(invoice=invoice)

    response = staff_client.get(reverse("admin:payments_collection_change", args=[collection.pk]))

    page = response.content.decode()
    assert "Retrying" in page
    assert "April 2, 2026, 9 a.m." in page  # next retry, a day later
    assert "<td>Visa •••• 0341</td><td>Failed</td><td>The card was declined by its bank.</td>" in (
        page
    )
    assert reverse("admin:payments_invoice_retry", args=[invoice.pk]) in page
    assert reverse("admin:payments_invoice_bank_transfer", args=[invoice.pk]) in page


def test_the_invoice_page_links_to_retry_and_bank_transfer_while_open(staff_client, invoice):
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])

    page = staff_client.get(url).content.decode()

    assert reverse("admin:payments_invoice_retry", args=[invoice.pk]) in page
    assert reverse("admin:payments_invoice_bank_transfer", args=[invoice.pk]) in page


# --- retry now ----------------------------------------------------------------------------


class TestRetryNow:
    def test_the_confirmation_page_lists_the_methods_in_the_order_tried(
        self, staff_client, invoice
    ):
        card(invoice.organization, "4000000000000341")
        card(invoice.organization, "5555555555554444")

        response = staff_client.get(reverse("admin:payments_invoice_retry", args=[invoice.pk]))

        page = response.content.decode()
        assert page.index("Visa •••• 0341 (default)") < page.index("Mastercard •••• 4444")
        assert 'value="Charge $199.00 now"' in page
        assert invoice.payment_attempts.count() == 0  # nothing happens before confirming

    def test_confirming_collects_the_invoice_and_says_so(
        self, staff_client, invoice, mailoutbox, django_capture_on_commit_callbacks
    ):
        card(invoice.organization)

        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(reverse("admin:payments_invoice_retry", args=[invoice.pk]))

        attempt = invoice.payment_attempts.get()
        assert response.url == reverse("admin:billing_invoice_change", args=[invoice.pk])
        assert messages_of(response) == [
            f"Collected $199.00 for {invoice.number} from Visa •••• 4242: confirmation number "
            f"{attempt.processor_reference}."
        ]
        invoice.refresh_from_db()
        assert invoice.status == "paid"
        assert mailoutbox[-1].subject.startswith("Receipt")

    def test_a_decline_is_reported_and_does_not_advance_the_schedule(self, staff_client, invoice):
        card(invoice.organization, "4000000000000341")
        services.invoice_collect(invoice=invoice, now=APRIL)

        response = staff_client.post(reverse("admin:payments_invoice_retry", args=[invoice.pk]))

        assert messages_of(response) == [
            f"{invoice.number} is still unpaid. Visa •••• 0341: The card was declined by its "
            "bank. The retry schedule is unchanged."
        ]
        collection = Collection.objects.get(invoice=invoice)
        assert (collection.failures, collection.next_retry_at) == (1, APRIL + dt.timedelta(days=1))

    def test_a_paid_invoice_has_nothing_to_collect(self, staff_client, paid):
        url = reverse("admin:payments_invoice_retry", args=[paid.invoice.pk])

        page = staff_client.get(url).content.decode()
        response = staff_client.post(url)

        assert "is paid: there is nothing to collect" in page
        assert '<input type="submit"' not in page
        assert messages_of(response) == [
            f"{paid.invoice.number} is paid: there is nothing to collect."
        ]
        assert PaymentAttempt.objects.count() == 1


# --- bank transfers -----------------------------------------------------------------------


class TestRecordBankTransfer:
    @pytest.fixture(autouse=True)
    def may_16(self):
        with time_machine.travel(dt.datetime(2026, 5, 16, 10, tzinfo=dt.UTC), tick=False):
            yield

    @pytest.fixture
    def suspended(self):
        """An invoice payer's first invoice, 14 days overdue: suspended."""
        organization = OrganizationFactory(name="Globex", payment_terms="invoice", net_days=30)
        subscription = SubscriptionFactory(organization=organization, start=APRIL, now=APRIL)
        invoice = subscription.invoices.get()
        reminders.invoice_reminders_if_needed(now=invoice.due_at + dt.timedelta(days=14))
        subscription.refresh_from_db()
        assert subscription.status == "suspended"
        return invoice

    def test_the_collection_page_lists_the_reminders_sent(self, staff_client, suspended):
        collection = Collection.objects.get(invoice=suspended)

        page = staff_client.get(
            reverse("admin:payments_collection_change", args=[collection.pk])
        ).content.decode()

        assert "suspension on 2026-05-15" in page

    def test_the_page_asks_for_the_reference_and_the_day_it_arrived(self, staff_client, suspended):
        response = staff_client.get(
            reverse("admin:payments_invoice_bank_transfer", args=[suspended.pk])
        )

        page = response.content.decode()
        assert 'name="reference"' in page and 'name="received_on"' in page
        assert "Due</th><td>1 May 2026" in page
        assert "reinstated at once" in page

    def test_recording_it_pays_the_invoice_and_reinstates_the_subscription(
        self, staff_client, staff, suspended
    ):
        response = staff_client.post(
            reverse("admin:payments_invoice_bank_transfer", args=[suspended.pk]),
            {"reference": "SEPA-2026-0412", "received_on": "2026-05-16"},
        )

        assert response.url == reverse("admin:billing_invoice_change", args=[suspended.pk])
        assert messages_of(response) == [
            f"{suspended.number} is paid by bank transfer SEPA-2026-0412. Globex's subscription "
            "is active."
        ]
        suspended.refresh_from_db()
        assert (suspended.status, suspended.payment_reference) == ("paid", "SEPA-2026-0412")
        assert suspended.paid_at == dt.datetime(2026, 5, 16, tzinfo=dt.UTC)
        assert suspended.subscription.status == "active"
        assert suspended.payment_attempts.get().recorded_by == staff

    def test_a_transfer_cannot_arrive_in_the_future(self, staff_client, suspended):
        response = staff_client.post(
            reverse("admin:payments_invoice_bank_transfer", args=[suspended.pk]),
            {"reference": "SEPA-1", "received_on": "2026-05-17"},
        )

        assert response.status_code == 200
        assert response.context["form"].errors == {
            "received_on": ["A transfer cannot have arrived in the future."]
        }
        assert not PaymentAttempt.objects.exists()

    def test_the_services_refusal_becomes_a_message(self, staff_client, paid):
        response = staff_client.post(
            reverse("admin:payments_invoice_bank_transfer", args=[paid.invoice.pk]),
            {"reference": "SEPA-1", "received_on": "2026-04-01"},
        )

        assert response.status_code == 200
        assert messages_of(response) == [f"{paid.invoice.number} is paid."]
        assert PaymentAttempt.objects.count() == 1


# --- refunds ------------------------------------------------------------------------------


class TestRefund:
    def test_the_attempt_page_links_to_the_refund_of_a_successful_charge(self, staff_client, paid):
        page = staff_client.get(
            reverse("admin:payments_paymentattempt_change", args=[paid.pk])
        ).content.decode()

        assert reverse("admin:payments_paymentattempt_refund", args=[paid.pk]) in page

    def test_the_confirmation_page_offers_what_is_left_to_refund(self, staff_client, paid):
        services.payment_refund(attempt=paid, amount=usd("49.00"), reason="Outage")

        response = staff_client.get(reverse("admin:payments_paymentattempt_refund", args=[paid.pk]))

        assert response.context["form"]["amount"].value() == usd("150.00").amount
        page = response.content.decode()
        assert "Refunded so far</th><td>$49.00" in page
        assert "At most $150.00" in page

    def test_refunding_goes_through_the_processor_with_a_credit_note(
        self, staff_client, staff, paid
    ):
        response = staff_client.post(
            reverse("admin:payments_paymentattempt_refund", args=[paid.pk]),
            {"amount": "50.00", "reason": "Two days of outage"},
        )

        refund = Refund.objects.get()
        assert refund.amount == usd("50.00")
        assert refund.created_by == staff
        assert refund.credit_note.reason == "Two days of outage"
        assert response.url == reverse("admin:payments_paymentattempt_change", args=[paid.pk])
        assert messages_of(response) == [
            f"Refunded $50.00 to Visa •••• 4242. Credit note {refund.credit_note.number} "
            f"documents it on {paid.invoice.number}; the processor's reference is "
            f"{refund.processor_reference}."
        ]
        assert refund.credit_note.number == "CN-2026-000001"
        attempt_page = staff_client.get(response.url).content.decode()
        assert f"$50.00 on {refund.created_at:%Y-%m-%d}: credit note CN-2026-000001" in attempt_page

    def test_what_is_left_can_be_refunded_to_the_cent(self, staff_client, paid):
        for amount in ("0.10", "0.20"):
            services.payment_refund(attempt=paid, amount=usd(amount), reason="Goodwill")

        response = staff_client.post(
            reverse("admin:payments_paymentattempt_refund", args=[paid.pk]),
            {"amount": "198.70", "reason": "The rest"},
        )

        assert response.status_code == 302
        assert paid.refunds.count() == 3

    def test_no_more_than_was_paid(self, staff_client, paid):
        response = staff_client.post(
            reverse("admin:payments_paymentattempt_refund", args=[paid.pk]),
            {"amount": "199.01", "reason": "Everything"},
        )

        assert response.status_code == 200
        assert response.context["form"].errors == {
            "amount": ["At most $199.00 can be refunded on this charge."]
        }
        assert not Refund.objects.exists()
        assert not CreditNote.objects.exists()

    def test_a_bank_transfer_is_not_refunded_through_the_processor(self, staff_client, invoice):
        attempt = services.invoice_record_bank_transfer(
            invoice=invoice, reference="SEPA-1", received_at=APRIL
        )
        url = reverse("admin:payments_paymentattempt_refund", args=[attempt.pk])

        page = staff_client.get(url).content.decode()
        response = staff_client.post(url, {"amount": "10.00", "reason": "Outage"})

        assert "paid back by bank" in page and '<input type="submit"' not in page
        assert messages_of(response) == ["Only a successful card or bank charge can be refunded."]
        assert not Refund.objects.exists()


# --- who may act --------------------------------------------------------------------------


def test_staff_who_may_only_look_cannot_act(client, paid):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(content_type__app_label="payments", codename__startswith="view_")
    )
    sign_in(client, viewer)
    invoice = paid.invoice

    assert client.get(reverse("admin:payments_paymentattempt_changelist")).status_code == 200
    for url in (
        reverse("admin:payments_invoice_retry", args=[invoice.pk]),
        reverse("admin:payments_invoice_bank_transfer", args=[invoice.pk]),
        reverse("admin:payments_paymentattempt_refund", args=[paid.pk]),
    ):
        assert client.get(url).status_code == 403
        assert client.post(url, {"amount": "1.00", "reason": "x"}).status_code == 403
    assert not Refund.objects.exists()


def test_people_who_are_not_staff_are_sent_to_sign_in(client, paid):
    response = client.get(reverse("admin:payments_invoice_retry", args=[paid.invoice.pk]))

    assert response.status_code == 302
    assert reverse("admin:login") in response.url
    assert PaymentMethod.objects.count() == 1
