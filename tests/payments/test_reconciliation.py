"""The daily reconciliation with Stripe: dj-stripe's sync of the window, as recorded (see
conftest.py), compared with our payments, refunds and payment methods; every mismatch
listed in the admin."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from djmoney.money import Money
from djstripe.models import PaymentIntent as StripePaymentIntent

from payments import services
from payments.gateways import AttachedMethod
from payments.models import StripeMismatch, StripeReconciliation
from payments.reconciliation import stripe_reconciliation_if_needed
from tests.factories import SubscriptionFactory
from tests.payments.conftest import BANK_ACCOUNT_IN_BROWSER, load_fixture, replay_only

pytestmark = pytest.mark.django_db

NEXT_MORNING = dt.timedelta(hours=20)  # 06:00 UTC the day after the charge


def add_method(organization, token, *, kind="card", last4="4242", exp_year=2028):
    expiry = {"exp_month": 8, "exp_year": exp_year} if kind == "card" else {}
    return services.payment_method_add(
        organization=organization,
        processor="stripe",
        attached=AttachedMethod(token=token, kind=kind, brand="Visa", last4=last4, **expiry),
    )


def stripe_lists(stripe_api, *, payment_intents: str, refunds: str) -> None:
    """What dj-stripe's sync asks Stripe for: the window's PaymentIntents, then its refunds."""
    stripe_api.expect("GET", r"/v1/payment_intents\?.*", payment_intents)
    stripe_api.expect("GET", r"/v1/refunds\?.*", refunds)


def reconcile_at(moment):
    with time_machine.travel(moment, tick=False):
        return stripe_reconciliation_if_needed(now=moment)


def open_mismatches():
    return list(
        StripeMismatch.objects.filter(resolved_on__isnull=True).values_list(
            "object_type", "kind", "stripe_id", "ours", "theirs"
        )
    )


@pytest.fixture
def card_paid(stripe_api, now):
    """An invoice of $199.00 paid by card through Stripe."""
    subscription = SubscriptionFactory(start=now, now=now)
    add_method(subscription.organization, load_fixture("payment_method_card")["id"])
    stripe_api.expect("POST", "/v1/customers", "customer")
    stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_succeeded")
    return services.invoice_collect(invoice=subscription.invoices.get())


@replay_only(BANK_ACCOUNT_IN_BROWSER)
def test_a_webhook_lost_for_days_is_found_the_next_morning(stripe_api, now, staff_client):
    # Given a bank debit still processing here: Stripe's success webhook never arrived
    subscription = SubscriptionFactory(start=now, now=now)
    bank_account = load_fixture("payment_method_us_bank_account")
    add_method(subscription.organization, bank_account["id"], kind="bank_account", last4="6789")
    stripe_api.expect("POST", "/v1/customers", "customer")
    intent = stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_processing")
    services.invoice_collect(invoice=subscription.invoices.get())

    # When the reconciliation runs the next morning, and Stripe has settled it
    stripe_lists(
        stripe_api,
        payment_intents="payment_intent_list_bank_debit_settled",
        refunds="refund_list_empty",
    )
    reconciliation = reconcile_at(now + NEXT_MORNING)

    # Then the mirror has Stripe's payment, and the difference is listed for staff
    assert StripePaymentIntent.objects.get(id=intent["id"]).stripe_data["status"] == "succeeded"
    assert open_mismatches() == [("payment", "status", intent["id"], "processing", "succeeded")]
    assert (reconciliation.payments_compared, reconciliation.mismatches_found) == (1, 1)
    page = staff_client.get(reverse("admin:payments_stripemismatch_changelist"))
    assert page.status_code == 200
    assert intent["id"] in page.content.decode()
    assert "Statuses differ" in page.content.decode()


def test_payments_and_refunds_that_agree_list_nothing(stripe_api, card_paid, now):
    stripe_api.expect("POST", "/v1/refunds", "refund")
    services.payment_refund(attempt=card_paid, amount=Money(Decimal("50.00"), "USD"), reason="x")
    stripe_lists(stripe_api, payment_intents="payment_intent_list_card", refunds="refund_list")

    reconciliation = reconcile_at(now + NEXT_MORNING)

    assert open_mismatches() == []
    assert (reconciliation.payments_compared, reconciliation.refunds_compared) == (1, 1)


def test_a_refund_made_only_in_stripes_dashboard_is_missing_here(stripe_api, card_paid, now):
    stripe_lists(stripe_api, payment_intents="payment_intent_list_card", refunds="refund_list")

    reconcile_at(now + NEXT_MORNING)

    refund = load_fixture("refund")
    assert open_mismatches() == [
        ("refund", "missing_here", refund["id"], "", "succeeded, 5000 usd")
    ]


def test_amounts_that_differ_are_listed_with_both_sides(stripe_api, card_paid, now):
    stripe_lists(
        stripe_api,
        payment_intents="payment_intent_list_card_partly_captured",
        refunds="refund_list_empty",
    )

    reconcile_at(now + NEXT_MORNING)

    assert open_mismatches() == [
        ("payment", "amount", card_paid.processor_reference, "19900 usd", "9900 usd")
    ]


def test_a_payment_stripe_does_not_have_is_missing_at_stripe(stripe_api, card_paid, now):
    stripe_lists(
        stripe_api, payment_intents="payment_intent_list_empty", refunds="refund_list_empty"
    )

    reconcile_at(now + NEXT_MORNING)

    assert open_mismatches() == [
        ("payment", "missing_at_stripe", card_paid.processor_reference, "succeeded", "")
    ]


def test_once_a_day_and_a_mismatch_closes_when_both_sides_agree(stripe_api, card_paid, now):
    # Given a mismatch found this morning
    stripe_lists(
        stripe_api, payment_intents="payment_intent_list_empty", refunds="refund_list_empty"
    )
    reconcile_at(now + NEXT_MORNING)

    # When the job runs again the same day (nothing asked of Stripe), then the next day
    again = reconcile_at(now + NEXT_MORNING + dt.timedelta(hours=6))
    stripe_lists(
        stripe_api, payment_intents="payment_intent_list_card", refunds="refund_list_empty"
    )
    next_day = reconcile_at(now + NEXT_MORNING + dt.timedelta(days=1))

    # Then the second run of the day did nothing, and the mismatch is resolved, and kept
    assert again is None
    assert next_day.mismatches_found == 0
    assert open_mismatches() == []
    mismatch = StripeMismatch.objects.get()
    assert (mismatch.first_found_on, mismatch.resolved_on) == (
        dt.date(2026, 3, 17),
        dt.date(2026, 3, 18),
    )
    assert StripeReconciliation.objects.count() == 2


def test_a_card_the_network_updated_while_its_webhook_was_lost_is_found(
    stripe_api, now, staff_client
):
    # Given a card listed here with the expiry it had when added; Stripe has the new one
    card = load_fixture("payment_method_card")
    method = add_method(
        SubscriptionFactory(start=now, now=now).organization, card["id"], exp_year=2027
    )
    stripe_lists(
        stripe_api, payment_intents="payment_intent_list_empty", refunds="refund_list_empty"
    )

    reconcile_at(now + NEXT_MORNING)

    assert open_mismatches() == [
        ("method", "details", card["id"], "card •••• 4242, 08/2027", "card •••• 4242, 08/2028")
    ]
    page = staff_client.get(reverse("admin:payments_stripemismatch_changelist"))
    assert f"{method.organization}: Visa •••• 4242" in page.content.decode()


def test_a_method_stripe_no_longer_has_is_missing_at_stripe(stripe_api, now):
    method = add_method(
        SubscriptionFactory(start=now, now=now).organization, "pm_1QzVaZLkdIwHu7ixUnKn0wN1"
    )
    stripe_lists(
        stripe_api, payment_intents="payment_intent_list_empty", refunds="refund_list_empty"
    )
    stripe_api.expect(
        "GET", r"/v1/payment_methods/pm_\w+", "error_no_such_payment_method", status=404
    )

    reconcile_at(now + NEXT_MORNING)

    assert open_mismatches() == [
        ("method", "missing_at_stripe", method.token, "card •••• 4242, 08/2028", "")
    ]


def test_the_sandbox_gateway_has_nothing_to_reconcile(settings, now):
    settings.PAYMENT_GATEWAY = "sandbox"

    assert reconcile_at(now + NEXT_MORNING) is None
    assert not StripeReconciliation.objects.exists()
