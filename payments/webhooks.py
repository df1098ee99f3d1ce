"""Applying Stripe's webhook events to our payments.

dj-stripe receives the events (its endpoint model, its trigger and event rows, its mirror of
the objects) behind `payments.urls_webhooks`, which checks the signature before dj-stripe
sees anything: a bad signature stores nothing. Our reactions are dj-stripe receivers
(`payments.receivers`) that apply the stored event here once dj-stripe's transaction has
committed.

Stripe delivers at least once and in no particular order. Each event is applied at most once:
its id goes into ProcessedStripeEvent in the same transaction as its effects, so a replay
finds it and changes nothing. Each handler moves a record only forwards: a failure arriving
after a success for the same PaymentIntent changes nothing, and an older snapshot of a
payment method never overwrites a newer one. An event about a payment we never made is
acknowledged and logged: delivering it again could not change that.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from djmoney.money import Money
from djstripe.models import Event, WebhookEventTrigger

from billing.models import Invoice
from payments import locks, services
from payments.gateways import DECLINE_MESSAGES, decline_message, minor_units
from payments.models import (
    Collection,
    PaymentAttempt,
    PaymentMethod,
    ProcessedStripeEvent,
)

logger = logging.getLogger(__name__)

PAYMENT_METHOD_UPDATES = ("payment_method.updated", "payment_method.automatically_updated")


# The idempotency key `invoice_collect` gives each charge, and Stripe keeps in the
# PaymentIntent's metadata: `invoice-<invoice id>-<round>-method-<method id>`.
CHARGE_KEY = re.compile(r"invoice-(?P<invoice_id>\d{1,18})-")


class MalformedEvent(ValueError):
    """Not a Stripe event: one has an id, a type, a creation time, whether it is live, and
    the object it is about (`data.object`, with an id)."""


def stripe_event_check(*, event: dict) -> None:
    """Raise MalformedEvent for a signed body without the parts every event has, before
    dj-stripe stores anything of it."""
    try:
        event_id, event_type = event["id"], event["type"]
        dt.datetime.fromtimestamp(event["created"], tz=dt.UTC)
        object_id = event["data"]["object"]["id"]
        livemode = event["livemode"]
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise MalformedEvent(f"{MalformedEvent.__doc__} Missing or wrong: {error!r}.") from error
    if not all(isinstance(text, str) for text in (event_id, event_type, object_id)):
        raise MalformedEvent(f"{MalformedEvent.__doc__} Its id, type and object's id are text.")
    if not isinstance(livemode, bool):
        raise MalformedEvent(f"{MalformedEvent.__doc__} Its livemode is true or false.")


@transaction.atomic
def stripe_event_apply(*, event_id: str, now: dt.datetime | None = None) -> bool:
    """Apply one event dj-stripe has stored (after its signature was checked). Returns False
    when it had already been applied."""
    now = now or timezone.now()
    event = Event.objects.get(id=event_id)
    _, is_new = ProcessedStripeEvent.objects.get_or_create(
        event_id=event.id, defaults={"processed_at": now}
    )
    if not is_new:
        return False
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        handler(event.data["object"], event, now)
    return True


def stripe_events_purge_if_needed(*, now: dt.datetime | None = None) -> int:
    """The daily purge: webhook deliveries received, and Stripe events created, more than
    `STRIPE_EVENT_RETENTION_DAYS` ago (with the record that they were applied). Stripe
    stops redelivering an event after three days, so a replay can no longer find it gone.
    Returns how many events went."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.STRIPE_EVENT_RETENTION_DAYS)
    WebhookEventTrigger.objects.filter(created__lt=cutoff).delete()
    old_events = Event.objects.filter(created__lt=cutoff)
    ProcessedStripeEvent.objects.filter(event__in=old_events).delete()
    deleted, _ = old_events.delete()
    return deleted


