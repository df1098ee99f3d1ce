"""django-q2 entry points: thin adapters that call one service each."""

from django.utils import timezone

from billing.models import Invoice
from billing.notifications import invoice_notices
from payments import services


def invoice_collect(invoice_id: int) -> bool:
    invoice = Invoice.objects.get(pk=invoice_id)
    return services.invoice_collect(invoice=invoice, now=timezone.now()) is not None


def invoice_collect_and_notify(invoice_id: int) -> bool:
    """An invoice just issued to an organization that pays automatically: charged, then its
    notice sent, saying how the charge went. A failed charge still sends the notice."""
    try:
        return invoice_collect(invoice_id)
    finally:
        # Read again, as the charge left it: paid, or still owed.
        invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
        invoice_notices.invoice_issued_notify(invoice=invoice)


def payment_retries() -> int:
    return services.payment_retries_if_needed(now=timezone.now())


def invoice_reminders() -> int:
    from payments import reminders

    return reminders.invoice_reminders_if_needed(now=timezone.now())


def stripe_reconciliation() -> bool:
    from payments import reconciliation

    return reconciliation.stripe_reconciliation_if_needed(now=timezone.now()) is not None


def stripe_events_purge() -> int:
    from payments import webhooks

    return webhooks.stripe_events_purge_if_needed(now=timezone.now())
