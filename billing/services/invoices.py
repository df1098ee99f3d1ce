"""Invoices: drafting lines, finalizing (discounts, taxes, credits, a gapless number),
voiding, credit notes, and the customer balance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django_q.tasks import async_task
from djmoney.money import Money
from sequences import get_next_value

from billing import locks, periods
from billing.errors import BillingError, ErrorCode
from billing.models import (
    BalanceEntry,
    Coupon,
    CreditNote,
    Discount,
    Invoice,
    InvoiceLine,
    Organization,
    Plan,
    Subscription,
    TaxRate,
)
from billing.money import format_percent, round_money

CHARGES = InvoiceLine.CHARGES


def _zero(currency: str) -> Money:
    return Money(0, currency)


def _gapless_number(prefix: str, now: dt.datetime) -> str:
    """`INV-2026-000123`: consecutive within a year. Drawn inside the caller's transaction,
    so a rollback returns the number and none is ever skipped or used twice."""
    year = now.astimezone(dt.UTC).year
    return f"{prefix}-{year}-{get_next_value(f'{prefix.lower()}-{year}'):06d}"


# --- drafting and finalizing ----------------------------------------------------------


@dataclass
class LineDraft:
    """A line before it is written: built in memory, written once when the invoice is issued."""

    kind: str
    description: str
    unit_price: Money
    quantity: Decimal | int = 1
    amount: Money | None = None  # default: quantity × unit price
    period: periods.Period | None = None
    details: dict[str, Any] = field(default_factory=dict)
    tax_rate: TaxRate | None = None

    def build(self, invoice: Invoice, position: int) -> InvoiceLine:
        amount = (
            self.amount if self.amount is not None else self.unit_price * Decimal(self.quantity)
        )
        return InvoiceLine(
            invoice=invoice,
            kind=self.kind,
            description=self.description,
            quantity=Decimal(self.quantity),
            unit_price=self.unit_price,
            amount=round_money(amount),  # rounded once, half-up, to the minor unit
            period_start=self.period.start if self.period else None,
            period_end=self.period.end if self.period else None,
            position=position,
            details=self.details,
            tax_rate=self.tax_rate,
        )


def _sum(lines, currency: str) -> Money:
    return sum((line.amount for line in lines), _zero(currency))


def _discount_line(invoice: Invoice, charges: Money, now: dt.datetime) -> LineDraft | None:
    """The organization's coupon, on the charges, before tax."""
    discount = (
        locks.discount_lock()
        .select_related("coupon")
        .filter(organization=invoice.organization_id, ended_at__isnull=True)
        .first()
    )
    if discount is None or charges.amount <= 0:
        return None
    coupon = discount.coupon
    if coupon.percent_off is not None:
        off = round_money(charges * coupon.percent_off / 100)
    else:
        off = min(coupon.amount_off, charges)
    discount.periods_used += 1
    if coupon.periods is not None and discount.periods_used >= coupon.periods:
        discount.ended_at = now
    discount.save(update_fields=["periods_used", "ended_at"])
    return LineDraft(
        InvoiceLine.Kind.DISCOUNT, f"Discount: {coupon}", -off, details={"coupon": coupon.code}
    )


def _tax_lines(
    organization: Organization, lines: list[InvoiceLine], charges: Money, discount: Money
) -> list[LineDraft]:
    """One line per active tax rate of the billing address, $0.00 included: its rate of the
    rounded taxable subtotal of the line kinds it covers, after their proportional share of
    the discount. Credits among those lines (a proration for unused time) reduce it, so a
    net credit gives back the tax charged on what it credits."""
    currency = organization.currency
    rates = TaxRate.objects.filter(
        Q(region="") | Q(region__iexact=organization.region),
        country=organization.country,
        is_active=True,
    ).order_by("name", "pk")
    drafts = []
    for rate in rates:
        covered = _sum((line for line in lines if line.kind in rate.applies_to), currency)
        # A discount only exists on positive charges, so the division is safe.
        share_of_discount = (
            discount * (covered.amount / charges.amount) if discount.amount else discount
        )
        taxable = round_money(covered + share_of_discount)
        drafts.append(
            LineDraft(
                InvoiceLine.Kind.TAX,
                f"{rate.name} {format_percent(rate.percentage)}% of {taxable}",
                round_money(taxable * rate.percentage / 100),
                tax_rate=rate,
                details={"rate": str(rate.percentage), "taxable": str(taxable.amount)},
            )
        )
    return drafts


