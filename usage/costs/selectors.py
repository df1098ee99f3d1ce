"""Reads of what the organization's usage costs: the upcoming invoice, line by line, so far
and projected to the end of the usage month, and what the usage month costs (its spend, the
one number budgets and their forecasts compare with).

The lines are priced by the code renewal issues invoices with (`billing.invoicing`), from the
same measures, so the projection of a finished month is the invoice it becomes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing.selectors import InvoicePreview, LineDraft
from billing.models import Invoice, InvoiceLine, Organization, Plan, Subscription
from billing.money import round_money
from billing.subscriptions import periods
from billing.subscriptions.selectors import pending_lines_for as subscription_pending_lines
from billing.subscriptions.selectors import renewal_step, subscription_live
from usage import selectors as usage_selectors
from usage.dashboard import selectors as dashboard
from usage.models import CostAllocationRule, CostShare, UsageCounter
from usage.selectors import UsageSummary


def usage_month_drafts(
    *,
    subscription: Subscription,
    plan: Plan,
    period: periods.Period,
    call_seconds: int,
    storage_peak_bytes: int,
    number_fees: list[usage_selectors.NumberFee] | None = None,
) -> list[LineDraft]:
    """The lines a usage month is invoiced with in arrears, on `plan`, for the measures
    given: the month's totals when renewal closes it, or its use so far (or projected).
    `number_fees` are read when not given."""
    if number_fees is None:
        number_fees = usage_selectors.number_fees_for_period(
            organization=subscription.organization, plan=plan, period=period
        )
    included = plan.included_call_seconds
    overage_seconds = call_seconds - included if included is not None else 0
    return invoicing_selectors.usage_month_lines(
        plan=plan,
        period=period,
        tz=subscription.tzinfo,
        used_seconds=call_seconds,
        call_overage_cost=usage_selectors.call_overage_cost(
            plan=plan, overage_seconds=overage_seconds
        ),
        storage_peak_bytes=storage_peak_bytes,
        storage_peak_gib=usage_selectors.gibibytes(storage_peak_bytes),
        storage_overage_gib=usage_selectors.storage_overage_gib(
            plan=plan, peak_bytes=storage_peak_bytes
        ),
        number_fees=number_fees,
    )


# --- the upcoming invoice -------------------------------------------------------------------


@dataclass(frozen=True)
class UpcomingRow:
    """One line of the upcoming invoice: its amount as usage stands now, and projected to the
    end of the usage month (None where the line is not there)."""

    kind: str
    description: str
    so_far: Money | None
    projected: Money | None


# Lines an invoice has at most one of, whose texts change with the amounts.
ONE_OF_A_KIND = (
    InvoiceLine.Kind.OVERAGE_CALLS,
    InvoiceLine.Kind.OVERAGE_STORAGE,
    InvoiceLine.Kind.DISCOUNT,
    InvoiceLine.Kind.CREDIT,
    InvoiceLine.Kind.CARRIED,
)


def _row_key(line: InvoiceLine) -> tuple:
    """What makes a line the same line in both versions of the invoice: the numbers and tax
    rates by name, the usage lines by kind (their texts tell the seconds used)."""
    if line.kind == InvoiceLine.Kind.PHONE_NUMBER:
        return (line.kind, line.details["number"])
    if line.kind == InvoiceLine.Kind.TAX:
        return (line.kind, line.tax_rate.pk)
    if line.kind in ONE_OF_A_KIND:
        return (line.kind,)
    return (line.kind, line.description)


@dataclass(frozen=True)
class UpcomingInvoice:
    """The organization's next invoice as it stands at `now`: what renewal would issue if the
    usage month ended now (`so_far`), and with the month's calls projected at their pace to
    its end (`projected`, the overage cap applied). Both are complete invoices: fee in
    advance, usage in arrears, pending prorations, discount, taxes and credits."""

    subscription: Subscription
    kind: str
    period: periods.Period  # of the invoice
    issued_at: dt.datetime  # when renewal issues it
    usage: UsageSummary | None  # the usage month it invoices in arrears, so far and projected
    so_far: InvoicePreview
    projected: InvoicePreview

    @property
    def period_label(self) -> str:
        return self.period.label(self.subscription.tzinfo)

    @property
    def kind_label(self) -> str:
        return Invoice.Kind(self.kind).label

    @property
    def rows(self) -> list[UpcomingRow]:
        so_far = {_row_key(line): line for line in self.so_far.lines}
        projected = {_row_key(line): line for line in self.projected.lines}
        keys = list(projected) + [key for key in so_far if key not in projected]
        return [
            UpcomingRow(
                kind=(so_far.get(key) or projected[key]).kind,
                description=(so_far.get(key) or projected[key]).description,
                so_far=so_far[key].amount if key in so_far else None,
                projected=projected[key].amount if key in projected else None,
            )
            for key in keys
        ]


def upcoming_invoice_for(
    *, subscription: Subscription, now: dt.datetime, usage: UsageSummary | None = None
) -> UpcomingInvoice | None:
    """The next invoice of a live subscription (see `UpcomingInvoice`), priced by the code
    renewal issues it with. None when the subscription ends without another invoice (a trial
    canceled before it ends). `usage`, the usage month's summary when the caller has it,
    saves reading it again. A fixed number of queries."""
    step = renewal_step(subscription=subscription)
    if step.kind is None:
        return None
    organization = subscription.organization
    terms = invoicing_selectors.pricing_terms_for(organization=organization)
    pending = [
        LineDraft.of_pending(line) for line in subscription_pending_lines(subscription=subscription)
    ]
    if step.usage_period is None:
        usage = number_fees = None
    else:
        if usage is None or usage.period != step.usage_period:
            usage = usage_selectors.usage_summary(
                subscription=subscription, now=now, period=step.usage_period
            )
        number_fees = usage_selectors.number_fees_for_period(
            organization=organization, plan=step.usage_plan, period=step.usage_period
        )

    def preview(call_seconds: int) -> InvoicePreview:
        drafts = [step.fee] if step.fee else []
        if usage is not None:
            drafts += usage_month_drafts(
                subscription=subscription,
                plan=step.usage_plan,
                period=step.usage_period,
                call_seconds=call_seconds,
                storage_peak_bytes=usage.storage_peak_bytes,
                number_fees=number_fees,
            )
        return invoicing_selectors.invoice_preview(
            organization=organization, drafts=drafts + pending, terms=terms
        )

    so_far = preview(usage.call_seconds.used if usage else 0)
    projected = (
        preview(usage.projected_seconds)
        if usage is not None and usage.projected_seconds != usage.call_seconds.used
        else so_far
    )
    return UpcomingInvoice(
        subscription=subscription,
        kind=step.kind,
        period=step.period,
        issued_at=step.at,
        usage=usage,
        so_far=so_far,
        projected=projected,
    )


def upcoming_invoice(*, organization: Organization, now: dt.datetime) -> UpcomingInvoice | None:
    """The organization's next invoice; None without a live subscription or another invoice."""
    subscription = subscription_live(organization=organization)
    if subscription is None:
        return None
    return upcoming_invoice_for(subscription=subscription, now=now)


