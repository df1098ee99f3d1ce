"""The daily reconciliation of our payments, refunds and payment methods with Stripe's.

dj-stripe's sync first brings its mirror up to date with every PaymentIntent and Refund
Stripe created in the window (`STRIPE_RECONCILIATION_DAYS`) and with each Stripe method
listed here; then each of ours is compared with the mirror's: missing on either side,
amounts or statuses that differ, a card's number or expiry that differs. Each mismatch is
listed in the admin until a later run finds both sides agreeing. A webhook lost for days
(a bank debit Stripe settled that still shows as processing here, a card the network
updated) is found the next morning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from djmoney.money import Money
from djstripe.models import PaymentIntent as StripePaymentIntent
from djstripe.models import PaymentMethod as StripePaymentMethod
from djstripe.models import Refund as StripeRefund
from djstripe.settings import djstripe_settings

from payments.gateways import minor_units
from payments.models import (
    PaymentAttempt,
    PaymentMethod,
    Refund,
    StripeMismatch,
    StripeReconciliation,
)

# Stripe's PaymentIntent statuses, as our attempts name the same state.
OUR_STATUS = {
    "succeeded": "succeeded",
    "processing": "processing",
    "requires_payment_method": "failed",
    "requires_confirmation": "failed",
    "requires_action": "failed",
    "canceled": "failed",
}
# Stripe's refund statuses under which the money went, or is going, back.
REFUND_GIVEN = ("succeeded", "pending")
# A charge is recorded here a moment before Stripe creates its PaymentIntent: the mirror is
# synced from a little earlier than the window, so both sides cover the same payments.
SYNC_MARGIN = dt.timedelta(days=1)


@dataclass(frozen=True)
class Found:
    object_type: str
    kind: str
    stripe_id: str
    ours: str = ""
    theirs: str = ""
    attempt: PaymentAttempt | None = None
    refund: Refund | None = None
    payment_method: PaymentMethod | None = None


def _live_stripe_methods():
    return PaymentMethod.objects.filter(
        processor=PaymentMethod.Processor.STRIPE, removed_at__isnull=True
    )


def stripe_mirror_sync(*, since: dt.datetime) -> None:
    """dj-stripe's sync of the PaymentIntents and Refunds created since `since`: each is
    fetched from Stripe and stored (or updated) in the mirror."""
    api_key = djstripe_settings.STRIPE_SECRET_KEY
    created = {"gte": int(since.timestamp())}
    for model in (StripePaymentIntent, StripeRefund):
        for stripe_object in model.api_list(api_key=api_key, created=created):
            model.sync_from_stripe_data(stripe_object, api_key=api_key)
    for token in _live_stripe_methods().values_list("token", flat=True):
        try:
            method = StripePaymentMethod(id=token).api_retrieve(api_key=api_key)
        except stripe.InvalidRequestError as refused:
            if refused.code != "resource_missing":
                raise
            StripePaymentMethod.objects.filter(id=token).delete()  # gone at Stripe
            continue
        StripePaymentMethod.sync_from_stripe_data(method, api_key=api_key)


def _attempt_status(attempt: PaymentAttempt) -> str:
    if attempt.status == PaymentAttempt.Status.PENDING or attempt.failure_code == "processing":
        return "processing"
    return attempt.status


def _amount_text(amount: Money) -> str:
    return f"{minor_units(amount)} {amount.currency.code.lower()}"


def _payment_mismatches(since: dt.datetime) -> tuple[int, list[Found]]:
    attempts = list(
        PaymentAttempt.objects.filter(
            payment_method__processor=PaymentMethod.Processor.STRIPE, attempted_at__gte=since
        ).exclude(Q(processor_reference="") & ~Q(status=PaymentAttempt.Status.SUCCEEDED))
    )
    intents = {
        intent.id: intent.stripe_data
        for intent in StripePaymentIntent.objects.filter(
            created__gte=since - SYNC_MARGIN, livemode=djstripe_settings.STRIPE_LIVE_MODE
        )
    }
    by_key = {
        (data.get("metadata") or {}).get("idempotency_key"): intent_id
        for intent_id, data in intents.items()
    }
    found, matched = [], set()
    for attempt in attempts:
        reference = attempt.processor_reference
        intent_id = reference if reference in intents else by_key.get(attempt.idempotency_key)
        ours_status = _attempt_status(attempt)
        if intent_id is None:
            found.append(
                Found(
                    "payment",
                    "missing_at_stripe",
                    reference or attempt.idempotency_key,
                    ours_status,
                    attempt=attempt,
                )
            )
            continue
        matched.add(intent_id)
        data = intents[intent_id]
        theirs_status = data.get("status", "")
        if OUR_STATUS.get(theirs_status) != ours_status:
            found.append(Found("payment", "status", intent_id, ours_status, theirs_status, attempt))
        ours_amount = _amount_text(attempt.amount)
        theirs_amount = f"{data.get('amount')} {data.get('currency')}"
        if ours_amount != theirs_amount:
            found.append(Found("payment", "amount", intent_id, ours_amount, theirs_amount, attempt))
    for intent_id, data in intents.items():
        if intent_id not in matched and data.get("status") in ("succeeded", "processing"):
            theirs = f"{data.get('status')}, {data.get('amount')} {data.get('currency')}"
            found.append(Found("payment", "missing_here", intent_id, "", theirs))
    return len(attempts), found


def _refund_mismatches(since: dt.datetime) -> tuple[int, list[Found]]:
    refunds = list(
        Refund.objects.filter(
            attempt__payment_method__processor=PaymentMethod.Processor.STRIPE,
            created_at__gte=since,
        ).select_related("attempt")
    )
    theirs_by_id = {
        refund.id: refund
        # Stripe's refunds say nothing of live or test mode: their charge does.
        for refund in StripeRefund.objects.filter(
            created__gte=since - SYNC_MARGIN, charge__livemode=djstripe_settings.STRIPE_LIVE_MODE
        )
    }
    found = []
    for refund in refunds:
        theirs = theirs_by_id.pop(refund.processor_reference, None)
        if theirs is None:
            found.append(
                Found(
                    "refund",
                    "missing_at_stripe",
                    refund.processor_reference,
                    "refunded",
                    refund=refund,
                )
            )
            continue
        if theirs.status not in REFUND_GIVEN:
            found.append(
                Found("refund", "status", theirs.id, "refunded", theirs.status, refund=refund)
            )
        ours_amount = _amount_text(refund.amount)
        theirs_amount = f"{theirs.amount} {theirs.currency}"
        if ours_amount != theirs_amount:
            found.append(
                Found("refund", "amount", theirs.id, ours_amount, theirs_amount, refund=refund)
            )
    for theirs in theirs_by_id.values():
        if theirs.status in REFUND_GIVEN:
            text = f"{theirs.status}, {theirs.amount} {theirs.currency}"
            found.append(Found("refund", "missing_here", theirs.id, "", text))
    return len(refunds), found


def _method_text(kind: str, last4: str, exp_month: int | None, exp_year: int | None) -> str:
    expiry = f", {exp_month:02d}/{exp_year}" if exp_month else ""
    return f"{kind} •••• {last4}{expiry}"


def _method_mismatches() -> list[Found]:
    methods = list(_live_stripe_methods())
    mirrored = {
        method.id: method.stripe_data
        for method in StripePaymentMethod.objects.filter(id__in=[m.token for m in methods])
    }
    found = []
    for method in methods:
        ours = _method_text(method.kind, method.last4, method.exp_month, method.exp_year)
        data = mirrored.get(method.token)
        if data is None:
            found.append(
                Found("method", "missing_at_stripe", method.token, ours, payment_method=method)
            )
            continue
        details = data.get(data.get("type", "")) or {}
        kind = PaymentMethod.Kind.CARD if data.get("type") == "card" else method.kind
        theirs = _method_text(
            kind, details.get("last4", ""), details.get("exp_month"), details.get("exp_year")
        )
        if ours != theirs:
            found.append(
                Found("method", "details", method.token, ours, theirs, payment_method=method)
            )
    return found


@transaction.atomic
def stripe_reconcile(*, now: dt.datetime, since: dt.datetime) -> StripeReconciliation:
    """Compare ours with the mirror as it stands, and list what differs. A mismatch found
    again stays one row (its last day moves on); one no longer found is resolved."""
    day = now.date()
    payments_compared, payment_mismatches = _payment_mismatches(since)
    refunds_compared, refund_mismatches = _refund_mismatches(since)
    found = payment_mismatches + refund_mismatches + _method_mismatches()
    still_open = set()
    for mismatch in found:
        fields = {
            "object_type": mismatch.object_type,
            "attempt": mismatch.attempt,
            "refund": mismatch.refund,
            "payment_method": mismatch.payment_method,
            "ours": mismatch.ours,
            "theirs": mismatch.theirs,
            "last_found_on": day,
        }
        row, _ = StripeMismatch.objects.update_or_create(
            stripe_id=mismatch.stripe_id,
            kind=mismatch.kind,
            resolved_on__isnull=True,
            defaults=fields,
            create_defaults={**fields, "first_found_on": day},
        )
        still_open.add(row.pk)
    StripeMismatch.objects.filter(resolved_on__isnull=True).exclude(pk__in=still_open).update(
        resolved_on=day
    )
    reconciliation, _ = StripeReconciliation.objects.update_or_create(
        day=day,
        defaults={
            "ran_at": now,
            "payments_compared": payments_compared,
            "refunds_compared": refunds_compared,
            "mismatches_found": len(found),
        },
    )
    return reconciliation


def stripe_reconciliation_if_needed(
    *, now: dt.datetime | None = None
) -> StripeReconciliation | None:
    """The daily job: once a day, while payments go through Stripe, sync the mirror of the
    window and reconcile it. Nothing to do with the sandbox gateway."""
    now = now or timezone.now()
    if settings.PAYMENT_GATEWAY != PaymentMethod.Processor.STRIPE:
        return None
    if StripeReconciliation.objects.filter(day=now.date()).exists():
        return None
    since = now - dt.timedelta(days=settings.STRIPE_RECONCILIATION_DAYS)
    stripe_mirror_sync(since=since - SYNC_MARGIN)
    return stripe_reconcile(now=now, since=since)
