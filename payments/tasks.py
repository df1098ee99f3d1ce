"""django-q2 entry points: thin adapters that call one service each."""

from django.utils import timezone

from billing.models import Invoice
from payments import services


def invoice_collect(invoice_id: int) -> bool:
    invoice = Invoice.objects.get(pk=invoice_id)
    return services.invoice_collect(invoice=invoice, now=timezone.now()) is not None


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
