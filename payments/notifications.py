"""Notices about payments, sent once the payment is committed (`billing.notifications`)."""

from __future__ import annotations

import datetime as dt

from billing.models import Invoice, Notification, Subscription
from billing.notifications.emails import invoice_url
from billing.notifications.services import notification_send
from payments.models import Collection, PaymentAttempt


def send_receipt(*, attempt: PaymentAttempt) -> None:
    invoice = attempt.invoice
    notification_send(
        organization=invoice.organization,
        kind=Notification.Kind.PAYMENT_SUCCEEDED,
        dedup_key=f"payment:{attempt.pk}:succeeded",
        template="payment_receipt",
        # As settled: the invoice row read after the commit that marked it paid.
        context=lambda: {"invoice": Invoice.objects.get(pk=invoice.pk), "attempt": attempt},
        link=invoice_url(invoice),
        link_label=f"View invoice {invoice.number}",
        data={
            "invoice_id": invoice.pk,
            "invoice_number": invoice.number,
            "amount": str(attempt.amount.amount),
            "currency": str(attempt.amount.currency),
        },
    )


def send_payment_failed(*, collection: Collection, attempted_at: dt.datetime) -> None:
    invoice = collection.invoice
    next_retry_at, failure = collection.next_retry_at, collection.last_failure_message
    notification_send(
        organization=invoice.organization,
        kind=Notification.Kind.PAYMENT_FAILED,
        dedup_key=f"invoice:{invoice.pk}:payment-failed:{attempted_at.isoformat()}",
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
        data={
            "invoice_id": invoice.pk,
            "invoice_number": invoice.number,
            "reason": failure,
            "next_retry_at": next_retry_at.isoformat() if next_retry_at else None,
        },
    )
