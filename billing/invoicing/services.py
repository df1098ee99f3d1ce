"""Writes of invoices: issuing and finalizing (discounts, taxes, credits, a gapless number),
voiding, settling, credit notes, credits and coupons given, and the stored PDF. The amounts
and texts of the lines come from `pricing`."""

from __future__ import annotations

import datetime as dt
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from djmoney.money import Money
from sequences import get_next_value

from billing import locks
from billing.accounts.services import Actor, staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.invoicing import pricing
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing.pricing import LineDraft
from billing.models import (
    BalanceEntry,
    Coupon,
    CreditNote,
    Discount,
    Invoice,
    InvoiceLine,
    Organization,
    Referral,
    Subscription,
)
from billing.money import round_money
from billing.notifications.invoice_notices import send_invoice_issued
from billing.subscriptions import periods

CHARGES = InvoiceLine.CHARGES


def _zero(currency: str) -> Money:
    return Money(0, currency)


def _gapless_number(prefix: str, now: dt.datetime) -> str:
    """`INV-2026-000123`: consecutive within a year. Drawn inside the caller's transaction,
    so a rollback returns the number and none is ever skipped or used twice."""
    year = now.astimezone(dt.UTC).year
    return f"{prefix}-{year}-{get_next_value(f'{prefix.lower()}-{year}'):06d}"


# --- drafting and finalizing ----------------------------------------------------------


def _discount_locked(organization: Organization) -> Discount | None:
    """The organization's discount, locked: it counts the periods it was used for."""
    return (
        locks.discount_lock()
        .select_related("coupon")
        .filter(organization=organization.pk, ended_at__isnull=True)
        .first()
    )


def _discount_used(discount: Discount, now: dt.datetime) -> None:
    discount.periods_used += 1
    if discount.coupon.periods is not None and discount.periods_used >= discount.coupon.periods:
        discount.ended_at = now
    discount.save(update_fields=["periods_used", "ended_at"])


def _credit_available(organization: Organization, owed: Money, has_ledger: bool) -> Money:
    """The balance an invoice owing `owed` may spend, read under the organization's lock, which
    serializes spending it: no credit is spent twice."""
    zero = _zero(organization.currency)
    if (
        owed.amount < 0
        or not has_ledger
        or invoicing_selectors.organization_balance(organization=organization) <= zero
    ):
        return zero
    locks.organization_lock().filter(pk=organization.pk).first()
    return invoicing_selectors.organization_balance(organization=organization)


def _balance_entry_write(invoice: Invoice, balance_draft: LineDraft, now: dt.datetime) -> None:
    """The ledger's side of the invoice's credit line: credit applied, or a surplus carried."""
    organization = invoice.organization
    if balance_draft.kind == InvoiceLine.Kind.CREDIT:
        kind = BalanceEntry.Kind.APPLIED
        description = f"Applied to the invoice for {invoice.period.label(organization.tzinfo)}"
    else:
        kind = BalanceEntry.Kind.CARRIED
        description = f"Carried from invoice {invoice.number}"
    BalanceEntry.objects.create(
        organization=organization,
        kind=kind,
        amount=balance_draft.unit_price,
        description=description,
        invoice=invoice,
        created_at=now,
    )


def _finalize(
    invoice: Invoice,
    drafts: list[LineDraft],
    now: dt.datetime,
    existing: list[InvoiceLine],
    facts: invoicing_selectors.IssueFacts | None = None,
) -> Invoice:
    """Complete the invoice with discount, taxes and credit, give it its number, freeze the
    customer's details, and open it (or mark it paid when nothing is owed). A new invoice is
    written once, complete; its lines are then inserted in one statement. `facts` read
    beforehand spare the reads of an organization without discount or ledger."""
    organization = invoice.organization
    currency = organization.currency
    lines = existing + [draft.build(invoice, len(existing) + n) for n, draft in enumerate(drafts)]
    discount = _discount_locked(organization) if facts is None or facts.has_discount else None
    completion = pricing.invoice_completion(
        lines=lines,
        coupon=discount.coupon if discount else None,
        rates=(
            facts.rates
            if facts is not None
            else invoicing_selectors.tax_rates_for(organization=organization)
        ),
        currency=currency,
    )
    if completion.discount is not None:
        _discount_used(discount, now)
    lines += [draft.build(invoice, len(lines) + n) for n, draft in enumerate(completion.lines)]
    balance_draft = pricing.balance_line(
        owed=completion.owed,
        available=_credit_available(
            organization, completion.owed, has_ledger=facts is None or facts.has_ledger
        ),
    )
    if balance_draft:
        lines.append(balance_draft.build(invoice, len(lines)))

    invoice.subtotal = completion.subtotal
    invoice.tax_total = completion.tax_total
    invoice.credit_applied = invoice.credit_carried = _zero(currency)
    if balance_draft and balance_draft.kind == InvoiceLine.Kind.CREDIT:
        invoice.credit_applied = -balance_draft.unit_price
    elif balance_draft:
        invoice.credit_carried = balance_draft.unit_price
    invoice.total = pricing.lines_total(lines, currency)
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
    # Drawn last: the sequence's row stays locked until the commit, and every transaction
    # that issues an invoice waits for it.
    invoice.number = _gapless_number("INV", now)
    invoice.save()
    if balance_draft:
        _balance_entry_write(invoice, balance_draft, now)
    InvoiceLine.objects.bulk_create([line for line in lines if line.pk is None])
    send_invoice_issued(
        invoice=invoice,
        charge_first=(
            invoice.status == Invoice.Status.OPEN
            and organization.payment_terms == Organization.PaymentTerms.AUTOMATIC
        ),
    )
    return invoice


