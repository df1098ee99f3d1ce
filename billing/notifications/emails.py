"""The e-mail channel: a notice rendered as a plain-text and an HTML part (`emails/<name>.txt`
and `.html`, on the shared layouts `emails/base.txt` and `emails/base.html`), naming the
organization and linking to the page it talks about (`SITE_URL`)."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from billing.invoicing import selectors as invoicing_selectors
from billing.models import Invoice, Organization

# What a mail server that is down or refusing raises: worth another try later. Anything else
# (a template error, say) is a bug that retrying would only repeat.
MAIL_ERRORS = (smtplib.SMTPException, OSError)


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
    """Subject, text, HTML and in-app summary of a notice, and the billing contacts it goes to."""
    context = {
        "organization": organization,
        "tzname": organization.timezone,
        "link": link,
        "link_label": link_label,
        "seller": settings.BILLING_SELLER,
        "settings_link": absolute_url("notifications:settings", organization.slug),
        **context,
    }
    context["subject"] = " ".join(
        render_to_string(f"emails/{template}_subject.txt", context).split()
    )
    return {
        "subject": context["subject"],
        "body": render_to_string(f"emails/{template}.txt", context),
        "html": render_to_string(f"emails/{template}.html", context),
        # The message alone, without greeting and signature: what the notification center shows.
        "summary": render_to_string(
            f"emails/{template}.txt", {**context, "summary_only": True}
        ).strip(),
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


def invoice_email_context(*, invoice: Invoice) -> dict:
    document = invoicing_selectors.invoice_document(invoice=invoice)
    return {
        **document,
        "tzname": document["tz"],  # as frozen on the invoice
        "settlement": invoicing_selectors.invoice_settlement(invoice=invoice),
    }


def invoice_email(*, invoice: Invoice) -> dict:
    """The e-mail that carries a finalized invoice, telling how it stands: paid (by which
    method, with the confirmation number), paid from the credit balance, or due."""
    return email_render(
        organization=invoice.organization,
        template="invoice_issued",
        context=invoice_email_context(invoice=invoice),
        link=invoice_url(invoice),
        link_label=f"View invoice {invoice.number}",
    )
