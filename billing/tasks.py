"""django-q2 entry points: thin adapters that call one service each."""

from django.utils import timezone

from billing import notifications
from billing.models import Invoice
from billing.services import (
    renew_subscriptions_if_needed,
    trial_reminders_send_if_needed,
    usage_data_purge_if_needed,
)
from billing.services.documents import invoice_pdf_if_needed


def renew_subscriptions() -> int:
    return renew_subscriptions_if_needed(now=timezone.now())


def invoice_deliver(invoice_id: int) -> None:
    """Render (once) and e-mail a finalized invoice with its PDF to the billing contacts."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    pdf = invoice_pdf_if_needed(invoice=invoice)
    notifications.send_invoice(invoice=invoice, pdf=pdf)


def trial_reminders_send() -> int:
    return trial_reminders_send_if_needed(now=timezone.now())


def usage_data_purge() -> int:
    return usage_data_purge_if_needed(now=timezone.now())