# --- the month's spend -----------------------------------------------------------------------


@dataclass(frozen=True)
class MonthSpend:
    """What a usage month costs once invoiced, priced by the renewal's code: the plan's fee
    for the month (an annual plan's, its monthly equivalent), the phone numbers' fees, the
    call and storage overage, less the discount, with taxes. Credits from the balance pay
    spend, they do not reduce it; prorations of a plan change are not the month's use. A
    free trial charges nothing, so spends nothing. `at` prices the month for any call time
    (the forecast's); `fees` is what it costs without any overage."""

    period: periods.Period
    is_trial: bool
    call_seconds: int  # so far
    storage_peak_bytes: int
    fees: Money
    pricing: Callable[[int], Money]

    def at(self, call_seconds: int) -> Money:
        return self.pricing(call_seconds)

    @property
    def total(self) -> Money:
        """So far: as if the month ended now."""
        return self.at(self.call_seconds)

    @property
    def overage(self) -> Money:
        """The call and storage overage so far, discounted and taxed like the fees."""
        return self.total - self.fees


def month_spend(*, subscription: Subscription, now: dt.datetime) -> MonthSpend:
    """The spend of the usage month containing `now` (see `MonthSpend`). Five queries."""
    period = subscription.usage_period_at(now)
    plan, tz, organization = subscription.plan, subscription.tzinfo, subscription.organization
    counter = UsageCounter.objects.filter(
        organization_id=subscription.organization_id, period_start=period.start
    ).first()
    seconds = counter.call_seconds if counter else 0
    peak = counter.storage_peak_bytes if counter else 0
    is_trial = period == subscription.trial_period
    zero = Money(0, plan.currency)
    if is_trial:
        return MonthSpend(period, True, seconds, peak, zero, lambda _: zero)
    fee = invoicing_selectors.usage_month_fee_line(plan=plan, period=period, tz=tz)
    number_fees = usage_selectors.number_fees_for_period(
        organization=organization, plan=plan, period=period
    )
    terms = invoicing_selectors.pricing_terms_for(organization=organization)

    def priced(call_seconds: int, storage_peak_bytes: int) -> Money:
        drafts = usage_month_drafts(
            subscription=subscription,
            plan=plan,
            period=period,
            call_seconds=call_seconds,
            storage_peak_bytes=storage_peak_bytes,
            number_fees=number_fees,
        )
        return invoicing_selectors.invoice_preview(
            organization=organization, drafts=[fee, *drafts], terms=terms
        ).owed_before_credits

    no_overage = plan.included_call_seconds or 0  # the allowance, used up exactly
    return MonthSpend(
        period=period,
        is_trial=False,
        call_seconds=seconds,
        storage_peak_bytes=peak,
        fees=priced(no_overage, 0),
        pricing=lambda call_seconds: priced(call_seconds, peak),
    )


