"""Revenue metrics for staff: MRR and its movements, the usage run-rate, churn, retention,
dunning recovery and what was invoiced, collected and overdue, each by a written, versioned
rule (`REVENUE_DEFINITIONS`), and the organizations behind every figure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import OuterRef, Q, Subquery
from djmoney.money import Money

from billing.models import (
    Coupon,
    Discount,
    Invoice,
    InvoiceLine,
    Organization,
    Plan,
    RevenueSnapshot,
    Subscription,
)
from billing.money import round_money
from payments.models import Collection, PaymentAttempt, Refund

# The rules every figure follows, printed beside the figures; a change of rule is a new
# version.
REVENUE_DEFINITIONS_VERSION = 2
REVENUE_DEFINITIONS = {
    "mrr": (
        "MRR (monthly recurring revenue)",
        "At an instant: the plan fee of every subscription active or past due then (trials, "
        "suspended and ended subscriptions excluded), normalized to a month (an annual fee ÷ "
        "12), less a forever coupon (a percentage of the fee, or its amount per billing period "
        "normalized the same way); limited-time coupons, credits, usage and tax excluded. Per "
        "currency, never converted. Shown at the month's end (or now, for the current month).",
    ),
    "usage_run_rate": (
        "Usage run-rate",
        "The usage charges (call and storage overage, phone number fees: the lines of those "
        "kinds, before discounts and tax) of the invoices issued in the month and the two "
        "before and not voided, ÷ 3. Shown beside MRR: for a per-minute product MRR alone "
        "misleads.",
    ),
    "arr": ("ARR", "12 × MRR at the month's end."),
    "new": (
        "New MRR",
        "MRR at the month's end of organizations that had none at its start and never had a "
        "paying subscription before.",
    ),
    "reactivation": (
        "Reactivation MRR",
        "MRR at the month's end of organizations that had none at its start but paid before.",
    ),
    "expansion": (
        "Expansion MRR",
        "The increase of organizations whose MRR grew during the month (both ends above zero).",
    ),
    "contraction": (
        "Contraction MRR",
        "The decrease of organizations whose MRR shrank during the month but stayed above zero.",
    ),
    "churned": (
        "Churned MRR",
        "MRR at the month's start of organizations that had none at its end: counted when the "
        "paid period ended (a cancellation takes effect then) or the subscription was suspended "
        "(involuntary churn).",
    ),
    "net_new": (
        "Net new MRR",
        "New + reactivation + expansion − contraction − churned = MRR at the end − MRR at the "
        "start.",
    ),
    "logo_churn": (
        "Logo churn",
        "The organizations with MRR at the month's start and none at its end ÷ the "
        "organizations with MRR at its start, in per cent.",
    ),
    "revenue_churn": (
        "Revenue churn",
        "(Churned MRR + contraction MRR) ÷ MRR at the month's start, in per cent.",
    ),
    "net_revenue_retention": (
        "Net revenue retention",
        "(MRR at the month's start + expansion − contraction − churned) ÷ MRR at the month's "
        "start, in per cent: what the organizations paying at the start pay at the end; new and "
        "reactivated organizations left out.",
    ),
    "dunning_recovery": (
        "Dunning recovery rate",
        "Of the invoices whose first collection attempt failed in the month (their totals: the "
        "amount that entered dunning), the totals of those paid by the month's end ÷ that "
        "amount, in per cent.",
    ),
    "arpa": (
        "ARPA (average revenue per account)",
        "MRR at the month's end ÷ the organizations with MRR above zero then.",
    ),
    "invoiced": (
        "Invoiced",
        "The totals (tax included, after credits) of the invoices issued in the month and not "
        "voided.",
    ),
    "collected": (
        "Collected",
        "Successful payments (cards, bank debits, recorded transfers) made in the month, less "
        "refunds made in the month.",
    ),
    "overdue": (
        "Overdue",
        "At the month's end: invoices issued, past their due date and neither paid nor voided "
        "by then; their totals and how many.",
    ),
}
REVENUE_MONTH_NOTE = "Months run from the first day, 00:00 UTC, to the next."
PAYING_STATUSES = (Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
USAGE_LINE_KINDS = (
    InvoiceLine.Kind.OVERAGE_CALLS,
    InvoiceLine.Kind.OVERAGE_STORAGE,
    InvoiceLine.Kind.PHONE_NUMBER,
)
RUN_RATE_MONTHS = 3


def _per_cent(part, whole) -> Decimal | None:
    """`part` ÷ `whole` in per cent to two places; None when there is no whole."""
    if not whole:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class RevenueFigures:
    """One currency's figures for one month (`REVENUE_DEFINITIONS`)."""

    currency: str
    mrr_start: Money
    mrr: Money
    new: Money
    reactivation: Money
    expansion: Money
    contraction: Money
    churned: Money
    paying_accounts: int
    accounts_start: int
    accounts_churned: int
    usage_run_rate: Money
    invoiced: Money
    collected: Money
    overdue: Money
    overdue_invoices: int
    dunning_entered: Money
    dunning_recovered: Money

    @property
    def arr(self) -> Money:
        return self.mrr * 12

    @property
    def net_new(self) -> Money:
        return self.mrr - self.mrr_start

    @property
    def arpa(self) -> Money:
        if not self.paying_accounts:
            return Money(0, self.currency)
        return round_money(self.mrr / self.paying_accounts)

    @property
    def logo_churn(self) -> Decimal | None:
        return _per_cent(self.accounts_churned, self.accounts_start)

    @property
    def revenue_churn(self) -> Decimal | None:
        return _per_cent((self.churned + self.contraction).amount, self.mrr_start.amount)

    @property
    def net_revenue_retention(self) -> Decimal | None:
        kept = self.mrr_start + self.expansion - self.contraction - self.churned
        return _per_cent(kept.amount, self.mrr_start.amount)

    @property
    def dunning_recovery(self) -> Decimal | None:
        return _per_cent(self.dunning_recovered.amount, self.dunning_entered.amount)