def invoice_issue(
    *,
    organization: Organization,
    subscription: Subscription | None,
    kind: str,
    period: periods.Period,
    lines: list[LineDraft],
    now: dt.datetime,
    facts: invoicing_selectors.IssueFacts | None = None,
) -> Invoice | None:
    """Write and finalize an invoice of `lines` in the caller's transaction. None when there
    is nothing to invoice. `facts`: the organization's, read beforehand with others'."""
    if not lines:
        return None
    zero = _zero(organization.currency)
    invoice = Invoice(
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
    return _finalize(invoice, lines, now, existing=[], facts=facts)


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, now: dt.datetime | None = None) -> Invoice:
    """Finalize a draft invoice that staff put together line by line."""
    now = now or timezone.now()
    invoice = locks.invoice_lock().select_related("organization").get(pk=invoice.pk)
    if invoice.is_finalized:
        raise BillingError(ErrorCode.INVOICE_FINALIZED, f"{invoice} is already finalized.")
    return _finalize(invoice, [], now, existing=list(invoice.lines.all()))


# --- corrections ------------------------------------------------------------------------


@transaction.atomic
def invoice_void(
    *, invoice: Invoice, reason: str, actor: Actor = None, now: dt.datetime | None = None
) -> Invoice:
    """Cancel an open invoice. Credit it had used goes back to the balance."""
    staff_action_begin(
        actor=actor,
        permission="billing.void_invoice",
        action="Voiding an invoice",
        subject=invoice,
        organization_id=invoice.organization_id,
        reason=reason,
        changes={"status": [invoice.status, Invoice.Status.VOID]},
    )
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
    invoice.save(update_fields=["status", "voided_at", "void_reason"])
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
    invoice.save(
        update_fields=["status", "paid_at", "payment_reference", "payment_method_description"]
    )
    _referral_credit_if_due(invoice, paid_at)
    return invoice


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice,
    amount: Money,
    reason: str,
    actor: Actor = None,
    now: dt.datetime | None = None,
    credit_balance: bool = True,
) -> CreditNote:
    """Correct a finalized invoice. The amount is credited to the customer's balance, to pay
    future invoices, unless it documents a refund (`credit_balance=False`): then the money
    goes back through the processor instead. The invoice itself stays exactly as issued."""
    staff_action_begin(
        actor=actor,
        permission="billing.add_creditnote",
        action="Issuing a credit note",
        subject=invoice,
        organization_id=invoice.organization_id,
        reason=reason,
        changes={"credit note": amount},
    )
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