# --- costs by team and AI employee ------------------------------------------------------------


def month_parse(value: str) -> dt.date:
    """`2026-03` as the first day of that month; ValueError naming the expected form."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return dt.date(int(year), int(month), 1)
    except ValueError:
        raise ValueError(f"{value!r} is not a month: write it as YYYY-MM, e.g. 2026-03.") from None


@dataclass(frozen=True)
class CostCenterCosts:
    name: str  # "Unassigned" for what has no cost center
    shares: list[CostShare]  # its AI employees, and what went to the cost center itself

    @property
    def total(self) -> Money:
        return sum((share.total for share in self.shares[1:]), self.shares[0].total)

    @property
    def call_seconds(self) -> int:
        return sum(share.call_seconds for share in self.shares)


@dataclass(frozen=True)
class CostMonth:
    """A usage month's invoice split among cost centers and AI employees, as frozen when it
    was invoiced. Without `invoice`, the month has not been invoiced (yet)."""

    month: dt.date
    invoice: Invoice | None
    cost_centers: list[CostCenterCosts]
    months: list[dt.date]  # the invoiced months, newest first, to choose from

    @property
    def shares(self) -> list[CostShare]:
        return [share for center in self.cost_centers for share in center.shares]


def allocation_rule_for(*, organization: Organization) -> CostAllocationRule | None:
    """The organization's rule for the plan's fee; None: by share of call time."""
    return CostAllocationRule.objects.filter(organization=organization).first()


def cost_month(*, organization: Organization, month: dt.date | None) -> CostMonth:
    """The split of the invoice that closed the usage month starting in `month` (default:
    the latest invoiced). Two queries."""
    months = list(
        CostShare.objects.filter(organization=organization)
        .order_by("-month")
        .values_list("month", flat=True)
        .distinct()
    )
    month = month or (months[0] if months else timezone.localdate().replace(day=1))
    shares = list(
        CostShare.objects.filter(organization=organization, month=month)
        .select_related("invoice")
        .order_by("cost_center", "employee_name", "pk")
    )
    centers: dict[str, list[CostShare]] = {}
    for share in shares:
        centers.setdefault(share.cost_center, []).append(share)
    return CostMonth(
        month=month,
        invoice=shares[0].invoice if shares else None,
        cost_centers=sorted(
            (CostCenterCosts(name or "Unassigned", rows) for name, rows in centers.items()),
            key=lambda center: (-center.total.amount, center.name),
        ),
        months=months,
    )


# --- history and trends -----------------------------------------------------------------------


def _change(now: int | Decimal, before: int | Decimal | None) -> Decimal | None:
    """Percent change from `before`; None without a base to compare with."""
    if not before:
        return None
    return ((Decimal(now) - Decimal(before)) * 100 / Decimal(before)).quantize(Decimal("1"))


@dataclass(frozen=True)
class MonthTrend:
    month: dt.date  # the local month the usage month starts in
    period: periods.Period
    call_seconds: int
    cost: Money | None  # the invoice that closed it; None while it is not invoiced
    active_employees: int  # at the month's end (or now, for the open month)
    phone_numbers: int
    call_seconds_change: Decimal | None  # percent, against the month before
    cost_change: Decimal | None

    @property
    def cost_cents(self) -> int:
        return int(self.cost.amount * 100) if self.cost is not None else 0


@dataclass(frozen=True)
class CostCenterHistory:
    name: str
    costs: list[Money | None]  # one per month of the history, oldest first

    @property
    def total(self) -> Money | None:
        known = [cost for cost in self.costs if cost is not None]
        return sum(known[1:], known[0]) if known else None


@dataclass(frozen=True)
class CostHistory:
    trends: list[MonthTrend]  # oldest first
    cost_centers: list[CostCenterHistory]
    plan: Plan  # its quotas: AI employees and phone numbers
    currency: str


def cost_history(
    *, organization: Organization, now: dt.datetime, count: int = 12
) -> CostHistory | None:
    """The last `count` usage months (the open one included), oldest first: each cost
    center's invoiced cost, and the trends: call time and cost month over month, active AI
    employees and numbers against the plan's quotas. None without a live subscription.
    Five queries, whatever the history."""
    subscription = subscription_live(organization=organization)
    if subscription is None:
        return None
    tz = organization.tzinfo
    months = [
        period
        for period in reversed(dashboard.usage_periods(subscription=subscription, count=count))
        if period != subscription.trial_period
    ]
    seconds = dashboard.call_seconds_by_period(
        organization=organization, starts=[period.start for period in months]
    )
    shares = (
        CostShare.objects.filter(
            organization=organization,
            period_start__in=[period.start for period in months],
        )
        .values("period_start", "cost_center")
        .annotate(total=Sum("total"))
    )
    zero = Money(0, organization.currency)
    by_center: dict[str, dict[dt.datetime, Money]] = {}
    for row in shares:
        # Rounded: SQLite sums decimals as floats.
        amount = round_money(Money(row["total"], organization.currency))
        by_center.setdefault(row["cost_center"], {})[row["period_start"]] = amount
    invoiced = {start for costs in by_center.values() for start in costs}
    holdings = dashboard.holdings_over_time(
        organization=organization, moments=[min(period.end, now) for period in months]
    )
    trends, previous = [], None
    for period, (employees, numbers) in zip(months, holdings, strict=True):
        cost = (
            sum((costs.get(period.start, zero) for costs in by_center.values()), zero)
            if period.start in invoiced
            else None
        )
        used = seconds.get(period.start, 0)
        trends.append(
            MonthTrend(
                month=period.start.astimezone(tz).date().replace(day=1),
                period=period,
                call_seconds=used,
                cost=cost,
                active_employees=employees,
                phone_numbers=numbers,
                call_seconds_change=_change(used, previous.call_seconds) if previous else None,
                cost_change=(
                    _change(cost.amount, previous.cost.amount)
                    if previous and cost is not None and previous.cost is not None
                    else None
                ),
            )
        )
        previous = trends[-1]
    centers = [
        CostCenterHistory(
            name=name or "Unassigned",
            costs=[
                costs.get(period.start, zero) if period.start in invoiced else None
                for period in months
            ],
        )
        for name, costs in by_center.items()
    ]
    return CostHistory(
        trends=trends,
        cost_centers=sorted(centers, key=lambda center: (-center.total.amount, center.name)),
        plan=subscription.plan,
        currency=organization.currency,
    )
