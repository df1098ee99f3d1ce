"""The invoice's notice: sent when an invoice is finalized, with its PDF by e-mail."""

from __future__ import annotations

from django_q.tasks import async_task

from billing.models import Invoice, Notification
from billing.notifications.emails import invoice_email_context, invoice_url
from billing.notifications.services import notification_send
from billing.task_queue import task_queue


def send_invoice_issued(*, invoice: Invoice, charge_first: bool = False) -> None:
    """Queue the invoice's notice with the transaction that issues it (`task_queue`): the job
    that issued it (the renewal of many subscriptions) reads and renders nothing for it. An
    invoice paid automatically is charged by the same task, before its notice, which then
    tells how the charge went: one task per invoice, one insert into the queue."""
    task = "billing.tasks.invoice_issued_notify"
    if charge_first:
        # By name: the payments app builds on billing, not the other way round.
        task = "payments.tasks.invoice_collect_and_notify"
    task_queue(lambda: async_task(task, invoice.pk))


def invoice_issued_notify(*, invoice: Invoice) -> None:
    """The invoice with its PDF, rendered when it is sent: it tells how the invoice stands
    then (paid by the charge queued with it, say)."""
    notification_send(
        organization=invoice.organization,
        kind=Notification.Kind.INVOICE_ISSUED,
        dedup_key=f"invoice:{invoice.pk}:issued",
        template="invoice_issued",
        context=lambda: invoice_email_context(invoice=invoice),
        link=invoice_url(invoice),
        link_label=f"View invoice {invoice.number}",
        data=lambda: {
            "invoice_id": invoice.pk,
            "invoice_number": invoice.number,
            "total": str(invoice.total.amount),
            "currency": str(invoice.total.currency),
        },
        rendered_when_sent=True,
    )
