"""Pay by invoice: organizations on `invoice` terms pay their open invoices by bank transfer.
Their billing contacts are reminded before the due date and sent overdue notices after it;
an overdue invoice makes the subscription past due, and once the grace period is over,
suspended. Staff recording the transfer (`services.invoice_record_bank_transfer`) settle the
invoice and reinstate the subscription."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, Notification, Organization, Subscription
from billing.notifications.emails import invoice_url
from billing.notifications.services import notification_send
from billing.subscriptions import services as subscription_services
from payments import locks, selectors
from payments.models import Collection, InvoiceReminder


def bank_transfer_details(*, invoice: Invoice) -> list[tuple[str, str]]:
    """What the customer enters in their bank to pay `invoice`, label by label."""
    bank = settings.BANK_TRANSFER_INSTRUCTIONS
    details = [
        ("Bank", bank["bank_name"]),
        ("Account holder", bank["account_holder"]),
        ("IBAN / account number", bank["account"]),
        ("SWIFT / BIC", bank["swift"]),
        ("Payment reference", bank["reference"].replace("{invoice_number}", invoice.number)),
    ]
    return [(label, value) for label, value in details if value]


@dataclass(frozen=True)
class Notice:
    kind: str
    at: dt.datetime
    template: str


def _notices(invoice: Invoice) -> list[Notice]:
    """Every notice the invoice gets while unpaid, in the order they fall due."""
    due_at = invoice.due_at
    notices = [
        Notice(InvoiceReminder.overdue(days), due_at + dt.timedelta(days=days), "invoice_overdue")
        for days in sorted(set(settings.INVOICE_OVERDUE_REMINDER_DAYS))
    ]
    notices.append(
        Notice(
            InvoiceReminder.SUSPENSION,
            selectors.invoice_suspends_at(invoice=invoice),
            "invoice_overdue",
        )
    )
    reminder_at = due_at - dt.timedelta(days=settings.INVOICE_REMINDER_DAYS_BEFORE_DUE)
    # On shorter terms the invoice itself, just sent, announced the due date.
    if reminder_at > invoice.issued_at:
        notices.append(Notice(InvoiceReminder.DUE_SOON, reminder_at, "invoice_reminder"))
    return sorted(notices, key=lambda notice: notice.at)


def _notice_due(invoice: Invoice, now: dt.datetime) -> Notice | None:
    """The latest notice whose time has come. Earlier ones the job missed (it was not running)
    are outdated by it and never sent: no "due in 7 days" once the invoice is overdue."""
    due = [notice for notice in _notices(invoice) if notice.at <= now]
    return due[-1] if due else None


def _next_status(subscription: Subscription | None, owed: str | None) -> str | None:
    """The next status on the way to `owed` (past due comes before suspended). None once
    there, and for a subscription suspended or canceled for another reason."""
    if subscription is None or owed is None:
        return None
    if subscription.status in (Subscription.Status.TRIALING, Subscription.Status.ACTIVE):
        return Subscription.Status.PAST_DUE
    if (
        subscription.status == Subscription.Status.PAST_DUE
        and owed == Subscription.Status.SUSPENDED
    ):
        return Subscription.Status.SUSPENDED
    return None


def _needs_action(invoice: Invoice, now: dt.datetime) -> bool:
    """Whether the invoice has a notice or a status change due, judged on the rows read in
    bulk; `_invoice_remind` judges again under the lock."""
    notice = _notice_due(invoice, now)
    if notice is not None and all(sent.kind != notice.kind for sent in invoice.reminders.all()):
        return True
    return (
        _next_status(invoice.subscription, selectors.status_owed(invoice=invoice, now=now))
        is not None
    )


def invoice_reminders_if_needed(*, now: dt.datetime | None = None) -> int:
    """The daily job, over the open invoices of organizations paying by invoice. Returns how
    many notices were sent.

    Each notice goes out once. The status is enforced on every run rather than once, so a
    subscription is never left in better standing than its unpaid invoices allow."""
    now = now or timezone.now()
    reminding_from = now + dt.timedelta(days=settings.INVOICE_REMINDER_DAYS_BEFORE_DUE)
    invoices = (
        Invoice.objects.filter(
            status=Invoice.Status.OPEN,
            organization__payment_terms=Organization.PaymentTerms.INVOICE,
            due_at__lte=reminding_from,
        )
        .select_related("subscription", "organization")
        .prefetch_related("reminders")
        .order_by("due_at", "pk")
    )
    return sum(
        _invoice_remind(invoice_id=invoice.pk, now=now)
        for invoice in invoices
        if _needs_action(invoice, now)
    )


@transaction.atomic
def _invoice_remind(*, invoice_id: int, now: dt.datetime) -> bool:
    """Bring one invoice's subscription status and notices up to date. True if a notice was
    sent."""
    # The lock every payment of the invoice takes first: a transfer recorded meanwhile waits,
    # then finds the suspension and lifts it; this run, once it has the lock, finds it paid.
    collection, _ = Collection.objects.get_or_create(invoice_id=invoice_id)
    locks.collection_lock().filter(pk=collection.pk).first()
    invoice = Invoice.objects.select_related("organization", "subscription").get(pk=invoice_id)
    if (
        invoice.status != Invoice.Status.OPEN
        or invoice.organization.payment_terms != Organization.PaymentTerms.INVOICE
    ):
        return False
    subscription = _subscription_enforce_status(invoice, now)
    notice = _notice_due(invoice, now)
    if notice is None:
        return False
    _, created = InvoiceReminder.objects.get_or_create(
        invoice=invoice, kind=notice.kind, defaults={"sent_at": now}
    )
    if created:
        _send_notice(invoice=invoice, notice=notice, subscription=subscription)
    return created


def _subscription_enforce_status(invoice: Invoice, now: dt.datetime) -> Subscription | None:
    subscription = invoice.subscription
    owed = selectors.status_owed(invoice=invoice, now=now)
    due_on = _due_on(invoice)
    reasons = {
        Subscription.Status.PAST_DUE: f"Invoice {invoice.number} is overdue: it was due on {due_on}",
        Subscription.Status.SUSPENDED: (
            f"Invoice {invoice.number} is unpaid {settings.INVOICE_GRACE_DAYS} days after its "
            f"due date ({due_on})"
        ),
    }
    while status := _next_status(subscription, owed):
        subscription = subscription_services.subscription_set_status(
            subscription=subscription, status=status, reason=reasons[status], now=now
        )
    return subscription


def _due_on(invoice: Invoice) -> str:
    """`1 May 2026`, in the timezone frozen on the invoice, as the invoice shows it."""
    due_at = invoice.due_at.astimezone(ZoneInfo(invoice.customer_timezone or "UTC"))
    return f"{due_at.day} {due_at:%b %Y}"


def _send_notice(*, invoice: Invoice, notice: Notice, subscription: Subscription | None) -> None:
    suspended = subscription is not None and subscription.status == Subscription.Status.SUSPENDED
    notification_send(
        organization=invoice.organization,
        kind=Notification.Kind.INVOICE_REMINDER,
        dedup_key=f"invoice:{invoice.pk}:reminder:{notice.kind}",
        template=notice.template,
        context=lambda: {
            "invoice": invoice,
            "bank_transfer": bank_transfer_details(invoice=invoice),
            "suspended": suspended,
            "suspends_at": selectors.invoice_suspends_at(invoice=invoice),
            "days_overdue": (notice.at - invoice.due_at).days,
        },
        link=invoice_url(invoice),
        link_label=f"View invoice {invoice.number}",
        data={"invoice_id": invoice.pk, "invoice_number": invoice.number, "notice": notice.kind},
    )
