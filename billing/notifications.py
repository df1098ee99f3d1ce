"""E-mails to an organization's billing contacts.

An e-mail is rendered once the transaction that caused it has committed, so it tells what was
committed, and is sent by a django-q2 task (`billing.tasks.email_send`) that tries a refused
send again later (`EMAIL_RETRY_MINUTES`). A mail server that is down delays the e-mail and
nothing else: no e-mail is sent inside a transaction, and the queueing is `robust`, so the
work the same commit queued after it (charging an invoice, say) still runs.

Every e-mail has a plain-text part and an HTML part (`emails/<name>.txt` and `.html`, on the
shared layouts `emails/base.txt` and `emails/base.html`), names the organization, and links
to the page it talks about (`SITE_URL`).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django_q.tasks import async_task

from billing.invoicing import selectors as invoicing_selectors
from billing.models import Invoice, Organization, Subscription
from billing.subscriptions import selectors as subscription_selectors


def absolute_url(view_name: str, *args) -> str:
    """The page's address as a person opens it from an e-mail."""
    return f"{settings.SITE_URL}{reverse(view_name, args=args)}"


def overview_url(organization: Organization) -> str:
    return absolute_url("billing:overview", organization.slug)


def invoice_url(invoice: Invoice) -> str:
    return absolute_url("billing:invoice", invoice.organization.slug, invoice.number)


def email_render(
    *, organization: Organization, template: str, context: dict, link: str, link_label: str
) -> dict:
    """Subject, text and HTML of an e-mail to the billing contacts, as the task sends it."""
    context = {
        "organization": organization,
        "tzname": organization.timezone,
        "link": link,
        "link_label": link_label,
        "seller": settings.BILLING_SELLER,
        **context,
    }
    context["subject"] = " ".join(
        render_to_string(f"emails/{template}_subject.txt", context).split()
    )
    return {
        "subject": context["subject"],
        "body": render_to_string(f"emails/{template}.txt", context),
        "html": render_to_string(f"emails/{template}.html", context),
        "to": organization.billing_email_list,
    }


def email_send(*, message: dict, attachments: list | None = None) -> None:
    """Hand a rendered e-mail to the mail server; raises when it is refused."""
    email = EmailMultiAlternatives(
        subject=message["subject"],
        body=message["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=message["to"],
        attachments=attachments or [],
    )
    email.attach_alternative(message["html"], "text/html")
    email.send()


def send_to_billing_contacts(
    *,
    organization: Organization,
    template: str,
    context: dict | Callable[[], dict],
    link: str | None = None,
    link_label: str = "Open your billing page",
) -> None:
    """When the current transaction commits (at once outside one), render the e-mail and
    queue its sending. A `context` that is a function is read then, so reads stay out of the
    transaction; facts that may change before then are read by the caller and closed over.
    The link defaults to the organization's billing overview."""

    def queue() -> None:
        message = email_render(
            organization=organization,
            template=template,
            context=context() if callable(context) else context,
            link=link or overview_url(organization),
            link_label=link_label,
        )
        async_task("billing.tasks.email_send", message)

    transaction.on_commit(queue, robust=True)


def send_status_changed(*, subscription: Subscription, previous: str, reason: str) -> None:
    organization = subscription.organization
    status = subscription.status
    send_to_billing_contacts(
        organization=organization,
        template="subscription_status_changed",
        context=lambda: {
            "subscription": subscription,
            "status": status,
            "status_label": Subscription.Status(status).label,
            "previous_label": Subscription.Status(previous).label,
            "reason": reason,
            "retention_days": settings.DATA_RETENTION_DAYS,
            "open_invoice": invoicing_selectors.invoice_oldest_open(organization=organization),
        },
    )


def invoice_email(*, invoice: Invoice) -> dict:
    """The e-mail that carries a finalized invoice, telling how it stands: paid (by which
    method, with the confirmation number), paid from the credit balance, or due."""
    document = invoicing_selectors.invoice_document(invoice=invoice)
    return email_render(
        organization=invoice.organization,
        template="invoice_issued",
        context={
            **document,
            "tzname": document["tz"],  # as frozen on the invoice
            "settlement": invoicing_selectors.invoice_settlement(invoice=invoice),
        },
        link=invoice_url(invoice),
        link_label=f"View invoice {invoice.number}",
    )


def send_plan_change(*, subscription: Subscription, preview) -> None:
    """The admin changed plans: what changes, when, and what it costs."""
    send_to_billing_contacts(
        organization=subscription.organization,
        template="plan_change",
        context=lambda: {
            "subscription": subscription,
            "preview": preview,
            "prorations_invoiced_now": settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY,
            "pending_change": (
                subscription_selectors.pending_change(subscription=subscription, preview=preview)
                if subscription.scheduled_plan_id
                else None
            ),
        },
    )


def send_plan_change_applied(*, subscription: Subscription, previous, removals) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="plan_change_applied",
        context=lambda: {"subscription": subscription, "previous": previous, "removals": removals},
    )


def send_cancellation(*, subscription: Subscription) -> None:
    organization = subscription.organization
    send_to_billing_contacts(
        organization=organization,
        template="cancellation",
        context=lambda: {
            "subscription": subscription,
            "last_day": subscription.billing_period.last_day(subscription.tzinfo),
            "retention_days": settings.DATA_RETENTION_DAYS,
        },
        link=overview_url(organization),
        link_label="Keep your subscription or export your data",
    )


def send_cancellation_reversed(*, subscription: Subscription) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="cancellation_reversed",
        context=lambda: {
            "subscription": subscription,
            "renews_on": subscription.current_period_end.astimezone(subscription.tzinfo).date(),
        },
    )


def send_trial_ending(*, subscription: Subscription) -> None:
    organization = subscription.organization
    send_to_billing_contacts(
        organization=organization,
        template="trial_ending",
        context=lambda: {
            "subscription": subscription,
            # The trial ends at local midnight: its last day is the one before.
            "last_day": subscription.billing_period.last_day(subscription.tzinfo),
            "starts_on": subscription.trial_ends_at.astimezone(subscription.tzinfo).date(),
        },
        link=absolute_url("billing:plans", organization.slug),
        link_label="Compare plans",
    )
