"""Reads of invoices for pages, e-mails and other apps: an organization's invoices, the
invoice document (page, PDF and e-mail alike), how an invoice stands, and the balance."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from djmoney.money import Money

from billing.invoicing import pricing
from billing.invoicing.pricing import LineDraft
from billing.models import (
    BalanceEntry,
    Coupon,
    Discount,
    Invoice,
    InvoiceLine,
    Organization,
    Plan,
    Referral,
    TaxRate,
)
from billing.money import round_money
from billing.subscriptions import periods


def organization_balance(*, organization: Organization) -> Money:
    """Credit the organization has left to spend: the sum of its ledger."""
    total = BalanceEntry.objects.filter(organization=organization).aggregate(total=Sum("amount"))[
        "total"
    ]
    # Rounded: SQLite sums decimals as floats, which leaves noise past the minor unit.
    return round_money(Money(total or 0, organization.currency))


@dataclass(frozen=True)
class IssueFacts:
    """What issuing an invoice reads about its organization, read for many organizations at
    once (the renewal job's chunk): its tax rates, and whether it has a discount or a ledger
    at all. A discount or a balance that is there is still read under its lock."""

    rates: list[TaxRate]
    has_discount: bool
    has_ledger: bool


def issue_facts_for(*, organizations: Sequence[Organization]) -> dict[int, IssueFacts]:
    """`IssueFacts` by organization id, in three queries whatever how many organizations."""
    ids = [organization.pk for organization in organizations]
    with_discount = set(
        Discount.objects.filter(organization__in=ids, ended_at__isnull=True).values_list(
            "organization_id", flat=True
        )
    )
    with_ledger = set(
        BalanceEntry.objects.filter(organization__in=ids).values_list("organization_id", flat=True)
    )
    countries = {organization.country for organization in organizations}
    rates = list(
        TaxRate.objects.filter(country__in=countries, is_active=True).order_by("name", "pk")
    )
    return {
        organization.pk: IssueFacts(
            rates=[
                rate
                for rate in rates
                if rate.country == organization.country
                and rate.region.upper() in ("", organization.region.upper())
            ],
            has_discount=organization.pk in with_discount,
            has_ledger=organization.pk in with_ledger,
        )
        for organization in organizations
    }


def tax_rates_for(*, organization: Organization) -> list[TaxRate]:
    """The active tax rates of the organization's billing address: its country's, and its
    region's if it has any."""
    return list(
        TaxRate.objects.filter(
            Q(region="") | Q(region__iexact=organization.region),
            country=organization.country,
            is_active=True,
        ).order_by("name", "pk")
    )


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


def invoices_latest(*, organization: Organization, count: int = 3) -> list[InvoiceRow]:
    """The `count` newest finalized invoices, as the invoices page lists them."""
    invoices = (
        Invoice.objects.filter(organization=organization)
        .exclude(status=Invoice.Status.DRAFT)
        .order_by("-issued_at", "-pk")[:count]
    )
    return [
        InvoiceRow(invoice, invoice.period.label(ZoneInfo(invoice.customer_timezone or "UTC")))
        for invoice in invoices
    ]


def invoice_history(*, organization: Organization) -> list[InvoiceRow]:
    """The invoices page: finalized invoices, newest first, each with its period in the
    timezone frozen on it, like the invoice document."""
    return [
        InvoiceRow(invoice, invoice.period.label(ZoneInfo(invoice.customer_timezone or "UTC")))
        for invoice in invoices_for(organization=organization)
    ]


_pdf_tools = threading.local()


@functools.cache
def _pdf_stylesheet_source() -> str:
    """The PDF's styles: the document's own and its print layout."""
    return render_to_string("billing/_invoice_document.css") + render_to_string(
        "billing/invoice_pdf.css"
    )


def _pdf_fonts_and_stylesheet():
    """The fonts (Pango's, with the glyphs they have shaped) and the stylesheet (the
    document's styles and the PDF's print layout), made once per thread and kept: they are
    the same for every invoice, and Pango's font map is not shared between threads."""
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    if not hasattr(_pdf_tools, "fonts"):
        _pdf_tools.fonts = FontConfiguration()
        _pdf_tools.stylesheet = CSS(string=_pdf_stylesheet_source(), font_config=_pdf_tools.fonts)
    return _pdf_tools.fonts, _pdf_tools.stylesheet


def invoice_pdf_html(*, invoice: Invoice) -> str:
    """The HTML the PDF is made from (`billing/invoice_pdf.html`)."""
    return render_to_string("billing/invoice_pdf.html", invoice_document(invoice=invoice))


def invoice_pdf_fingerprint(*, html: str) -> str:
    """Names what a PDF made from `html` shows: anything that changes it (paid, void, a
    credit note, bank transfer details, the template or its styles) changes the name."""
    content = (_pdf_stylesheet_source() + html).encode()
    return hashlib.sha256(content).hexdigest()[:16]


def invoice_pdf_layout(*, invoice: Invoice, html: str | None = None):
    """The invoice laid out in pages (a weasyprint `Document`), from its `invoice_pdf_html`
    (given, or rendered here)."""
    from weasyprint import HTML  # loads Pango: kept out of web processes that never render

    fonts, stylesheet = _pdf_fonts_and_stylesheet()
    html = invoice_pdf_html(invoice=invoice) if html is None else html
    return HTML(string=html).render(stylesheets=[stylesheet], font_config=fonts)


def invoice_pdf_render(*, invoice: Invoice, html: str | None = None) -> bytes:
    """The invoice as PDF bytes (weasyprint), from its `invoice_pdf_html` (given, or
    rendered here)."""
    return invoice_pdf_layout(invoice=invoice, html=html).write_pdf()


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


# --- the next invoice, before it is issued --------------------------------------------------


class NumberFeeFacts(Protocol):
    """One phone number's fee for a usage month, as the usage app measures it."""

    phone_number: object  # .number, .is_vanity, .monthly_fee, .get_number_type_display()
    charged: periods.Period
    amount: Money
    is_free: bool
    is_prorated: bool


def usage_month_lines(
    *,
    plan: Plan,
    period: periods.Period,
    tz: ZoneInfo,
    used_seconds: int,
    call_overage_cost: Money,
    storage_peak_bytes: int,
    storage_peak_gib: Decimal,
    storage_overage_gib: Decimal,
    number_fees: Sequence[NumberFeeFacts],
) -> list[LineDraft]:
    """A usage month's lines in arrears, from what the usage app measured: call overage,
    storage overage on the month's peak, one line per phone number. Renewal invoices them;
    the upcoming invoice shows them before."""
    label = period.label(tz)
    call_line = pricing.call_overage_line(
        plan=plan, period=period, label=label, used_seconds=used_seconds, cost=call_overage_cost
    )
    lines = [call_line] if call_line else []
    if storage_overage_gib:
        lines.append(
            pricing.storage_overage_line(
                plan=plan,
                period=period,
                label=label,
                peak_bytes=storage_peak_bytes,
                peak_gib=storage_peak_gib,
                overage_gib=storage_overage_gib,
            )
        )
    for fee in number_fees:
        number = fee.phone_number
        lines.append(
            pricing.phone_number_line(
                number=number.number,
                type_label=number.get_number_type_display(),
                is_vanity=number.is_vanity,
                monthly_fee=number.monthly_fee,
                amount=fee.amount,
                charged=fee.charged,
                is_free=fee.is_free,
                is_prorated=fee.is_prorated,
                label=label,
                tz=tz,
            )
        )
    return lines


def usage_month_fee_line(*, plan: Plan, period: periods.Period, tz: ZoneInfo) -> LineDraft:
    """The plan's fee for one usage month, the renewal's fee line at the plan's monthly
    equivalent (an annual plan's fee spread over its months): what a month's spend counts."""
    fee = pricing.subscription_fee_line(plan=plan, period=period, tz=tz)
    return dataclasses.replace(fee, unit_price=plan.monthly_equivalent)


@dataclass(frozen=True)
class PricingTerms:
    """What completes an organization's invoices as of now: its coupon, its tax rates and
    its credit balance."""

    coupon: Coupon | None
    rates: list[TaxRate]
    balance: Money


def pricing_terms_for(*, organization: Organization) -> PricingTerms:
    discount = (
        Discount.objects.select_related("coupon")
        .filter(organization=organization, ended_at__isnull=True)
        .first()
    )
    return PricingTerms(
        coupon=discount.coupon if discount else None,
        rates=tax_rates_for(organization=organization),
        balance=organization_balance(organization=organization),
    )


@dataclass(frozen=True)
class InvoicePreview:
    """An invoice as issuing would write it now, without writing anything: its lines
    (unsaved, rounded once, in the order the invoice lists them) and totals."""

    lines: list[InvoiceLine]
    subtotal: Money  # the charges after the discount
    tax_total: Money
    credit_applied: Money
    total: Money

    @property
    def owed_before_credits(self) -> Money:
        return self.subtotal + self.tax_total


def invoice_preview(
    *, organization: Organization, drafts: list[LineDraft], terms: PricingTerms
) -> InvoicePreview:
    """Complete `drafts` the way issuing an invoice does (the same discount, tax and credit
    rules, `pricing.invoice_completion` and `pricing.balance_line`), under `terms`."""
    currency = organization.currency
    invoice = Invoice(organization=organization)
    lines = [draft.build(invoice, n) for n, draft in enumerate(drafts)]
    completion = pricing.invoice_completion(
        lines=lines, coupon=terms.coupon, rates=terms.rates, currency=currency
    )
    lines += [draft.build(invoice, len(lines) + n) for n, draft in enumerate(completion.lines)]
    balance_draft = pricing.balance_line(owed=completion.owed, available=terms.balance)
    credit_applied = Money(0, currency)
    if balance_draft:
        lines.append(balance_draft.build(invoice, len(lines)))
        if balance_draft.kind == InvoiceLine.Kind.CREDIT:
            credit_applied = -balance_draft.unit_price
    return InvoicePreview(
        lines=lines,
        subtotal=completion.subtotal,
        tax_total=completion.tax_total,
        credit_applied=credit_applied,
        total=pricing.lines_total(lines, currency),
    )
