"""Writes of cost control: the organization's rule for its fixed fee, and each usage month's
split of its invoice among cost centers and AI employees, frozen when the invoice is issued.

The split, per line of the invoice that closes the usage month:
- call and storage overage: by each AI employee's share of the month's billable seconds;
- a phone number's fee: to the AI employee it is assigned to (unassigned: to no one);
- the plan's fee and prorations: by the organization's rule (share of seconds, equally among
  the active AI employees, or all to one cost center);
- discount, taxes and credits: in proportion to what each was charged above.
Every part is whole cents by largest remainder, so the shares add up to the invoice's total.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from djmoney.money import Money

from billing.errors import BillingError, ErrorCode
from billing.models import Invoice, InvoiceLine, Organization
from billing.money import allocate
from billing.subscriptions import periods
from usage.costs.selectors import CostFacts, cost_facts_for
from usage.models import AIEmployee, Call, CostAllocationRule, CostShare, PhoneNumber

USAGE = (InvoiceLine.Kind.OVERAGE_CALLS, InvoiceLine.Kind.OVERAGE_STORAGE)
FIXED = (
    InvoiceLine.Kind.SUBSCRIPTION,
    InvoiceLine.Kind.PRORATION,
    InvoiceLine.Kind.ADDON,
    InvoiceLine.Kind.ADJUSTMENT,
)


@transaction.atomic
def cost_allocation_rule_set(
    *,
    organization: Organization,
    fixed_fee: str,
    cost_center: str = "",
    actor=None,
    now: dt.datetime | None = None,
) -> CostAllocationRule:
    """Choose how the fixed fee is split from the next invoiced month on; months already
    invoiced keep their split. `cost_center` names the one receiving it all, for that rule."""
    cost_center = cost_center.strip()
    if fixed_fee not in CostAllocationRule.FixedFee.values:
        raise BillingError(ErrorCode.INVALID_ALLOCATION_RULE, f"{fixed_fee!r} is not a rule.")
    if (fixed_fee == CostAllocationRule.FixedFee.COST_CENTER) != bool(cost_center):
        raise BillingError(
            ErrorCode.INVALID_ALLOCATION_RULE,
            "Name the cost center that receives the fee, and only for that rule.",
        )
    rule, _ = CostAllocationRule.objects.update_or_create(
        organization=organization,
        defaults={
            "fixed_fee": fixed_fee,
            "cost_center": cost_center,
            "changed_at": now or timezone.now(),
            "changed_by": actor,
        },
    )
    return rule


@dataclass
class _Party:
    cost_center: str
    employee_id: int | None
    employee_name: str
    call_seconds: int = 0
    is_active: bool = False


@dataclass(frozen=True)
class Charge:
    """What the split reads of a line of the invoice."""

    kind: str
    amount: Money
    details: dict


UNASSIGNED = ("", None)  # what goes to no cost center and no AI employee


def _parties(
    organization_id: int, period: periods.Period, answering: dict[str, int]
) -> dict[tuple, _Party]:
    """Every AI employee that called in the month, answers a number, or is active, as tagged
    now, keyed by (cost center, id)."""
    seconds = dict(
        Call.objects.filter(
            organization_id=organization_id,
            connected_at__gte=period.start,
            connected_at__lt=period.end,
        )
        .values("employee_id")
        .annotate(seconds=Sum("billable_seconds"))
        .values_list("employee_id", "seconds")
    )
    employees = AIEmployee.objects.filter(
        Q(is_active=True) | Q(pk__in=[*seconds, *answering.values()]),
        organization_id=organization_id,
    ).order_by("cost_center", "name", "pk")
    return {
        (employee.cost_center, employee.pk): _Party(
            employee.cost_center,
            employee.pk,
            employee.name,
            seconds.get(employee.pk) or 0,
            employee.is_active,
        )
        for employee in employees
    }


def _split(amount: Money, weights: dict[tuple, int | Money], into: dict[tuple, Money]) -> None:
    """Add `amount`, split by `weights` (positive ones only), to `into`; to no one when
    nobody has weight."""
    weights = {
        key: weight.amount if isinstance(weight, Money) else weight
        for key, weight in weights.items()
        if (weight.amount if isinstance(weight, Money) else weight) > 0
    }
    if not amount.amount:
        return
    parts = allocate(amount, weights) if weights else {UNASSIGNED: amount}
    for key, part in parts.items():
        into[key] = into.get(key, Money(0, amount.currency)) + part


def cost_shares_freeze(
    *,
    invoice: Invoice,
    period: periods.Period,
    charges: list[Charge] | None = None,
    facts: CostFacts | None = None,
) -> list[CostShare]:
    """Split `invoice`, which closes the usage month `period`, among cost centers and AI
    employees, and store the split. Runs inside the caller's transaction (renewal's).
    `charges`: its charge lines, when the caller has them; `facts`: the organization's, read
    beforehand with others' (an organization without AI employees has no one to split among)."""
    organization = invoice.organization
    currency = invoice.currency
    zero = Money(0, currency)
    lines = charges
    if lines is None:
        lines = [Charge(line.kind, line.amount, line.details) for line in invoice.lines.all()]
    if facts is None:
        facts = cost_facts_for(organization_ids=[organization.pk])[organization.pk]
    answering, parties = {}, {}
    if facts.has_employees:
        answering = dict(
            PhoneNumber.objects.filter(
                organization=organization, employee__isnull=False
            ).values_list("number", "employee_id")
        )
        parties = _parties(organization.pk, period, answering)
    by_seconds = {key: party.call_seconds for key, party in parties.items()}
    active = {key: 1 for key, party in parties.items() if party.is_active}
    rule = facts.rule
    fixed_fee = rule.fixed_fee if rule else CostAllocationRule.FixedFee.SECONDS

    def total(kinds) -> Money:
        return sum((line.amount for line in lines if line.kind in kinds), zero)

    usage: dict[tuple, Money] = {}
    _split(total(USAGE), by_seconds, usage)

    numbers: dict[tuple, Money] = {}
    by_employee = {party.employee_id: key for key, party in parties.items()}
    for line in lines:
        if line.kind == InvoiceLine.Kind.PHONE_NUMBER and line.amount.amount:
            key = by_employee.get(answering.get(line.details.get("number")), UNASSIGNED)
            numbers[key] = numbers.get(key, zero) + line.amount

    fixed: dict[tuple, Money] = {}
    if fixed_fee == CostAllocationRule.FixedFee.COST_CENTER:
        _split(total(FIXED), {(rule.cost_center, None): 1}, fixed)
    elif fixed_fee == CostAllocationRule.FixedFee.EQUALLY:
        _split(total(FIXED), active, fixed)
    else:
        _split(total(FIXED), by_seconds if any(by_seconds.values()) else active, fixed)

    charged = {
        key: usage.get(key, zero) + numbers.get(key, zero) + fixed.get(key, zero)
        for key in {*usage, *numbers, *fixed}
    }
    adjustments: dict[tuple, Money] = {}
    # Discount, taxes and credits: whatever the invoice's total holds beyond the charges.
    _split(invoice.total - sum(charged.values(), zero), charged, adjustments)

    month = period.start.astimezone(invoice.organization.tzinfo).date().replace(day=1)
    shares = []
    for key in sorted({*charged, *adjustments}, key=lambda key: (key[0], key[1] or 0)):
        party = parties.get(key) or _Party(key[0], None, "")
        share_total = charged.get(key, zero) + adjustments.get(key, zero)
        shares.append(
            CostShare(
                organization=organization,
                invoice=invoice,
                period_start=period.start,
                period_end=period.end,
                month=month,
                cost_center=party.cost_center,
                employee_id=party.employee_id,
                employee_name=party.employee_name,
                call_seconds=party.call_seconds,
                usage=usage.get(key, zero),
                numbers=numbers.get(key, zero),
                fixed=fixed.get(key, zero),
                adjustments=adjustments.get(key, zero),
                total=share_total,
            )
        )
    return CostShare.objects.bulk_create(shares)
