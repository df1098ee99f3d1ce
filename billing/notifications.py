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
