"""E-mails about payments, sent after commit to the organization's billing contacts."""

from __future__ import annotations

from billing.notifications import send_to_billing_contacts
from payments.models import Collection, PaymentAttempt


def send_receipt(*, attempt: PaymentAttempt) -> None:
    invoice = attempt.invoice
    send_to_billing_contacts(
        organization=invoice.organization,
        template="payment_receipt",
        context={"invoice": invoice, "attempt": attempt},
    )


def send_payment_failed(*, collection: Collection) -> None:
    invoice = collection.invoice
    send_to_billing_contacts(
        organization=invoice.organization,
        template="payment_failed",
        context={"invoice": invoice, "collection": collection},
    )
