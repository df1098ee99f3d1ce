"""How to pay an open invoice by bank transfer, on the invoice page and its PDF."""

from django import template
from django.template.loader import render_to_string

from billing.models import Invoice, Organization
from payments.reminders import bank_transfer_details

register = template.Library()


@register.simple_tag
def bank_transfer_instructions(invoice: Invoice) -> str:
    """The account and reference to pay into, for an open invoice of an organization paying
    by invoice; nothing otherwise (automatic payers are charged, settled invoices are paid)."""
    if (
        invoice.status != Invoice.Status.OPEN
        or invoice.organization.payment_terms != Organization.PaymentTerms.INVOICE
    ):
        return ""
    return render_to_string(
        "payments/_bank_transfer_instructions.html",
        {"invoice": invoice, "details": bank_transfer_details(invoice=invoice)},
    )


@register.simple_tag
def bank_transfer_details_for(invoice: Invoice) -> list[tuple[str, str]]:
    """The same details as (label, value) pairs, for e-mails to lay out as they need."""
    return bank_transfer_details(invoice=invoice)