def _attempt_locked(intent: dict, event: Event) -> PaymentAttempt | None:
    """Our attempt behind a PaymentIntent, read under its invoice's collection lock.

    `invoice_collect` holds that lock for a whole charge, so webhooks and charges of one
    invoice take turns, and an event that outruns the charge's commit waits for it here.
    None, logged, for a payment we never made."""
    key = (intent.get("metadata") or {}).get("idempotency_key") or ""
    matches = Q(processor_reference=intent["id"])
    if key:
        matches |= Q(idempotency_key=key)
    ours = PaymentAttempt.objects.filter(matches)
    invoice_id = ours.values_list("invoice_id", flat=True).first() or _invoice_charged(key)
    if invoice_id is not None:
        collection, _ = Collection.objects.get_or_create(invoice_id=invoice_id)
        locks.collection_lock().get(pk=collection.pk)
        attempt = ours.select_related(
            "invoice__organization", "invoice__subscription", "payment_method"
        ).first()
        if attempt is not None:
            return attempt
    _log_not_ours(event, intent["id"])
    return None


def _invoice_charged(key: str) -> int | None:
    """The invoice a charge's idempotency key names, if it is one of ours."""
    match = CHARGE_KEY.match(key)
    if match is None:
        return None
    return Invoice.objects.filter(pk=int(match["invoice_id"])).values_list("pk", flat=True).first()


def _log_not_ours(event: Event, reference: str) -> None:
    logger.warning(
        "Stripe event %s (%s) is about %s, a payment that was not made here: acknowledged, "
        "nothing applied.",
        event.id,
        event.type,
        reference,
    )


def _payment_intent_succeeded(intent: dict, event: Event, now: dt.datetime) -> None:
    """Stripe has the money: usually already recorded by the charge itself; for a bank debit
    that was still processing, this is where the invoice gets paid."""
    attempt = _attempt_locked(intent, event)
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


def _payment_intent_payment_failed(intent: dict, event: Event, now: dt.datetime) -> None:
    """Records the bank's final answer on an attempt still waiting for one; a settled attempt
    (a success that arrived first) is never undone."""
    attempt = _attempt_locked(intent, event)
    waiting = attempt is not None and (
        attempt.status == PaymentAttempt.Status.PENDING
        or (attempt.status == PaymentAttempt.Status.FAILED and attempt.failure_code == "processing")
    )
    if not waiting:
        return
    error = intent.get("last_payment_error") or {}
    attempt.status = PaymentAttempt.Status.FAILED
    attempt.failure_code = error.get("decline_code") or error.get("code") or "payment_failed"
    attempt.failure_message = DECLINE_MESSAGES.get(attempt.failure_code) or decline_message(
        error.get("code") or ""
    )
    attempt.completed_at = now
    attempt.save()


def _charge_refunded(charge: dict, event: Event, now: dt.datetime) -> None:
    """Refunds made here already carry Stripe's reference (`payment_refund` stores it). One
    made in Stripe's dashboard has no credit note here: tell staff to issue one."""
    attempt = PaymentAttempt.objects.filter(processor_reference=charge["payment_intent"]).first()
    if attempt is None:
        _log_not_ours(event, charge["id"])
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


def _payment_method_updated(method: dict, event: Event, now: dt.datetime) -> None:
    """The card's expiry or number changed (by the customer, or by the card network's account
    updater): the listed method follows, unless a newer event about it was already applied."""
    newer_applied = ProcessedStripeEvent.objects.filter(
        event__type__in=PAYMENT_METHOD_UPDATES,
        event__created__gt=event.created,
        event__data__object__id=method["id"],
    ).exists()
    if newer_applied or method["type"] != "card":
        return
    card = method["card"]
    PaymentMethod.objects.filter(
        processor=PaymentMethod.Processor.STRIPE, token=method["id"]
    ).update(exp_month=card["exp_month"], exp_year=card["exp_year"], last4=card["last4"])


_HANDLERS: dict[str, Callable[[dict, Event, dt.datetime], None]] = {
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_payment_failed,
    "charge.refunded": _charge_refunded,
    "payment_method.updated": _payment_method_updated,
    "payment_method.automatically_updated": _payment_method_updated,
}
