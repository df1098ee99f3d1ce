"""The money rules, as pure functions of what they are given: no database, no clock.

What each line of an invoice is, how it reads and what it amounts to: the subscription fee,
proration, call and storage overage, phone number fees, discounts, taxes and credits. The
invoice services, the plan-change preview and the renewal job all price through here, so a
preview shows exactly what the invoice will say. Every amount is rounded once, half-up, to
the currency's minor unit (`billing.money.round_money`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from djmoney.money import Money

from billing.models import Coupon, Invoice, InvoiceLine, PendingLine, Plan, TaxRate
from billing.money import format_percent, format_rate, round_money
from billing.subscriptions import periods

CHARGES = InvoiceLine.CHARGES


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

    @classmethod
    def of_pending(cls, line: PendingLine) -> LineDraft:
        """A line that waited for the subscription's next invoice (a plan change's proration)."""
        return cls(
            line.kind,
            line.description,
            line.unit_price,
            quantity=line.quantity,
            amount=line.amount,
            period=line.period,
            details=line.details,
        )

    @property
    def amount_written(self) -> Money:
        """The line's amount as written: quantity × unit price unless given, rounded once,
        half-up, to the minor unit."""
        amount = (
            self.amount if self.amount is not None else self.unit_price * Decimal(self.quantity)
        )
        return round_money(amount)

    def build(self, invoice: Invoice, position: int) -> InvoiceLine:
        return InvoiceLine(
            invoice=invoice,
            kind=self.kind,
            description=self.description,
            quantity=Decimal(self.quantity),
            unit_price=self.unit_price,
            amount=self.amount_written,
            period_start=self.period.start if self.period else None,
            period_end=self.period.end if self.period else None,
            position=position,
            details=self.details,
            tax_rate=self.tax_rate,
        )


def lines_total(lines: Iterable, currency: str) -> Money:
    return sum((line.amount for line in lines), Money(0, currency))


# --- the subscription and its changes ---------------------------------------------------


def subscription_fee_line(*, plan: Plan, period: periods.Period, tz: ZoneInfo) -> LineDraft:
    return LineDraft(
        InvoiceLine.Kind.SUBSCRIPTION,
        f"{plan.name} plan ({plan.get_interval_display().lower()}), {period.label(tz)}",
        plan.price,
        period=period,
    )


def _share(price: Money, fraction: Fraction) -> Money:
    return round_money(price * Decimal(fraction.numerator) / Decimal(fraction.denominator))


def proration_lines(
    *,
    current: Plan,
    new: Plan,
    period: periods.Period,
    new_period: periods.Period,
    at: dt.datetime,
    tz: ZoneInfo,
) -> list[LineDraft]:
    """Credit for the unused time of `period` on `current`, charge for the rest of
    `new_period` on `new`; each the exact share of its period, rounded once."""
    lines = []
    unused = period.fraction_remaining(at)
    if unused:
        covered = periods.Period(at, period.end)
        lines.append(
            LineDraft(
                InvoiceLine.Kind.PRORATION,
                f"Unused time on {current.name} ({current.get_interval_display().lower()}), "
                f"{covered.label(tz)}",
                -current.price,
                quantity=Decimal(unused.numerator / unused.denominator).quantize(Decimal("1e-6")),
                amount=-_share(current.price, unused),
                period=covered,
                details={"plan": current.code, "fraction": f"{unused}"},
            )
        )
    remaining = new_period.fraction_remaining(at)
    if remaining:
        covered = periods.Period(at, new_period.end)
        lines.append(
            LineDraft(
                InvoiceLine.Kind.PRORATION,
                f"Remaining time on {new.name} ({new.get_interval_display().lower()}), "
                f"{covered.label(tz)}",
                new.price,
                quantity=Decimal(remaining.numerator / remaining.denominator).quantize(
                    Decimal("1e-6")
                ),
                amount=_share(new.price, remaining),
                period=covered,
                details={"plan": new.code, "fraction": f"{remaining}"},
            )
        )
    return lines


# --- usage, in arrears ------------------------------------------------------------------


def _seconds(value: int) -> str:
    return f"{value:,} s"


def call_overage_line(
    *, plan: Plan, period: periods.Period, label: str, used_seconds: int, cost: Money
) -> LineDraft | None:
    """Call time beyond the plan's allowance in a usage month: charged at the per-second rate
    up to the overage cap (`cost`, which the usage app measures), or, on a plan that pauses
    calls instead, listed and not charged. None within the allowance."""
    included = plan.included_call_seconds
    if included is None or used_seconds <= included:
        return None
    overage = used_seconds - included
    details = {
        "included_seconds": included,
        "used_seconds": used_seconds,
        "overage_seconds": overage,
        "rate": str(plan.overage_rate_per_second.amount),
    }
    used = f"{_seconds(used_seconds)} used of {_seconds(included)} included"
    if not plan.charges_overage:
        return LineDraft(
            InvoiceLine.Kind.OVERAGE_CALLS,
            f"Calls beyond the allowance {label}: {used}, {_seconds(overage)} over "
            "(your plan pauses calls instead of charging: not charged)",
            Money(0, plan.currency),
            quantity=overage,
            period=period,
            details=details,
        )
    capped = plan.overage_cap is not None and cost == plan.overage_cap
    rate = format_rate(plan.overage_rate_per_second)
    return LineDraft(
        InvoiceLine.Kind.OVERAGE_CALLS,
        f"Call overage {label}: {used}, {_seconds(overage)} over at {rate}/s"
        + (f", capped at {plan.overage_cap}" if capped else ""),
        plan.overage_rate_per_second,
        quantity=overage,
        amount=cost,
        period=period,
        details=details | {"capped": capped},
    )


def storage_overage_line(
    *,
    plan: Plan,
    period: periods.Period,
    label: str,
    peak_bytes: int,
    peak_gib: Decimal,
    overage_gib: Decimal,
) -> LineDraft:
    """Storage beyond the plan's, at the month's peak, at the per-GiB rate."""
    return LineDraft(
        InvoiceLine.Kind.OVERAGE_STORAGE,
        f"Storage overage {label}: peak {peak_gib} GiB of {plan.storage_gb} GiB included",
        plan.overage_rate_per_gb,
        quantity=overage_gib,
        period=period,
        details={"peak_bytes": peak_bytes, "included_gb": plan.storage_gb},
    )


def phone_number_line(
    *,
    number: str,
    type_label: str,
    is_vanity: bool,
    monthly_fee: Money,
    amount: Money,
    charged: periods.Period,
    is_free: bool,
    is_prorated: bool,
    label: str,
    tz: ZoneInfo,
) -> LineDraft:
    """One number's fee for a usage month: free within the plan's free numbers, pro-rated
    from the day it was provisioned in the month."""
    what = f"Phone number {number} ({type_label.lower()}"
    what += ", vanity)" if is_vanity else ")"
    if is_free:
        what += ", included in your plan"
    elif is_prorated:
        what += f", pro-rated from {charged.start.astimezone(tz):%-d %b}"
    return LineDraft(
        InvoiceLine.Kind.PHONE_NUMBER,
        f"{what}, {label}",
        amount,
        period=charged,
        details={"number": number, "monthly_fee": str(monthly_fee.amount)},
    )


# --- discounts, taxes and credits ---------------------------------------------------------


def discount_line(*, coupon: Coupon, charges: Money) -> LineDraft:
    """The coupon's discount on positive `charges`, before tax: a percentage of them rounded
    once, or a fixed amount that never exceeds them."""
    if coupon.percent_off is not None:
        off = round_money(charges * coupon.percent_off / 100)
    else:
        off = min(coupon.amount_off, charges)
    return LineDraft(
        InvoiceLine.Kind.DISCOUNT, f"Discount: {coupon}", -off, details={"coupon": coupon.code}
    )


def tax_lines(
    *,
    rates: Iterable[TaxRate],
    lines: list[InvoiceLine],
    charges: Money,
    discount: Money,
    currency: str,
) -> list[LineDraft]:
    """One line per tax rate, $0.00 included: its rate of the rounded taxable subtotal of the
    line kinds it covers, after their proportional share of the discount. Credits among those
    lines (a proration for unused time) reduce it, so a net credit gives back the tax charged
    on what it credits."""
    drafts = []
    for rate in rates:
        covered = lines_total((line for line in lines if line.kind in rate.applies_to), currency)
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


@dataclass(frozen=True)
class Completion:
    """What finalizing adds to an invoice's lines before credits: the discount and the taxes,
    and what they leave owed."""

    discount: LineDraft | None
    taxes: list[LineDraft]
    subtotal: Money  # the charges after the discount
    tax_total: Money

    @property
    def lines(self) -> list[LineDraft]:
        return ([self.discount] if self.discount else []) + self.taxes

    @property
    def owed(self) -> Money:
        return self.subtotal + self.tax_total


def invoice_completion(
    *, lines: list[InvoiceLine], coupon: Coupon | None, rates: Iterable[TaxRate], currency: str
) -> Completion:
    """The discount of `coupon` (if any) on the charges among `lines`, then one tax line per
    rate. Issuing an invoice and previewing the next one both complete their lines here."""
    charges = lines_total((line for line in lines if line.kind in CHARGES), currency)
    discount_draft = (
        discount_line(coupon=coupon, charges=charges)
        if coupon is not None and charges.amount > 0
        else None
    )
    discount = discount_draft.unit_price if discount_draft else Money(0, currency)
    taxes = tax_lines(
        rates=rates, lines=lines, charges=charges, discount=discount, currency=currency
    )
    return Completion(
        discount=discount_draft,
        taxes=taxes,
        subtotal=charges + discount,
        tax_total=sum((tax.unit_price for tax in taxes), Money(0, currency)),
    )


def balance_line(*, owed: Money, available: Money) -> LineDraft | None:
    """The balance's part in an invoice owing `owed` after tax: credit paying it from the
    `available` balance, or, when credits exceed the charges, the surplus carried forward.
    None when neither applies."""
    if owed.amount < 0:
        return carried_line(surplus=-owed)
    credit = min(available, owed)
    if credit.amount <= 0:
        return None
    return credit_line(credit=credit, left=available - credit)


def credit_line(*, credit: Money, left: Money) -> LineDraft:
    """Credit from the balance paying the total after tax; `left` carries forward."""
    return LineDraft(
        InvoiceLine.Kind.CREDIT,
        f"Credit from your balance ({left} left for later invoices)",
        -credit,
    )


def carried_line(*, surplus: Money) -> LineDraft:
    """Credits beyond the charges: the surplus is the customer's money, kept for the next
    invoices."""
    return LineDraft(
        InvoiceLine.Kind.CARRIED, "Carried to your credit balance for your next invoices", surplus
    )
