"""Our reactions to Stripe's events, as dj-stripe receivers. dj-stripe calls them inside the
transaction that stores the event and syncs its object; each applies the event to our
payments once that transaction has committed (`payments.webhooks`, idempotent on the
event's id)."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Event

from payments import webhooks


@djstripe_receiver(
    [
        "payment_intent.succeeded",  # settles the invoice (a bank debit that was processing)
        "payment_intent.payment_failed",  # records the bank's final answer
        "charge.refunded",  # flags a refund made outside the back office
        "payment_method.updated",  # the card's new expiry or number
        "payment_method.automatically_updated",
    ]
)
def stripe_event_received(sender, event: Event, **kwargs) -> None:
    transaction.on_commit(partial(webhooks.stripe_event_apply, event_id=event.id))
