"""Stripe's webhooks: signed events only, each applied once, none undoing a later state."""

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.db import connection
from django.test import Client
from djmoney.money import Money
from djstripe.models import Event as StripeEvent
from djstripe.models import PaymentIntent as StripePaymentIntent
from djstripe.models import WebhookEventTrigger

from payments import services, webhooks
from payments.gateways import AttachedMethod
from payments.models import PaymentAttempt, PaymentMethod, ProcessedStripeEvent
from tests.factories import SubscriptionFactory
from tests.payments.conftest import (
    BANK_ACCOUNT_IN_BROWSER,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    load_fixture,
    replay_only,
    webhook_endpoint_create,
)

pytestmark = pytest.mark.django_db

URL = WEBHOOK_URL


def signature(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header Stripe sends: HMAC-SHA256 of `<timestamp>.<payload>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def deliver(client, event: dict, **signing):
    payload = json.dumps(event)
    return client.post(
        URL,
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature(payload, **signing),
    )


def event_about(name: str, **stripe_object) -> dict:
    """An event fixture about the recorded object: its `data.object` fields overridden, so the
    events follow the API fixtures when those are re-recorded."""
    event = load_fixture(name)
    event["data"]["object"].update(stripe_object)
    return event


def bank_debit_event(name: str) -> dict:
    return event_about(name, id=load_fixture("payment_intent_processing")["id"])


def deliver_to(client, url: str):
    payload = json.dumps(load_fixture("event_payment_intent_succeeded"))
    return client.post(
        url, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature(payload)
    )


def deliver_at_once(events: list[dict]) -> list[int]:
    """Each event delivered by its own worker on its own connection, all at the same moment."""
    barrier = threading.Barrier(len(events))

    def deliver_one(event):
        try:
            barrier.wait(timeout=10)
            return deliver(Client(), event).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        return list(pool.map(deliver_one, events))


def rows_stored() -> int:
    return sum(model.objects.count() for model in apps.get_models())


def add_method(organization, token, *, kind="card", last4="4242"):
    expiry = {"exp_month": 8, "exp_year": 2028} if kind == "card" else {}
    return services.payment_method_add(
        organization=organization,
        processor="stripe",
        attached=AttachedMethod(token=token, kind=kind, brand="Visa", last4=last4, **expiry),
    )


@pytest.fixture
def bank_debit_processing(stripe_api, webhook_secret, now):
    """An invoice charged to a US bank account: Stripe answered "processing", so the
    PaymentIntent's webhook decides. Tests using it are `replay_only`: such an account is
    verified in the browser, so recording cannot make one."""
    subscription = SubscriptionFactory(start=now, now=now)
    bank_account = load_fixture("payment_method_us_bank_account")
    add_method(subscription.organization, bank_account["id"], kind="bank_account", last4="6789")
    stripe_api.expect("POST", "/v1/customers", "customer")
    stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_processing")
    invoice = subscription.invoices.get()
    services.invoice_collect(invoice=invoice)
    return invoice


def attempt_of(invoice) -> PaymentAttempt:
    return invoice.payment_attempts.get()


class TestSignature:
    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    @pytest.mark.parametrize(
        ("secret", "age"),
        [
            pytest.param("whsec_someone_elses", 0, id="wrong-secret"),
            pytest.param(WEBHOOK_SECRET, 301, id="signed-more-than-5-minutes-ago"),
        ],
    )
    def test_bad_signature_gets_400_and_stores_nothing(
        self, client, bank_debit_processing, secret, age
    ):
        before = rows_stored()

        response = deliver(
            client,
            bank_debit_event("event_payment_intent_succeeded"),
            secret=secret,
            timestamp=int(time.time()) - age,
        )

        assert response.status_code == 400
        assert rows_stored() == before
        assert attempt_of(bank_debit_processing).failure_code == "processing"

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_a_tampered_payload_gets_400(self, client, bank_debit_processing):
        event = bank_debit_event("event_payment_intent_succeeded")
        header = signature(json.dumps(event))
        event["data"]["object"]["amount"] = 1
        before = rows_stored()

        response = client.post(
            URL, json.dumps(event), content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )

        assert response.status_code == 400
        assert rows_stored() == before

    def test_unsigned_gets_400(self, client, webhook_secret):
        response = client.post(URL, "{}", content_type="application/json")

        assert response.status_code == 400
        assert not ProcessedStripeEvent.objects.exists()

    def test_without_a_configured_secret_nothing_verifies(self, client):
        webhook_endpoint_create(secret="")

        response = deliver(client, bank_debit_event("event_payment_intent_succeeded"), secret="")

        assert response.status_code == 400

    def test_only_post(self, client):
        assert client.get(URL).status_code == 405

    @pytest.mark.parametrize(
        "breaking",
        [
            pytest.param(lambda event: event.pop("data"), id="without-data"),
            pytest.param(lambda event: event["data"].pop("object"), id="without-its-object"),
            pytest.param(lambda event: event.update(data=None), id="data-null"),
            pytest.param(lambda event: event["data"]["object"].pop("id"), id="object-without-id"),
            pytest.param(lambda event: event.pop("type"), id="without-a-type"),
            pytest.param(lambda event: event.update(created="yesterday"), id="created-not-a-time"),
        ],
    )
    def test_a_signed_event_missing_what_every_event_has_gets_400_and_applies_nothing(
        self, client, webhook_secret, breaking, caplog
    ):
        event = event_about("event_payment_intent_succeeded", metadata={})
        breaking(event)
        before = rows_stored()

        with caplog.at_level(logging.WARNING, logger="payments.urls_webhooks"):
            response = deliver(client, event)

        assert response.status_code == 400
        assert rows_stored() == before
        assert "Not a Stripe event" in caplog.text


def dj_stripe_rows() -> int:
    return sum(model.objects.count() for model in apps.get_app_config("djstripe").get_models())


class TestVerifiedBeforeDjStripe:
    """dj-stripe's own view would store a trigger row for these; ours stores nothing."""

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="unsigned"),
            pytest.param({"HTTP_STRIPE_SIGNATURE": "t=1,v1=forged"}, id="forged-signature"),
        ],
    )
    def test_no_row_of_any_dj_stripe_model_is_written(self, client, webhook_secret, headers):
        before = dj_stripe_rows()

        response = client.post(
            URL,
            json.dumps(load_fixture("event_payment_intent_succeeded")),
            content_type="application/json",
            **headers,
        )

        assert response.status_code == 400
        assert dj_stripe_rows() == before

    def test_a_secret_sent_in_a_header_is_never_trusted_even_with_debug_on(
        self, client, webhook_secret, settings
    ):
        settings.DEBUG = True  # dj-stripe would verify against the header's secret
        event = load_fixture("event_payment_intent_succeeded")
        payload = json.dumps(event)
        before = rows_stored()

        response = client.post(
            URL,
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature(payload, secret="whsec_attackers"),
            HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_attackers",
        )

        assert response.status_code == 400
        assert rows_stored() == before

    def test_an_unknown_endpoint_gets_404_and_stores_nothing(self, client, webhook_secret):
        before = rows_stored()

        response = deliver_to(
            client, "/payments/stripe/webhook/00000000-0000-4000-8000-000000000000/"
        )

        assert response.status_code == 404
        assert rows_stored() == before

    def test_a_verified_event_is_stored_and_mirrored_by_dj_stripe(self, client, webhook_secret):
        event = event_about("event_payment_intent_succeeded", metadata={})

        response = deliver(client, event)

        assert response.status_code == 200
        trigger = WebhookEventTrigger.objects.get()
        assert (trigger.valid, trigger.processed, trigger.event_id) == (True, True, event["id"])
        assert StripeEvent.objects.get().type == "payment_intent.succeeded"
        assert StripePaymentIntent.objects.filter(id=event["data"]["object"]["id"]).exists()


class TestPaymentIntentEvents:
    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_success_of_a_processing_bank_debit_pays_the_invoice_once(
        self, client, bank_debit_processing, mailoutbox, django_capture_on_commit_callbacks
    ):
        invoice = bank_debit_processing
        event = bank_debit_event("event_payment_intent_succeeded")
        mailoutbox.clear()

        with django_capture_on_commit_callbacks(execute=True):
            first = deliver(client, event)
            replay = deliver(client, event)

        assert (first.status_code, replay.status_code) == (200, 200)
        attempt = attempt_of(invoice)
        assert (attempt.status, attempt.failure_code) == ("succeeded", "")
        invoice.refresh_from_db()
        assert (invoice.status, invoice.payment_reference) == (
            "paid",
            event["data"]["object"]["id"],
        )
        invoice.subscription.refresh_from_db()
        assert invoice.subscription.status == "active"  # was past due while processing
        assert list(ProcessedStripeEvent.objects.values_list("event_id", flat=True)) == [
            event["id"]
        ]
        receipts = [mail for mail in mailoutbox if mail.subject.startswith("Receipt")]
        assert len(receipts) == 1

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_a_reaction_that_failed_after_dj_stripe_stored_the_event_is_applied_when_redelivered(
        self, bank_debit_processing, monkeypatch
    ):
        event = bank_debit_event("event_payment_intent_succeeded")
        settle = webhooks._HANDLERS["payment_intent.succeeded"]

        def crash(*args):
            raise RuntimeError("the database went away")

        monkeypatch.setitem(webhooks._HANDLERS, "payment_intent.succeeded", crash)
        first = deliver(Client(raise_request_exception=False), event)
        monkeypatch.setitem(webhooks._HANDLERS, "payment_intent.succeeded", settle)
        redelivered = deliver(Client(), event)

        assert (first.status_code, redelivered.status_code) == (500, 200)
        bank_debit_processing.refresh_from_db()
        assert bank_debit_processing.status == "paid"
        assert StripeEvent.objects.count() == 1

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_a_failure_arriving_after_the_success_changes_nothing(
        self, client, bank_debit_processing
    ):
        invoice = bank_debit_processing
        deliver(client, bank_debit_event("event_payment_intent_succeeded"))

        response = deliver(client, bank_debit_event("event_payment_intent_payment_failed"))

        assert response.status_code == 200
        assert attempt_of(invoice).status == "succeeded"
        invoice.refresh_from_db()
        assert invoice.status == "paid"
        assert ProcessedStripeEvent.objects.count() == 2

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_failure_of_a_processing_bank_debit_records_the_reason(
        self, client, bank_debit_processing
    ):
        response = deliver(client, bank_debit_event("event_payment_intent_payment_failed"))

        assert response.status_code == 200
        attempt = attempt_of(bank_debit_processing)
        assert (attempt.status, attempt.failure_code, attempt.failure_message) == (
            "failed",
            "account_closed",
            "The bank account is closed.",
        )
        bank_debit_processing.refresh_from_db()
        assert bank_debit_processing.status == "open"

    @pytest.mark.parametrize(
        "name", ["event_payment_intent_succeeded", "event_payment_intent_payment_failed"]
    )
    def test_an_event_about_a_payment_never_made_here_is_acknowledged_and_logged(
        self, client, webhook_secret, caplog, name
    ):
        # Its metadata carries an idempotency key like ours, naming an invoice we do not have
        event = bank_debit_event(name)

        with caplog.at_level(logging.WARNING, logger="payments.webhooks"):
            response = deliver(client, event)

        assert response.status_code == 200
        assert not PaymentAttempt.objects.exists()
        assert ProcessedStripeEvent.objects.get().event_id == event["id"]
        assert f"is about {event['data']['object']['id']}, a payment that was not made here" in (
            caplog.text
        )

    def test_an_event_naming_one_of_our_invoices_but_no_charge_of_ours_is_acknowledged(
        self, client, webhook_secret, now, caplog
    ):
        invoice = SubscriptionFactory(start=now, now=now).invoices.get()
        event = event_about(
            "event_payment_intent_succeeded",
            metadata={"idempotency_key": f"invoice-{invoice.pk}-try0-method-1"},
        )

        with caplog.at_level(logging.WARNING, logger="payments.webhooks"):
            response = deliver(client, event)

        assert response.status_code == 200
        invoice.refresh_from_db()
        assert invoice.status == "open"
        assert "a payment that was not made here" in caplog.text

    def test_a_payment_that_is_not_ours_is_acknowledged(self, client, webhook_secret):
        event = event_about("event_payment_intent_succeeded", metadata={})

        response = deliver(client, event)

        assert response.status_code == 200
        assert not PaymentAttempt.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestConcurrentDeliveries:
    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_one_event_delivered_to_eight_workers_at_once_pays_once(
        self, bank_debit_processing, mailoutbox
    ):
        mailoutbox.clear()

        statuses = deliver_at_once([bank_debit_event("event_payment_intent_succeeded")] * 8)

        assert statuses == [200] * 8
        assert ProcessedStripeEvent.objects.count() == 1
        assert [mail.subject[:7] for mail in mailoutbox].count("Receipt") == 1
        bank_debit_processing.refresh_from_db()
        assert bank_debit_processing.status == "paid"

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_an_event_that_outruns_the_charge_waits_for_its_commit_and_is_applied(
        self, stripe_api, webhook_secret, now
    ):
        # Given an invoice about to be charged to a bank account
        subscription = SubscriptionFactory(start=now, now=now)
        method = add_method(
            subscription.organization,
            load_fixture("payment_method_us_bank_account")["id"],
            kind="bank_account",
            last4="6789",
        )
        invoice = subscription.invoices.get()
        event = bank_debit_event("event_payment_intent_succeeded")
        event["data"]["object"]["metadata"] = {
            "idempotency_key": f"invoice-{invoice.pk}-try0-method-{method.pk}"
        }
        delivery = {}

        def deliver_in_another_worker():
            try:
                delivery["status"] = deliver(Client(), event).status_code
            finally:
                connection.close()

        def stripe_answers_once_the_event_has_arrived(request):
            worker = threading.Thread(target=deliver_in_another_worker)
            worker.start()
            worker.join(timeout=2)
            delivery.update(worker=worker, waited_for_the_charge=worker.is_alive())
            return 200, {}, json.dumps(load_fixture("payment_intent_processing"))

        stripe_api.expect("POST", "/v1/customers", "customer")
        stripe_api.mock.add_callback(
            "POST",
            re.compile(r"https://api\.stripe\.com/v1/payment_intents$"),
            callback=stripe_answers_once_the_event_has_arrived,
            content_type="application/json",
        )

        # When Stripe's success event arrives while the charge is still being recorded
        services.invoice_collect(invoice=invoice)
        delivery["worker"].join(timeout=10)

        # Then it waits for the charge to commit, and pays the invoice
        assert delivery["waited_for_the_charge"]
        assert delivery["status"] == 200
        assert attempt_of(invoice).status == "succeeded"
        invoice.refresh_from_db()
        assert invoice.status == "paid"

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_success_and_failure_racing_keep_the_success(self, bank_debit_processing):
        statuses = deliver_at_once(
            [
                bank_debit_event("event_payment_intent_payment_failed"),
                bank_debit_event("event_payment_intent_succeeded"),
            ]
        )

        assert statuses == [200, 200]
        assert attempt_of(bank_debit_processing).status == "succeeded"


def card_event() -> dict:
    return event_about(
        "event_payment_method_automatically_updated", id=load_fixture("payment_method_card")["id"]
    )


class TestPaymentMethodEvents:
    @pytest.fixture
    def card(self, webhook_secret, now):
        subscription = SubscriptionFactory(start=now, now=now)
        return add_method(subscription.organization, load_fixture("payment_method_card")["id"])

    def test_the_account_updater_changes_expiry_and_number_in_place(self, client, card):
        response = deliver(client, card_event())

        assert response.status_code == 200
        card.refresh_from_db()
        assert (card.exp_month, card.exp_year, card.last4) == (11, 2030, "4444")

    def test_an_older_update_arriving_later_is_ignored(self, client, card):
        newer, older = card_event(), card_event()
        older.update(id="evt_1QzVcALkdIwHu7ixP0q1Lm2N", type="payment_method.updated")
        older["created"] = newer["created"] - 3600
        older["data"]["object"]["card"].update(exp_month=9, exp_year=2029, last4="4242")

        deliver(client, newer)
        deliver(client, older)

        card.refresh_from_db()
        assert (card.exp_month, card.exp_year, card.last4) == (11, 2030, "4444")
        assert PaymentMethod.objects.count() == 1


def refund_event(**charge) -> dict:
    payment_intent = load_fixture("payment_intent_succeeded")["id"]
    return event_about("event_charge_refunded", payment_intent=payment_intent, **charge)


class TestChargeRefunded:
    @pytest.fixture
    def refunded_here(self, stripe_api, webhook_secret, now):
        """A card charge of $199.00, of which $50.00 was refunded from the back office."""
        subscription = SubscriptionFactory(start=now, now=now)
        add_method(subscription.organization, "pm_card_visa")
        stripe_api.expect("POST", "/v1/customers", "customer")
        stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_succeeded")
        stripe_api.expect("POST", "/v1/refunds", "refund")
        attempt = services.invoice_collect(invoice=subscription.invoices.get())
        return services.payment_refund(
            attempt=attempt, amount=Money(Decimal("50.00"), "USD"), reason="Goodwill"
        )

    def test_a_refund_made_here_is_already_recorded(self, client, refunded_here, caplog):
        with caplog.at_level(logging.WARNING, logger="payments.webhooks"):
            response = deliver(client, refund_event())

        assert response.status_code == 200
        assert refunded_here.processor_reference == load_fixture("refund")["id"]
        assert not caplog.records

    def test_a_refund_of_a_payment_never_made_here_is_acknowledged_and_logged(
        self, client, webhook_secret, caplog
    ):
        with caplog.at_level(logging.WARNING, logger="payments.webhooks"):
            response = deliver(client, refund_event())

        assert response.status_code == 200
        assert "a payment that was not made here" in caplog.text

    def test_a_refund_made_in_stripes_dashboard_is_flagged_for_staff(
        self, client, refunded_here, caplog
    ):
        event = refund_event(amount_refunded=19900, refunded=True)

        with caplog.at_level(logging.WARNING, logger="payments.webhooks"):
            response = deliver(client, event)

        assert response.status_code == 200
        assert "issue a credit note" in caplog.text


class TestPurge:
    def test_deliveries_and_events_older_than_the_retention_go_with_their_records(
        self, client, webhook_secret, settings, now
    ):
        # Given an event delivered and applied 91 days ago, and one delivered today
        settings.STRIPE_EVENT_RETENTION_DAYS = 90
        old = event_about("event_payment_intent_succeeded", metadata={})
        old["created"] = int((now - dt.timedelta(days=91)).timestamp())
        with time_machine.travel(now - dt.timedelta(days=91), tick=False):
            deliver(client, old)
        recent = card_event()
        deliver(client, recent)

        # When the purge runs
        purged = webhooks.stripe_events_purge_if_needed(now=now)

        # Then only today's delivery, event and record are left
        assert purged == 1
        assert list(StripeEvent.objects.values_list("id", flat=True)) == [recent["id"]]
        assert list(ProcessedStripeEvent.objects.values_list("event_id", flat=True)) == [
            recent["id"]
        ]
        assert WebhookEventTrigger.objects.get().event_id == recent["id"]