def organization_balance(*, organization: Organization) -> Money:
    """Credit the organization has left to spend: the sum of its ledger."""
    total = BalanceEntry.objects.filter(organization=organization).aggregate(total=Sum("amount"))[
        "total"
    ]
    # Rounded: SQLite sums decimals as floats, which leaves noise past the minor unit.
    return round_money(Money(total or 0, organization.currency))


def _credit_line(invoice: Invoice, owed: Money, now: dt.datetime) -> LineDraft | None:
    """Credits pay the total after tax; what is not needed carries forward."""
    organization = invoice.organization
    if organization_balance(organization=organization).amount <= 0:
        return None
    # The organization's row serializes spending its balance: no credit is spent twice.
    locks.organization_lock().filter(pk=organization.pk).first()
    available = organization_balance(organization=organization)
    credit = min(available, owed)
    if credit.amount <= 0:
        return None
    BalanceEntry.objects.create(
        organization=organization,
        kind=BalanceEntry.Kind.APPLIED,
        amount=-credit,
        description=f"Applied to the invoice for {invoice.period.label(organization.tzinfo)}",
        invoice=invoice,
        created_at=now,
    )
    rest = available - credit
    return LineDraft(
        InvoiceLine.Kind.CREDIT,
        f"Credit from your balance ({rest} left for later invoices)",
        -credit,
    )


def _carried_line(invoice: Invoice, surplus: Money, now: dt.datetime) -> LineDraft:
    """The invoice's credits exceed its charges: the surplus is the customer's money, so it
    goes to the balance and pays the next invoices, and this one's total is zero."""
    BalanceEntry.objects.create(
        organization=invoice.organization,
        kind=BalanceEntry.Kind.CARRIED,
        amount=surplus,
        description=f"Carried from invoice {invoice.number}",
        invoice=invoice,
        created_at=now,
    )
    return LineDraft(
        InvoiceLine.Kind.CARRIED, "Carried to your credit balance for your next invoices", surplus
    )


def _finalize(
    invoice: Invoice, drafts: list[LineDraft], now: dt.datetime, existing: list[InvoiceLine]
) -> Invoice:
    """Complete the invoice with discount, taxes and credit, give it its number, freeze the
    customer's details, and open it (or mark it paid when nothing is owed)."""
    organization = invoice.organization
    currency = organization.currency
    lines = existing + [draft.build(invoice, len(existing) + n) for n, draft in enumerate(drafts)]
    charges = _sum((line for line in lines if line.kind in CHARGES), currency)
    discount_draft = _discount_line(invoice, charges, now)
    discount = discount_draft.unit_price if discount_draft else _zero(currency)
    extra = ([discount_draft] if discount_draft else []) + _tax_lines(
        organization, lines, charges, discount
    )
    lines += [draft.build(invoice, len(lines) + n) for n, draft in enumerate(extra)]
    subtotal = charges + discount
    tax_total = _sum((line for line in lines if line.kind == InvoiceLine.Kind.TAX), currency)
    invoice.number = _gapless_number("INV", now)
    owed = subtotal + tax_total
    if owed.amount < 0:
        balance_draft = _carried_line(invoice, -owed, now)
    else:
        balance_draft = _credit_line(invoice, owed, now)
    if balance_draft:
        lines.append(balance_draft.build(invoice, len(lines)))
    InvoiceLine.objects.bulk_create([line for line in lines if line.pk is None])

    invoice.subtotal = subtotal
    invoice.tax_total = tax_total
    invoice.credit_applied = invoice.credit_carried = _zero(currency)
    if balance_draft and balance_draft.kind == InvoiceLine.Kind.CREDIT:
        invoice.credit_applied = -balance_draft.unit_price
    elif balance_draft:
        invoice.credit_carried = balance_draft.unit_price
    invoice.total = _sum(lines, currency)
    invoice.customer_name = organization.name
    invoice.customer_address = "\n".join(organization.address_lines)
    invoice.customer_tax_id = organization.tax_id
    invoice.customer_emails = ", ".join(organization.billing_email_list)
    invoice.customer_timezone = organization.timezone
    invoice.issued_at = now
    invoice.due_at = (
        now + dt.timedelta(days=organization.net_days)
        if organization.payment_terms == Organization.PaymentTerms.INVOICE
        else now
    )
    if invoice.total.amount > 0:
        invoice.status = Invoice.Status.OPEN
    else:
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = now
        if invoice.credit_applied.amount:
            invoice.payment_method_description = "Customer balance"
    invoice.save()
    transaction.on_commit(lambda: async_task("billing.tasks.invoice_deliver", invoice.pk))
    if (
        invoice.status == Invoice.Status.OPEN
        and organization.payment_terms == Organization.PaymentTerms.AUTOMATIC
    ):
        # By name: the payments app builds on billing, not the other way round.
        transaction.on_commit(lambda: async_task("payments.tasks.invoice_collect", invoice.pk))
    return invoice