@dataclass(frozen=True)
class RevenueReport:
    start: dt.datetime
    end: dt.datetime  # the month's end, or now for the month under way
    version: int
    figures: list[RevenueFigures]  # by currency


def _monthly_fee(plan: Plan, discount) -> Decimal:
    """A plan's fee for a month, less a forever coupon, unrounded."""
    fee = plan.price.amount / plan.months
    if discount is None:
        return fee
    coupon = discount.coupon
    if coupon.percent_off is not None:
        return fee * (1 - coupon.percent_off / 100)
    return max(fee - coupon.amount_off.amount / plan.months, Decimal(0))


def mrr_by_organization(*, at: dt.datetime) -> dict[int, tuple[str, Decimal]]:
    """Each organization's MRR at the instant `at` ({id: (currency, unrounded amount)}),
    from each subscription's status and plan then (its history). Three queries."""
    history = Subscription.history.model.objects.filter(
        id=OuterRef("pk"), history_date__lte=at
    ).order_by("-history_date", "-history_id")
    states = (
        Subscription.objects.annotate(
            status_then=Subquery(history.values("status")[:1]),
            plan_then=Subquery(history.values("plan_id")[:1]),
        )
        .filter(status_then__in=PAYING_STATUSES)
        .values_list("organization_id", "plan_then")
    )
    states = list(states)
    # The whole catalog (every version, a few hundred rows at most): one query, always.
    plans = Plan.objects.in_bulk()
    discounts = {
        discount.organization_id: discount
        for discount in Discount.objects.filter(
            coupon__duration=Coupon.Duration.FOREVER, created_at__lte=at
        )
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .select_related("coupon")
    }
    mrr: dict[int, tuple[str, Decimal]] = {}
    for organization_id, plan_id in states:
        plan = plans[plan_id]
        _, amount = mrr.get(organization_id, (plan.currency, Decimal(0)))
        fee = _monthly_fee(plan, discounts.get(organization_id))
        mrr[organization_id] = (plan.currency, amount + fee)
    return mrr


def _sums(rows) -> dict[str, Decimal]:
    """{currency: total} of (currency, amount) rows, summed exactly."""
    totals: dict[str, Decimal] = {}
    for currency, amount in rows:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return totals


