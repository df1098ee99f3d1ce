"""Applying Stripe's webhook events to our payments: the service behind
`/payments/stripe/webhook/` (see `payments.urls_webhooks`).

Why not dj-stripe: its release for Django 5.2 (2.11.0) requires `stripe<16`, and its endpoint
writes a WebhookEventTrigger row for every delivery before checking the signature, so a
forged request would be stored; the rule here is that a bad signature stores nothing. The
view checks the signature with the official `stripe.Webhook.construct_event` (HMAC and
timestamp tolerance) first, and this module stores only verified events.

Stripe delivers at least once and in no particular order. Each event is applied at most once:
its id goes into ProcessedStripeEvent in the same transaction as its effects, so a replay
finds it and changes nothing. Each handler moves a record only forwards: a failure arriving
after a success for the same PaymentIntent changes nothing, and an older snapshot of a
payment method never overwrites a newer one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from billing.models import Invoice
from payments import services
from payments.gateways import DECLINE_MESSAGES, decline_message
from payments.gateways.stripe import minor_units
from payments.models import (
    Collection,
    PaymentAttempt,
    PaymentMethod,
    ProcessedStripeEvent,
)

logger = logging.getLogger(__name__)

PAYMENT_METHOD_UPDATES = ("payment_method.updated", "payment_method.automatically_updated")


class EventNotYetApplicable(Exception):
    """The event is about one of our payments whose attempt is not committed yet (the webhook
    outran the charge's transaction): Stripe should deliver it again later."""


@transaction.atomic
def stripe_event_apply(*, event: dict, now: dt.datetime | None = None) -> bool:
    """Apply one verified event. Returns False when it had already been applied."""
    now = now or timezone.now()
    stripe_object = event["data"]["object"]
    _, created = ProcessedStripeEvent.objects.get_or_create(
        event_id=event["id"],
        defaults={
            "event_type": event["type"],
            "object_id": stripe_object.get("id", ""),
            "created_at_stripe": dt.datetime.fromtimestamp(event["created"], tz=dt.UTC),
            "processed_at": now,
        },
    )
    if not created:
        return False
    handler = _HANDLERS.get(event["type"])
    if handler is not None:
        handler(stripe_object, event, now)
    return True


def _attempt_locked(intent: dict) -> PaymentAttempt | None:
    """Our attempt behind a PaymentIntent, read again under its invoice's collection lock,
    which `invoice_collect` takes first too: webhooks and charges of one invoice take turns."""
    attempt = PaymentAttempt.objects.filter(processor_reference=intent["id"]).first()
    if attempt is None:
        if intent["metadata"].get("idempotency_key"):
            raise EventNotYetApplicable(intent["id"])
        return None  # not a payment of ours
    collection, _ = Collection.objects.get_or_create(invoice_id=attempt.invoice_id)
    Collection.objects.select_for_update().get(pk=collection.pk)
    return PaymentAttempt.objects.select_related(
        "invoice__organization", "invoice__subscription", "payment_method"
    ).get(pk=attempt.pk)


def _payment_intent_succeeded(intent: dict, event: dict, now: dt.datetime) -> None:
    """Stripe has the money: usually already recorded by the charge itself; for a bank debit
    that was still processing, this is where the invoice gets paid."""
    attempt = _attempt_locked(intent)
    if attempt is None or attempt.status == PaymentAttempt.Status.SUCCEEDED:
        return
    invoice = attempt.invoice
    paid_by = invoice.payment_attempts.filter(status=PaymentAttempt.Status.SUCCEEDED).first()
    if paid_by is not None:
        logger.error(
            "%s was paid twice (%s and %s): refund one of them.",
            invoice,
            paid_by.processor_reference,
            attempt.processor_reference,
        )
        return
    attempt.status = PaymentAttempt.Status.SUCCEEDED
    attempt.failure_code = attempt.failure_message = ""
    attempt.completed_at = now
    attempt.save()
    if invoice.status in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE):
        services.invoice_settle(attempt=attempt, now=now)
    else:
        logger.error("%s is %s but Stripe collected %s.", invoice, invoice.status, intent["id"])


def _payment_intent_payment_failed(intent: dict, event: dict, now: dt.datetime) -> None:
    """Records the bank's final answer on an attempt still waiting for one; a settled attempt
    (a success that arrived first) is never undone."""
    attempt = _attempt_locked(intent)
    waiting = attempt is not None and (
        attempt.status == PaymentAttempt.Status.PENDING
        or (attempt.status == PaymentAttempt.Status.FAILED and attempt.failure_code == "processing")
    )
    if not waiting:
        return
    error = intent["last_payment_error"] or {}
    attempt.status = PaymentAttempt.Status.FAILED
    attempt.failure_code = error.get("decline_code") or error.get("code") or "payment_failed"
    attempt.failure_message = DECLINE_MESSAGES.get(attempt.failure_code) or decline_message(
        error.get("code") or ""
    )
    attempt.completed_at = now
    attempt.save()


def _charge_refunded(charge: dict, event: dict, now: dt.datetime) -> None:
    """Refunds made here already carry Stripe's reference (`payment_refund` stores it). One
    made in Stripe's dashboard has no credit note here: tell staff to issue one."""
    attempt = PaymentAttempt.objects.filter(processor_reference=charge["payment_intent"]).first()
    if attempt is None:
        return
    refunded_here = attempt.refunds.aggregate(total=Sum("amount"))["total"] or 0
    refunded_here_minor = minor_units(Money(refunded_here, attempt.amount.currency))
    if charge["amount_refunded"] > refunded_here_minor:
        logger.warning(
            "Stripe refunded %s of %s's %s (charge %s) but credit notes here cover %s: "
            "issue a credit note for the difference.",
            charge["amount_refunded"],
            attempt.invoice,
            charge["amount"],
            charge["id"],
            refunded_here_minor,
        )


def _payment_method_updated(method: dict, event: dict, now: dt.datetime) -> None:
    """The card's expiry or number changed (by the customer, or by the card network's account
    updater): the listed method follows, unless a newer event about it was already applied."""
    newer_applied = ProcessedStripeEvent.objects.filter(
        object_id=method["id"],
        event_type__in=PAYMENT_METHOD_UPDATES,
        created_at_stripe__gt=dt.datetime.fromtimestamp(event["created"], tz=dt.UTC),
    ).exists()
    if newer_applied or method["type"] != "card":
        return
    card = method["card"]
    PaymentMethod.objects.filter(
        processor=PaymentMethod.Processor.STRIPE, token=method["id"]
    ).update(exp_month=card["exp_month"], exp_year=card["exp_year"], last4=card["last4"])


_HANDLERS: dict[str, Callable[[dict, dict, dt.datetime], None]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_payment_failed,
    "charge.refunded": _charge_refunded,
    "payment_method.updated": _payment_method_updated,
    "payment_method.automatically_updated": _payment_method_updated,
}