def invoice_issue(
    *,
    organization: Organization,
    subscription: Subscription | None,
    kind: str,
    period: periods.Period,
    lines: list[LineDraft],
    now: dt.datetime,
) -> Invoice | None:
    """Write and finalize an invoice of `lines` in the caller's transaction. None when there
    is nothing to invoice."""
    if not lines:
        return None
    zero = _zero(organization.currency)
    invoice = Invoice.objects.create(
        organization=organization,
        subscription=subscription,
        kind=kind,
        period_start=period.start,
        period_end=period.end,
        subtotal=zero,
        tax_total=zero,
        total=zero,
        credit_applied=zero,
        credit_carried=zero,
        created_at=now,
    )
    return _finalize(invoice, lines, now, existing=[])


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, now: dt.datetime | None = None) -> Invoice:
    """Finalize a draft invoice that staff put together line by line."""
    now = now or timezone.now()
    invoice = locks.invoice_lock().select_related("organization").get(pk=invoice.pk)
    if invoice.is_finalized:
        raise BillingError(ErrorCode.INVOICE_FINALIZED, f"{invoice} is already finalized.")
    return _finalize(invoice, [], now, existing=list(invoice.lines.all()))


def subscription_fee_line(*, plan: Plan, period: periods.Period, tz) -> LineDraft:
    return LineDraft(
        InvoiceLine.Kind.SUBSCRIPTION,
        f"{plan.name} plan ({plan.get_interval_display().lower()}), {period.label(tz)}",
        plan.price,
        period=period,
    )


# --- corrections ------------------------------------------------------------------------


@transaction.atomic
def invoice_void(
    *, invoice: Invoice, reason: str, actor=None, now: dt.datetime | None = None
) -> Invoice:
    """Cancel an open invoice. Credit it had used goes back to the balance."""
    now = now or timezone.now()
    invoice = locks.invoice_lock().get(pk=invoice.pk)
    if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE):
        raise BillingError(
            ErrorCode.INVOICE_NOT_VOIDABLE,
            f"Only open invoices can be voided; {invoice} is {invoice.get_status_display().lower()}.",
        )
    if not reason.strip():
        raise BillingError(ErrorCode.REASON_REQUIRED, "Say why the invoice is voided.")
    invoice.status = Invoice.Status.VOID
    invoice.voided_at = now
    invoice.void_reason = reason
    invoice.pdf = ""  # the cached document says "amount due": render it again, stamped void
    invoice.save(update_fields=["status", "voided_at", "void_reason", "pdf"])
    if invoice.credit_applied.amount > 0:
        BalanceEntry.objects.create(
            organization=invoice.organization,
            kind=BalanceEntry.Kind.RETURNED,
            amount=invoice.credit_applied,
            description=f"Credit returned from voided invoice {invoice.number}",
            invoice=invoice,
            created_at=now,
            created_by=actor,
        )
    return invoice


