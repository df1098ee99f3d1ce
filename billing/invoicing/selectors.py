"""Reads of invoices for pages, e-mails and other apps: an organization's invoices, the
invoice document (page, PDF and e-mail alike), how an invoice stands, and the balance."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from djmoney.money import Money

from billing.models import BalanceEntry, Invoice, InvoiceLine, Organization, Referral
from billing.money import round_money


def organization_balance(*, organization: Organization) -> Money:
    """Credit the organization has left to spend: the sum of its ledger."""
    total = BalanceEntry.objects.filter(organization=organization).aggregate(total=Sum("amount"))[
        "total"
    ]
    # Rounded: SQLite sums decimals as floats, which leaves noise past the minor unit.
    return round_money(Money(total or 0, organization.currency))


def invoices_for(*, organization: Organization) -> list[Invoice]:
    """Finalized invoices, newest first (drafts are staff work in progress)."""
    return list(
        Invoice.objects.filter(organization=organization)
        .exclude(status=Invoice.Status.DRAFT)
        .order_by("-issued_at", "-pk")
    )


def invoice_for(*, organization: Organization, number: str) -> Invoice | None:
    return (
        Invoice.objects.filter(organization=organization, number=number)
        .exclude(status=Invoice.Status.DRAFT)
        .first()
    )


def invoice_document(*, invoice: Invoice) -> dict:
    """What the invoice page, its PDF and its e-mail show: header, lines grouped as the
    customer reads them, totals, and corrections."""
    lines = list(invoice.lines.select_related("tax_rate"))
    kinds = InvoiceLine.Kind
    return {
        "invoice": invoice,
        "tz": invoice.customer_timezone or "UTC",
        "charges": [line for line in lines if line.kind in InvoiceLine.CHARGES],
        "discounts": [line for line in lines if line.kind == kinds.DISCOUNT],
        "taxes": [line for line in lines if line.kind == kinds.TAX],
        "credits": [line for line in lines if line.kind in (kinds.CREDIT, kinds.CARRIED)],
        "credit_notes": list(invoice.credit_notes.all()),
        "seller": settings.BILLING_SELLER,
    }


def invoice_settlement(*, invoice: Invoice) -> str:
    """How a finalized invoice stands, as the customer is told: `paid` by a payment (card,
    bank debit or transfer: a method and a confirmation number), `paid_by_credit` (the
    credit balance covered it), `nothing_due` (its total is zero), `due_by_transfer`
    (organizations paying by invoice), `due_by_charge` (being charged to the payment
    methods on file), `void` or `uncollectible`."""
    if invoice.status == Invoice.Status.PAID:
        if invoice.payment_reference:
            return "paid"
        return "paid_by_credit" if invoice.credit_applied.amount else "nothing_due"
    if invoice.status == Invoice.Status.OPEN:
        if invoice.organization.payment_terms == Organization.PaymentTerms.INVOICE:
            return "due_by_transfer"
        return "due_by_charge"
    return invoice.status


def invoice_oldest_open(*, organization: Organization) -> Invoice | None:
    """The open invoice due first: the one to pay to restore service."""
    return (
        Invoice.objects.filter(organization=organization, status=Invoice.Status.OPEN)
        .order_by("due_at", "pk")
        .first()
    )


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    period_label: str  # the days covered, as the invoice itself shows them


def invoice_history(*, organization: Organization) -> list[InvoiceRow]:
    """The invoices page: finalized invoices, newest first, each with its period in the
    timezone frozen on it, like the invoice document."""
    return [
        InvoiceRow(invoice, invoice.period.label(ZoneInfo(invoice.customer_timezone or "UTC")))
        for invoice in invoices_for(organization=organization)
    ]


def invoice_pdf_render(*, invoice: Invoice) -> bytes:
    """The invoice as PDF bytes (weasyprint), from `billing/invoice_pdf.html`."""
    from weasyprint import HTML  # loads Pango: kept out of web processes that never render

    html = render_to_string("billing/invoice_pdf.html", invoice_document(invoice=invoice))
    return HTML(string=html).write_pdf()


# --- referrals ----------------------------------------------------------------------------

_REFERRAL_SALT = "billing.referral"


def referral_code(*, organization: Organization) -> str:
    """The organization's referral code: its id, signed, so codes cannot be made up."""
    return signing.Signer(salt=_REFERRAL_SALT).sign(organization.slug)


def referral_organization(*, code: str) -> Organization | None:
    """The organization a referral code stands for, or None for a code not ours."""
    try:
        slug = signing.Signer(salt=_REFERRAL_SALT).unsign(code)
    except signing.BadSignature:
        return None
    return Organization.objects.filter(slug=slug).first()


@dataclass(frozen=True)
class ReferralSummary:
    code: str
    referred: list[Referral]  # the organizations it referred, newest first
    referred_by: Referral | None  # how the organization itself joined, if referred


def referral_summary(*, organization: Organization) -> ReferralSummary:
    """One query: the referrals the organization made, and the one that brought it."""
    rows = list(
        Referral.objects.filter(Q(referrer=organization) | Q(referred=organization))
        .select_related("referrer", "referred")
        .order_by("-created_at", "-pk")
    )
    return ReferralSummary(
        code=referral_code(organization=organization),
        referred=[row for row in rows if row.referrer_id == organization.pk],
        referred_by=next((row for row in rows if row.referred_id == organization.pk), None),
    )