@transaction.atomic
def balance_credit_grant(
    *,
    organization: Organization,
    kind: str,
    amount: Money,
    description: str,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> BalanceEntry:
    """Give an organization credit (promotional, referral, goodwill) for future invoices."""
    staff_action_begin(
        actor=actor,
        permission="billing.add_balanceentry",
        action="Granting credit",
        subject=organization,
        organization_id=organization.pk,
        reason=description,
        changes={"credit": amount, "kind": kind},
    )
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
    *,
    organization: Organization,
    coupon: Coupon,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> Discount:
    """Give `coupon` to an organization: it discounts its next invoices, before tax."""
    staff_action_begin(
        actor=actor,
        permission="billing.add_discount",
        action="Giving a coupon",
        subject=organization,
        organization_id=organization.pk,
        changes={"coupon": coupon.code},
    )
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


# --- promotions and referrals -------------------------------------------------------------


@transaction.atomic
def promotion_code_redeem(
    *, organization: Organization, code: str, now: dt.datetime | None = None
) -> Discount:
    """An administrator redeems a promotion code: the coupon becomes the organization's
    discount, if the promotion runs now, has redemptions left, was never redeemed by the
    organization, and the organization has no other discount."""
    now = now or timezone.now()
    code = code.strip()
    coupon = Coupon.objects.filter(code__iexact=code, is_promotion=True).first()
    if coupon is None:
        raise BillingError(
            ErrorCode.PROMOTION_CODE_UNKNOWN, f"There is no promotion with the code {code!r}."
        )
    if not coupon.is_active or (coupon.redeemable_until and now >= coupon.redeemable_until):
        raise BillingError(ErrorCode.PROMOTION_ENDED, f"The promotion {coupon.code} has ended.")
    if coupon.redeemable_from and now < coupon.redeemable_from:
        raise BillingError(
            ErrorCode.PROMOTION_NOT_STARTED,
            f"The promotion {coupon.code} starts on "
            f"{coupon.redeemable_from.astimezone(organization.tzinfo):%-d %b %Y}.",
        )
    # One organization's redemptions take turns, so "once per organization" holds.
    locks.organization_lock().filter(pk=organization.pk).get()
    if Discount.objects.filter(organization=organization, coupon=coupon).exists():
        raise BillingError(
            ErrorCode.PROMOTION_ALREADY_REDEEMED,
            f"{organization} has already redeemed {coupon.code}.",
        )
    # One UPDATE counts the redemption against the limit: concurrent redeemers cannot pass it.
    counted = (
        Coupon.objects.filter(pk=coupon.pk)
        .filter(Q(max_redemptions__isnull=True) | Q(redemptions__lt=F("max_redemptions")))
        .update(redemptions=F("redemptions") + 1)
    )
    if not counted:
        raise BillingError(
            ErrorCode.PROMOTION_LIMIT_REACHED,
            f"The promotion {coupon.code} has been redeemed as many times as it may be.",
        )
    return discount_apply(organization=organization, coupon=coupon, now=now)


@transaction.atomic
def referral_record(
    *,
    referrer: Organization,
    referred: Organization,
    actor=None,
    now: dt.datetime | None = None,
) -> Referral:
    """`referred` joined through `referrer`'s referral link: both are credited when it pays
    its first invoice. Once per organization, before it has paid any."""
    if referrer.pk == referred.pk:
        raise BillingError(ErrorCode.SELF_REFERRAL)
    if Referral.objects.filter(referred=referred).exists():
        raise BillingError(ErrorCode.ALREADY_REFERRED, f"{referred} was already referred.")
    if Invoice.objects.filter(
        organization=referred, status=Invoice.Status.PAID, total__gt=0
    ).exists():
        raise BillingError(ErrorCode.REFERRAL_TOO_LATE, f"{referred} has paid an invoice already.")
    try:
        with transaction.atomic():
            return Referral.objects.create(
                referrer=referrer,
                referred=referred,
                created_at=now or timezone.now(),
                created_by=actor,
            )
    except IntegrityError as error:
        raise BillingError(
            ErrorCode.ALREADY_REFERRED, f"{referred} was already referred."
        ) from error


def _referral_credit_if_due(invoice: Invoice, now: dt.datetime) -> None:
    """On a paid invoice of a referred organization that has not been credited yet: credit
    both organizations, once (the conditional UPDATE decides between concurrent payments).
    A free invoice (a trial's) pays nothing, so it does not count."""
    if invoice.total.amount <= 0:
        return
    referral = (
        Referral.objects.filter(referred_id=invoice.organization_id, credited_at__isnull=True)
        .select_related("referrer", "referred")
        .first()
    )
    if referral is None:
        return
    if not Referral.objects.filter(pk=referral.pk, credited_at__isnull=True).update(
        credited_at=now
    ):
        return
    referrer, referred = referral.referrer, referral.referred
    balance_credit_grant(
        organization=referrer,
        kind=BalanceEntry.Kind.REFERRAL,
        amount=Money(settings.REFERRAL_CREDIT_REFERRER, referrer.currency),
        description=f"Referral credit: {referred.name} paid its first invoice",
        now=now,
    )
    balance_credit_grant(
        organization=referred,
        kind=BalanceEntry.Kind.REFERRAL,
        amount=Money(settings.REFERRAL_CREDIT_REFERRED, referred.currency),
        description=f"Referral credit: welcome from {referrer.name}",
        now=now,
    )


# --- the document -------------------------------------------------------------------------


def invoice_pdf_if_needed(*, invoice: Invoice) -> bytes:
    """The finalized invoice as PDF: the stored file while it still shows what the invoice
    shows now, else rendered and stored (the first time, and after anything the PDF shows
    has changed: paid, voided, a credit note, bank transfer details, the template)."""
    html = invoicing_selectors.invoice_pdf_html(invoice=invoice)
    name = f"{invoice.number}-{invoicing_selectors.invoice_pdf_fingerprint(html=html)}"
    # Storage appends a suffix to a name already taken (two first downloads at once).
    if invoice.pdf and PurePosixPath(invoice.pdf.name).stem.startswith(name):
        with invoice.pdf.open("rb") as stored:
            return stored.read()
    content = invoicing_selectors.invoice_pdf_render(invoice=invoice, html=html)
    if invoice.pdf:
        invoice.pdf.delete(save=False)  # shows what the invoice no longer does
    invoice.pdf.save(f"{name}.pdf", ContentFile(content), save=False)
    invoice.save(update_fields=["pdf"])
    return content
