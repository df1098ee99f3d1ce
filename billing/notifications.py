"""E-mails to an organization's billing contacts. Called after commit, never inside one."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from billing.models import Invoice, Subscription


def send_to_billing_contacts(
    *, organization, template: str, context: dict, attachments: list | None = None
) -> None:
    context = {"organization": organization, **context}
    subject = render_to_string(f"emails/{template}_subject.txt", context).strip()
    body = render_to_string(f"emails/{template}.txt", context)
    EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=organization.billing_email_list,
        attachments=attachments or [],
    ).send()


def send_status_changed(*, subscription: Subscription, previous: str, reason: str) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="subscription_status_changed",
        context={
            "subscription": subscription,
            "previous": Subscription.Status(previous).label,
            "reason": reason,
        },
    )


def send_invoice(*, invoice: Invoice, pdf: bytes) -> None:
    send_to_billing_contacts(
        organization=invoice.organization,
        template="invoice_issued",
        context={"invoice": invoice, "lines": list(invoice.lines.all())},
        attachments=[(f"{invoice.number}.pdf", pdf, "application/pdf")],
    )


def send_plan_change(*, subscription: Subscription, preview) -> None:
    """The admin changed plans: what changes, when, and what it costs."""
    send_to_billing_contacts(
        organization=subscription.organization,
        template="plan_change",
        context={"subscription": subscription, "preview": preview},
    )


def send_plan_change_applied(*, subscription: Subscription, previous, removals) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="plan_change_applied",
        context={"subscription": subscription, "previous": previous, "removals": removals},
    )


def send_cancellation(*, subscription: Subscription) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="cancellation",
        context={
            "subscription": subscription,
            "last_day": subscription.billing_period.last_day(subscription.tzinfo),
            "retention_days": settings.DATA_RETENTION_DAYS,
        },
    )


def send_cancellation_reversed(*, subscription: Subscription) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="cancellation_reversed",
        context={
            "subscription": subscription,
            "renews_on": subscription.current_period_end.astimezone(subscription.tzinfo).date(),
        },
    )


def send_trial_ending(*, subscription: Subscription) -> None:
    send_to_billing_contacts(
        organization=subscription.organization,
        template="trial_ending",
        context={
            "subscription": subscription,
            "ends_on": subscription.trial_ends_at.astimezone(subscription.tzinfo).date(),
        },
    )
