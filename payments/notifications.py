"""E-mails about payments to the organization's billing contacts, sent once the payment is
committed (`billing.notifications`)."""

from __future__ import annotations

import datetime as dt

from billing.models import Invoice, Subscription
from billing.notifications import invoice_url, send_to_billing_contacts
from payments.models import Collection, PaymentAttempt


def send_receipt(*, attempt: PaymentAttempt) -> None:
    invoice = attempt.invoice
    send_to_billing_contacts(
        organization=invoice.organization,
        template="payment_receipt",
        # As settled: the invoice row read after the commit that marked it paid.
        context=lambda: {"invoice": Invoice.objects.get(pk=invoice.pk), "attempt": attempt},
        link=invoice_url(invoice),
        link_label=f"View invoice {invoice.number}",
    )


def send_payment_failed(*, collection: Collection, attempted_at: dt.datetime) -> None:
    invoice = collection.invoice
    next_retry_at, failure = collection.next_retry_at, collection.last_failure_message
    send_to_billing_contacts(
        organization=invoice.organization,
        template="payment_failed",
        context=lambda: {
            "invoice": invoice,
            "next_retry_at": next_retry_at,
            "failure": failure,
            "tried": list(
                invoice.payment_attempts.filter(
                    attempted_at=attempted_at, status=PaymentAttempt.Status.FAILED
                )
                .select_related("payment_method")
                .order_by("pk")
            ),
            "suspended": Subscription.objects.filter(
                pk=invoice.subscription_id, status=Subscription.Status.SUSPENDED
            ).exists(),
        },
        link=invoice_url(invoice),
        link_label=f"Pay invoice {invoice.number}",
    )