def _month_bounds(month: dt.date, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The month that holds `month`: its first day, 00:00 UTC, to the next month's, or `now`
    if earlier."""
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    return start, min(start + relativedelta(months=1), now)


@dataclass
class _Account:
    """One organization's part, in one currency, of a month's figures: unrounded, so that the
    month's figures are summed exactly and rounded once."""

    mrr_start: Decimal = Decimal(0)
    mrr: Decimal = Decimal(0)
    movement: str = ""  # new, reactivation, expansion, contraction, churned, or "" (unchanged)
    usage: Decimal = Decimal(0)  # the run-rate's window of usage charges, not yet ÷ 3
    invoiced: Decimal = Decimal(0)
    collected: Decimal = Decimal(0)
    overdue: Decimal = Decimal(0)
    overdue_invoices: int = 0
    dunning_entered: Decimal = Decimal(0)
    dunning_recovered: Decimal = Decimal(0)

    @property
    def change(self) -> Decimal:
        return self.mrr - self.mrr_start


def _movement(*, was: Decimal, now: Decimal, paid_before: bool) -> str:
    if not was:
        return ("reactivation" if paid_before else "new") if now else ""
    if not now:
        return "churned"
    return "expansion" if now > was else "contraction" if now < was else ""


def _accounts(*, start: dt.datetime, end: dt.datetime) -> dict[tuple[int, str], _Account]:
    """Every organization's part of the figures of [start, end), by (organization, currency).
    Ten queries, whatever the number of organizations and invoices."""
    accounts: dict[tuple[int, str], _Account] = {}

    def account(organization_id: int, currency: str) -> _Account:
        return accounts.setdefault((organization_id, str(currency)), _Account())

    for organization_id, (currency, amount) in mrr_by_organization(at=start).items():
        account(organization_id, currency).mrr_start = amount
    for organization_id, (currency, amount) in mrr_by_organization(at=end).items():
        account(organization_id, currency).mrr = amount
    paid_before = set(
        Subscription.history.model.objects.filter(
            history_date__lt=start, status__in=PAYING_STATUSES
        ).values_list("organization_id", flat=True)
    )
    for (organization_id, _), part in accounts.items():
        part.movement = _movement(
            was=part.mrr_start, now=part.mrr, paid_before=organization_id in paid_before
        )

    issued = Invoice.objects.exclude(status__in=(Invoice.Status.DRAFT, Invoice.Status.VOID))
    for organization_id, currency, total in issued.filter(
        issued_at__gte=start, issued_at__lt=end
    ).values_list("organization_id", "total_currency", "total"):
        account(organization_id, currency).invoiced += total
    for organization_id, currency, amount in InvoiceLine.objects.filter(
        kind__in=USAGE_LINE_KINDS,
        invoice__in=issued.filter(
            issued_at__gte=start - relativedelta(months=RUN_RATE_MONTHS - 1), issued_at__lt=end
        ),
    ).values_list("invoice__organization_id", "amount_currency", "amount"):
        account(organization_id, currency).usage += amount
    for organization_id, currency, amount in PaymentAttempt.objects.filter(
        status=PaymentAttempt.Status.SUCCEEDED, attempted_at__gte=start, attempted_at__lt=end
    ).values_list("invoice__organization_id", "amount_currency", "amount"):
        account(organization_id, currency).collected += amount
    for organization_id, currency, amount in Refund.objects.filter(
        created_at__gte=start, created_at__lt=end
    ).values_list("attempt__invoice__organization_id", "amount_currency", "amount"):
        account(organization_id, currency).collected -= amount
    for organization_id, currency, total in (
        Invoice.objects.filter(issued_at__lt=end, due_at__lt=end)
        .exclude(status=Invoice.Status.DRAFT)
        .filter(Q(paid_at__isnull=True) | Q(paid_at__gte=end))
        .filter(Q(voided_at__isnull=True) | Q(voided_at__gte=end))
        .values_list("organization_id", "total_currency", "total")
    ):
        part = account(organization_id, currency)
        part.overdue += total
        part.overdue_invoices += 1
    for organization_id, currency, total, paid_at in Collection.objects.filter(
        first_failed_at__gte=start, first_failed_at__lt=end
    ).values_list(
        "invoice__organization_id", "invoice__total_currency", "invoice__total", "invoice__paid_at"
    ):
        part = account(organization_id, currency)
        part.dunning_entered += total
        if paid_at and paid_at < end:
            part.dunning_recovered += total
    return accounts


def _currency_figures(currency: str, parts: list[_Account]) -> RevenueFigures:
    """One currency's figures: its organizations' parts summed exactly, rounded once."""

    def total(amount: Callable[[_Account], Decimal], movement: str | None = None) -> Money:
        summed = sum(
            (amount(part) for part in parts if movement in (None, part.movement)), Decimal(0)
        )
        return round_money(Money(summed, currency))

    usage = sum((part.usage for part in parts), Decimal(0))
    return RevenueFigures(
        currency=currency,
        mrr_start=total(lambda part: part.mrr_start),
        mrr=total(lambda part: part.mrr),
        new=total(lambda part: part.mrr, "new"),
        reactivation=total(lambda part: part.mrr, "reactivation"),
        expansion=total(lambda part: part.change, "expansion"),
        contraction=total(lambda part: -part.change, "contraction"),
        churned=total(lambda part: part.mrr_start, "churned"),
        paying_accounts=sum(1 for part in parts if part.mrr),
        accounts_start=sum(1 for part in parts if part.mrr_start),
        accounts_churned=sum(1 for part in parts if part.movement == "churned"),
        usage_run_rate=round_money(Money(usage / RUN_RATE_MONTHS, currency)),
        invoiced=total(lambda part: part.invoiced),
        collected=total(lambda part: part.collected),
        overdue=total(lambda part: part.overdue),
        overdue_invoices=sum(part.overdue_invoices for part in parts),
        dunning_entered=total(lambda part: part.dunning_entered),
        dunning_recovered=total(lambda part: part.dunning_recovered),
    )


def revenue_report(*, month: dt.date, now: dt.datetime) -> RevenueReport:
    """The figures of the month that holds `month` (its first day, 00:00 UTC, to the next
    month's, or `now` if earlier), per currency: each the sum of the organizations' parts
    `revenue_organizations` lists, rounded once. A fixed number of queries."""
    start, end = _month_bounds(month, now)
    by_currency: dict[str, list[_Account]] = {}
    for (_, currency), part in _accounts(start=start, end=end).items():
        by_currency.setdefault(currency, []).append(part)

    figures = [
        _currency_figures(currency, parts) for currency, parts in sorted(by_currency.items())
    ]
    return RevenueReport(start=start, end=end, version=REVENUE_DEFINITIONS_VERSION, figures=figures)


TREND_MONTHS = 12


@dataclass(frozen=True)
class TrendPoint:
    """A month's MRR and usage run-rate at its end (or now), from that month's last daily
    snapshot, or computed when the month has none."""

    month: dt.date
    mrr: Money
    usage_run_rate: Money


def revenue_trend(*, month: dt.date, now: dt.datetime) -> dict[str, list[TrendPoint]]:
    """The twelve months up to the one that holds `month`, per currency, oldest first.
    Two queries, and three more per month without a snapshot: never more than 38, whatever
    the number of organizations."""
    last = dt.date(month.year, month.month, 1)
    months = [
        last - relativedelta(months=back)
        for back in range(TREND_MONTHS - 1, -1, -1)
        if dt.datetime.combine(last - relativedelta(months=back), dt.time(), dt.UTC) < now
    ]
    if not months:
        return {}
    until = last + relativedelta(months=1)
    kept: dict[dt.date, dict[str, tuple[Decimal, Decimal]]] = {}
    for snapshot in RevenueSnapshot.objects.filter(day__gte=months[0], day__lt=until).order_by(
        "day"
    ):
        first_day = snapshot.day.replace(day=1)
        # The latest day of each month wins.
        kept.setdefault(first_day, {})[snapshot.currency] = (snapshot.mrr, snapshot.usage_run_rate)
    usage_lines = list(
        InvoiceLine.objects.filter(
            kind__in=USAGE_LINE_KINDS,
            invoice__issued_at__gte=dt.datetime.combine(
                months[0] - relativedelta(months=RUN_RATE_MONTHS - 1), dt.time(), dt.UTC
            ),
            invoice__issued_at__lt=min(dt.datetime.combine(until, dt.time(), dt.UTC), now),
        )
        .exclude(invoice__status__in=(Invoice.Status.DRAFT, Invoice.Status.VOID))
        .values_list("amount_currency", "amount", "invoice__issued_at")
    )
    points: dict[str, list[TrendPoint]] = {}
    for first_day in months:
        figures = kept.get(first_day)
        if figures is None:
            start = dt.datetime.combine(first_day, dt.time(), dt.UTC)
            end = min(start + relativedelta(months=1), now)
            window_start = start - relativedelta(months=RUN_RATE_MONTHS - 1)
            usage = _sums(
                (currency, amount)
                for currency, amount, issued_at in usage_lines
                if window_start <= issued_at < end
            )
            mrr = _sums(mrr_by_organization(at=end).values())
            figures = {
                currency: (
                    mrr.get(currency, Decimal(0)),
                    usage.get(currency, Decimal(0)) / RUN_RATE_MONTHS,
                )
                for currency in set(mrr) | set(usage)
            }
        for currency, (mrr_amount, run_rate) in figures.items():
            points.setdefault(currency, []).append(
                TrendPoint(
                    month=first_day,
                    mrr=round_money(Money(mrr_amount, currency)),
                    usage_run_rate=round_money(Money(run_rate, currency)),
                )
            )
    return dict(sorted(points.items()))


@dataclass(frozen=True)
class OrganizationRevenue:
    """What one organization contributes, in one currency, to each of a month's figures."""

    organization_id: int
    name: str
    currency: str
    mrr_start: Money
    mrr: Money
    movement: str  # new, reactivation, expansion, contraction, churned, or "" (unchanged)
    usage_run_rate: Money
    invoiced: Money
    collected: Money
    overdue: Money
    overdue_invoices: int
    dunning_entered: Money
    dunning_recovered: Money


# The organizations behind each figure, by its name in the definitions: those whose part of
# it is not zero, or for a rate the organizations it is a rate of (logo churn and net revenue
# retention: those paying at the month's start, the churned among them marked).
REVENUE_DRILL_DOWNS: dict[str, Callable[[_Account], bool]] = {
    "mrr": lambda part: bool(part.mrr),
    "usage_run_rate": lambda part: bool(part.usage),
    "arr": lambda part: bool(part.mrr),
    "new": lambda part: part.movement == "new",
    "reactivation": lambda part: part.movement == "reactivation",
    "expansion": lambda part: part.movement == "expansion",
    "contraction": lambda part: part.movement == "contraction",
    "churned": lambda part: part.movement == "churned",
    "net_new": lambda part: bool(part.movement),
    "logo_churn": lambda part: bool(part.mrr_start),
    "revenue_churn": lambda part: part.movement in ("churned", "contraction"),
    "net_revenue_retention": lambda part: bool(part.mrr_start),
    "dunning_recovery": lambda part: bool(part.dunning_entered),
    "arpa": lambda part: bool(part.mrr),
    "invoiced": lambda part: bool(part.invoiced),
    "collected": lambda part: bool(part.collected),
    "overdue": lambda part: bool(part.overdue_invoices),
}


def revenue_organizations(
    *, month: dt.date, now: dt.datetime, figure: str | None = None
) -> list[OrganizationRevenue]:
    """The organizations behind one figure of the month (`REVENUE_DRILL_DOWNS`), or every
    organization with a part in any, by currency and name: the same parts `revenue_report`
    sums. A fixed number of queries."""
    start, end = _month_bounds(month, now)
    accounts = _accounts(start=start, end=end)
    if figure is not None:
        behind = REVENUE_DRILL_DOWNS[figure]
        accounts = {key: part for key, part in accounts.items() if behind(part)}
    names = dict(
        Organization.objects.filter(
            pk__in={organization_id for organization_id, _ in accounts}
        ).values_list("pk", "name")
    )
    rows = []
    for (organization_id, currency), part in accounts.items():

        def money(amount: Decimal, currency: str = currency) -> Money:
            return round_money(Money(amount, currency))

        rows.append(
            OrganizationRevenue(
                organization_id=organization_id,
                name=names[organization_id],
                currency=currency,
                mrr_start=money(part.mrr_start),
                mrr=money(part.mrr),
                movement=part.movement,
                usage_run_rate=money(part.usage / RUN_RATE_MONTHS),
                invoiced=money(part.invoiced),
                collected=money(part.collected),
                overdue=money(part.overdue),
                overdue_invoices=part.overdue_invoices,
                dunning_entered=money(part.dunning_entered),
                dunning_recovered=money(part.dunning_recovered),
            )
        )
    return sorted(rows, key=lambda row: (row.currency, row.name, row.organization_id))