@transaction.atomic
def invoice_mark_paid(
    *, invoice: Invoice, paid_at: dt.datetime, reference: str, method_description: str
) -> Invoice:
    """Settle an open invoice: when, how, and the confirmation number to show."""
    invoice = locks.invoice_lock().get(pk=invoice.pk)
    if invoice.status == Invoice.Status.PAID:
        return invoice
    if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE):
        raise BillingError(
            ErrorCode.INVOICE_NOT_PAYABLE, f"{invoice} is {invoice.get_status_display().lower()}."
        )
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = paid_at
    invoice.payment_reference = reference
    invoice.payment_method_description = method_description
    invoice.pdf = ""  # the cached document says "amount due": render it again as paid
    invoice.save(
        update_fields=[
            "status",
            "paid_at",
            "payment_reference",
            "payment_method_description",
            "pdf",
        ]
    )
    return invoice


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice,
    amount: Money,
    reason: str,
    actor=None,
    now: dt.datetime | None = None,
    credit_balance: bool = True,
) -> CreditNote:
    """Correct a finalized invoice. The amount is credited to the customer's balance, to pay
    future invoices, unless it documents a refund (`credit_balance=False`): then the money
    goes back through the processor instead. The invoice itself stays exactly as issued."""
    now = now or timezone.now()
    invoice = locks.invoice_lock().get(pk=invoice.pk)
    if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.PAID):
        raise BillingError(ErrorCode.INVOICE_NOT_CREDITABLE)
    credited = invoice.credit_notes.aggregate(total=Sum("amount"))["total"] or 0
    creditable = invoice.total + invoice.credit_applied - Money(credited, invoice.currency)
    if amount.amount <= 0 or amount > creditable:
        raise BillingError(
            ErrorCode.CREDIT_NOTE_TOO_LARGE,
            f"A credit note for {invoice} can be at most {creditable}.",
            creditable=str(creditable.amount),
        )
    if not reason.strip():
        raise BillingError(ErrorCode.REASON_REQUIRED, "Say why the invoice is corrected.")
    credit_note = CreditNote.objects.create(
        number=_gapless_number("CN", now),
        invoice=invoice,
        amount=round_money(amount),
        reason=reason,
        issued_at=now,
        created_by=actor,
    )
    if not credit_balance:
        return credit_note
    BalanceEntry.objects.create(
        organization=invoice.organization,
        kind=BalanceEntry.Kind.CREDIT_NOTE,
        amount=credit_note.amount,
        description=f"Credit note {credit_note.number} for {invoice.number}: {reason}",
        invoice=invoice,
        credit_note=credit_note,
        created_at=now,
        created_by=actor,
    )
    return credit_note


def balance_credit_grant(
    *,
    organization: Organization,
    kind: str,
    amount: Money,
    description: str,
    actor=None,
    now: dt.datetime | None = None,
) -> BalanceEntry:
    """Give an organization credit (promotional, referral, goodwill) for future invoices."""
    if kind not in (
        BalanceEntry.Kind.PROMOTIONAL,
        BalanceEntry.Kind.REFERRAL,
        BalanceEntry.Kind.GOODWILL,
    ):
        raise BillingError(ErrorCode.INVALID_CREDIT_KIND)
    if str(amount.currency) != organization.currency:
        raise BillingError(
            ErrorCode.CURRENCY_MISMATCH, f"{organization} bills in {organization.currency}."
        )
    return BalanceEntry.objects.create(
        organization=organization,
        kind=kind,
        amount=round_money(amount),
        description=description,
        created_at=now or timezone.now(),
        created_by=actor,
    )


@transaction.atomic
def discount_apply(
    *, organization: Organization, coupon: Coupon, now: dt.datetime | None = None
) -> Discount:
    """Give `coupon` to an organization: it discounts its next invoices, before tax."""
    if not coupon.is_active:
        raise BillingError(ErrorCode.COUPON_INACTIVE, f"{coupon.code} can no longer be given.")
    if coupon.amount_off is not None and str(coupon.amount_off.currency) != organization.currency:
        raise BillingError(
            ErrorCode.CURRENCY_MISMATCH, f"{organization} bills in {organization.currency}."
        )
    if Discount.objects.filter(organization=organization, ended_at__isnull=True).exists():
        raise BillingError(ErrorCode.DISCOUNT_EXISTS, f"{organization} already has a discount.")
    return Discount.objects.create(
        organization=organization, coupon=coupon, created_at=now or timezone.now()
    )
