"""Reads that combine billing with the usage app: a plan change's preview with what the
organization holds, the scheduled change as the billing page announces it, and the pages
that show billing beside usage (the overview, the plans, the change of plan)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, Q, Subquery
from djmoney.money import Money

from billing.catalog.selectors import PlanComparison, plan_comparison, plans_offered
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing.selectors import InvoiceRow, organization_balance
from billing.models import (
    AuditEntry,
    Coupon,
    Discount,
    Invoice,
    InvoiceLine,
    Notification,
    Organization,
    Plan,
    RevenueSnapshot,
    Subscription,
)
from billing.money import round_money
from billing.notifications import selectors as notification_selectors
from billing.subscriptions import periods
from billing.subscriptions import selectors as subscription_selectors
from billing.subscriptions.selectors import (
    BillingSummary,
    Holdings,
    PendingChange,
    PlanChangePreview,
    plan_change_action,
    subscription_live,
    trial_days_offered,
)
from payments import selectors as payment_selectors
from payments.models import Collection, PaymentAttempt, PaymentMethod, Refund
from payments.selectors import MethodRow
from usage import selectors as usage_selectors
from usage.budgets import selectors as budget_selectors
from usage.budgets.selectors import BudgetsGlance
from usage.costs import selectors as cost_selectors
from usage.costs.selectors import UpcomingInvoice
from usage.models import AIEmployee, PhoneNumber
from usage.plan_fit import selectors as plan_fit_selectors
from usage.plan_fit.selectors import MonthBeyondPlan, PlanFit
from usage.selectors import UsageSummary


def holdings_for(*, organization_id: int) -> Holdings:
    """The organization's active AI employees and held phone numbers, oldest first."""
    return Holdings(
        employees=list(
            AIEmployee.objects.filter(organization_id=organization_id, is_active=True).order_by(
                "created_at", "pk"
            )
        ),
        numbers=list(
            PhoneNumber.objects.filter(organization_id=organization_id, released_at__isnull=True)
            .select_related("employee")
            .order_by("provisioned_at", "pk")
        ),
    )


def plan_change_preview(
    *,
    subscription: Subscription,
    plan: Plan,
    now: dt.datetime | None = None,
    at_period_end: bool = False,
) -> PlanChangePreview:
    """What changing `subscription` to `plan` at `now` does, with what the organization
    holds today."""
    return subscription_selectors.plan_change_preview(
        subscription=subscription,
        plan=plan,
        holdings=holdings_for(organization_id=subscription.organization_id),
        now=now,
        at_period_end=at_period_end,
    )


def pending_change(*, subscription: Subscription) -> PendingChange:
    """The subscription's scheduled plan change, with what it takes out of service then."""
    preview = plan_change_preview(
        subscription=subscription, plan=subscription.scheduled_plan, at_period_end=True
    )
    return subscription_selectors.pending_change(subscription=subscription, preview=preview)


# --- pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverviewPage:
    summary: BillingSummary  # with the scheduled change, if there is one
    # The rest for those who see finances (administrators and staff); empty for members.
    usage: UsageSummary | None = None  # the usage month so far, against every allowance
    usage_period_label: str = ""
    upcoming: UpcomingInvoice | None = None  # the next invoice so far and projected
    payment_method: MethodRow | None = None  # the default, for automatic payment
    latest_invoices: list[InvoiceRow] = dataclasses.field(default_factory=list)
    alerts: list[Notification] = dataclasses.field(default_factory=list)  # unread, this month
    budgets: BudgetsGlance | None = None  # each budget against the month's spend and forecast
    plan_options: list[Plan] = dataclasses.field(default_factory=list)  # offered on its interval


def overview_page(
    *, organization: Organization, with_finances: bool, user: AbstractBaseUser, now: dt.datetime
) -> OverviewPage:
    """The billing page: the subscription's summary with its scheduled change and, when
    `with_finances` (administrators and staff), the usage month against every allowance,
    the next invoice, the budgets against the month's spend and forecast, the default
    payment method, the latest invoices, the alerts `user` has not read and the other
    plans. A fixed number of queries."""
    summary = subscription_selectors.billing_summary(organization=organization)
    subscription = summary.subscription
    if subscription is not None and subscription.scheduled_plan is not None:
        summary = dataclasses.replace(
            summary, pending_change=pending_change(subscription=subscription)
        )
    if not with_finances:
        return OverviewPage(summary=summary)
    page = OverviewPage(
        summary=summary,
        latest_invoices=invoicing_selectors.invoices_latest(organization=organization),
        payment_method=(
            payment_selectors.default_method(
                organization=organization, today=now.astimezone(organization.tzinfo).date()
            )
            if organization.payment_terms == Organization.PaymentTerms.AUTOMATIC
            else None
        ),
    )
    if subscription is None:
        return page
    usage = usage_selectors.usage_summary(subscription=subscription, now=now)
    return dataclasses.replace(
        page,
        usage=usage,
        usage_period_label=usage.period.label(organization.tzinfo),
        upcoming=cost_selectors.upcoming_invoice_for(
            subscription=subscription, now=now, usage=usage
        ),
        alerts=notification_selectors.open_alerts(
            organization=organization, user=user, since=usage.period.start
        ),
        budgets=budget_selectors.budgets_glance(subscription=subscription, now=now),
        plan_options=[
            plan
            for plan in plans_offered(organization=organization, with_features=False)
            if plan.interval == subscription.plan.interval and plan != subscription.plan
        ],
    )


@dataclass(frozen=True)
class PlansPage:
    comparison: PlanComparison
    fit: PlanFit  # what the last usage months would have cost on each plan compared


def plans_page(*, organization: Organization, interval: str | None) -> PlansPage:
    """The plans side by side for one interval, each priced on the organization's usage."""
    comparison = plan_comparison(organization=organization, interval=interval)
    fit = plan_fit_selectors.plan_fit(
        organization=organization,
        current_plan=comparison.current_plan,
        plans=[offer.plan for offer in comparison.offers],
    )
    return PlansPage(comparison=comparison, fit=fit)


@dataclass(frozen=True)
class PlanChoice:
    """The change-plan page: what choosing `plan` does for the organization at `now`."""

    plan: Plan
    action: str
    subscription: Subscription | None
    preview: PlanChangePreview | None = None  # with a live subscription
    next_invoice_on: dt.date | None = None  # where the proration goes, unless invoiced now
    prorations_invoiced_now: bool = False
    # Subscribing: the trial, if any, and the first period invoiced (at once, or at its end)
    trial_days: int = 0
    first_period: periods.Period | None = None


def plan_choice(*, organization: Organization, plan_id: int, now: dt.datetime) -> PlanChoice | None:
    """Changing the live subscription to plan `plan_id`, or subscribing to it; None when the
    plan is not offered to the organization."""
    subscription = subscription_live(organization=organization)
    if subscription is not None and subscription.plan_id == plan_id:
        return PlanChoice(plan=subscription.plan, action="current", subscription=subscription)
    plan = next((p for p in plans_offered(organization=organization) if p.pk == plan_id), None)
    if plan is None:
        return None
    if subscription is None:
        tz = organization.tzinfo
        trial_days = trial_days_offered(organization=organization, plan=plan)
        # As subscribing does: a trial to local midnight `trial_days` on, then the first period.
        anchor = periods.days_after(periods.anchor_for(now, tz), tz, trial_days)
        return PlanChoice(
            plan=plan,
            action="subscribe",
            subscription=None,
            trial_days=trial_days,
            first_period=periods.nth_period(anchor, tz, plan.months, 0),
        )
    return PlanChoice(
        plan=plan,
        action=plan_change_action(
            current=subscription.plan, plan=plan, trialing=subscription.is_trialing
        ),
        subscription=subscription,
        preview=plan_change_preview(subscription=subscription, plan=plan, now=now),
        next_invoice_on=subscription.usage_period_end.astimezone(organization.tzinfo).date(),
        prorations_invoiced_now=settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY,
    )


@dataclass(frozen=True)
class PlanChangePage:
    choice: PlanChoice
    # The last usage months that would have gone past the new plan: refusals or overage.
    usage_beyond: list[MonthBeyondPlan]


def plan_change_page(
    *, organization: Organization, choice: PlanChoice, now: dt.datetime
) -> PlanChangePage:
    """The change-plan page: what choosing the plan does, and what recent usage would have
    met on it."""
    return PlanChangePage(
        choice=choice,
        usage_beyond=plan_fit_selectors.usage_beyond_plan(
            organization=organization, plan=choice.plan, now=now
        ),
    )


# --- support staff's page of one organization ---------------------------------------------

ORGANIZATION_360_ROWS = 10


@dataclass(frozen=True)
class Organization360:
    """Everything support staff look at for one organization, on one page: its latest
    subscription with the status history, this usage month against the plan, what it owes
    and holds in credit, how collection stands, how it pays, what it was told, and what staff
    did. The newest `ORGANIZATION_360_ROWS` of each list."""

    organization: Organization
    subscription: Subscription | None
    status_changes: list[subscription_selectors.StatusChange]
    usage: UsageSummary | None
    balance: Money
    open_invoices: list[Invoice]  # each with its collection, if collecting started
    recent_invoices: list[Invoice]
    payment_methods: list[PaymentMethod]
    payments: list[PaymentAttempt]
    notifications: list[Notification]
    audit_entries: list[AuditEntry]

    @property
    def amount_due(self) -> Money:
        currency = self.organization.currency
        return sum((invoice.total for invoice in self.open_invoices), Money(0, currency))

    @property
    def last_decline(self) -> PaymentAttempt | None:
        return next((p for p in self.payments if p.status == PaymentAttempt.Status.FAILED), None)


def organization_360(*, organization: Organization, now: dt.datetime) -> Organization360:
    """A fixed number of queries whatever the organization's size: one per list, each
    bounded, and the usage month's two."""
    rows = ORGANIZATION_360_ROWS
    subscription = (
        Subscription.objects.filter(organization=organization)
        .select_related("plan", "scheduled_plan")
        .order_by("-created_at", "-pk")
        .first()
    )
    live = subscription is not None and subscription.status != Subscription.Status.CANCELED
    invoices = Invoice.objects.filter(organization=organization).exclude(
        status=Invoice.Status.DRAFT
    )
    return Organization360(
        organization=organization,
        subscription=subscription,
        status_changes=(
            subscription_selectors.subscription_status_changes(subscription=subscription)[-rows:]
            if subscription is not None
            else []
        ),
        usage=usage_selectors.usage_summary(subscription=subscription, now=now) if live else None,
        balance=organization_balance(organization=organization),
        open_invoices=list(
            invoices.filter(status=Invoice.Status.OPEN)
            .select_related("collection")
            .order_by("due_at", "pk")[:rows]
        ),
        recent_invoices=list(invoices.order_by("-issued_at", "-pk")[:rows]),
        payment_methods=list(
            PaymentMethod.objects.filter(
                organization=organization, removed_at__isnull=True
            ).order_by("-is_default", "priority", "pk")[:rows]
        ),
        payments=list(
            PaymentAttempt.objects.filter(invoice__organization=organization)
            .select_related("invoice", "payment_method")
            .order_by("-attempted_at", "-pk")[:rows]
        ),
        notifications=list(
            Notification.objects.filter(organization=organization).order_by("-created_at", "-pk")[
                :rows
            ]
        ),
        audit_entries=list(
            AuditEntry.objects.filter(organization=organization).order_by("-at", "-pk")[:rows]
        ),
    )


# --- revenue metrics ------------------------------------------------------------------------

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


def revenue_report(*, month: dt.date, now: dt.datetime) -> RevenueReport:
    """The figures of the month that holds `month` (its first day, 00:00 UTC, to the next
    month's, or `now` if earlier), per currency. A fixed number of queries whatever the
    number of organizations and invoices."""
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    end = min(start + relativedelta(months=1), now)
    before = mrr_by_organization(at=start)
    after = mrr_by_organization(at=end)
    paid_before = set(
        Subscription.history.model.objects.filter(
            history_date__lt=start, status__in=PAYING_STATUSES
        ).values_list("organization_id", flat=True)
    )
    movements: dict[str, dict[str, Decimal]] = {}
    paying: dict[str, int] = {}
    paying_at_start: dict[str, int] = {}
    churned_accounts: dict[str, int] = {}
    for organization_id in before.keys() | after.keys():
        currency, was = before.get(organization_id, (None, Decimal(0)))
        currency, now_mrr = after.get(organization_id, (currency, Decimal(0)))
        figures = movements.setdefault(currency, {})
        if was:
            paying_at_start[currency] = paying_at_start.get(currency, 0) + 1
        if not was:
            kind = "reactivation" if organization_id in paid_before else "new"
            figures[kind] = figures.get(kind, Decimal(0)) + now_mrr
        elif not now_mrr:
            churned_accounts[currency] = churned_accounts.get(currency, 0) + 1
            figures["churned"] = figures.get("churned", Decimal(0)) + was
        elif now_mrr > was:
            figures["expansion"] = figures.get("expansion", Decimal(0)) + now_mrr - was
        elif now_mrr < was:
            figures["contraction"] = figures.get("contraction", Decimal(0)) + was - now_mrr
        if now_mrr:
            paying[currency] = paying.get(currency, 0) + 1
    mrr_start = _sums(before.values())
    mrr_end = _sums(after.values())
    billed = Invoice.objects.filter(issued_at__gte=start, issued_at__lt=end).exclude(
        status__in=(Invoice.Status.DRAFT, Invoice.Status.VOID)
    )
    invoiced = _sums(billed.values_list("total_currency", "total"))
    payments = _sums(
        PaymentAttempt.objects.filter(
            status=PaymentAttempt.Status.SUCCEEDED, attempted_at__gte=start, attempted_at__lt=end
        ).values_list("amount_currency", "amount")
    )
    refunds = _sums(
        Refund.objects.filter(created_at__gte=start, created_at__lt=end).values_list(
            "amount_currency", "amount"
        )
    )
    unpaid = list(
        Invoice.objects.filter(issued_at__lt=end, due_at__lt=end)
        .exclude(status=Invoice.Status.DRAFT)
        .filter(Q(paid_at__isnull=True) | Q(paid_at__gte=end))
        .filter(Q(voided_at__isnull=True) | Q(voided_at__gte=end))
        .values_list("total_currency", "total")
    )
    overdue = _sums(unpaid)
    usage = _sums(
        InvoiceLine.objects.filter(
            kind__in=USAGE_LINE_KINDS,
            invoice__issued_at__gte=start - relativedelta(months=RUN_RATE_MONTHS - 1),
            invoice__issued_at__lt=end,
        )
        .exclude(invoice__status__in=(Invoice.Status.DRAFT, Invoice.Status.VOID))
        .values_list("amount_currency", "amount")
    )
    dunning = list(
        Collection.objects.filter(first_failed_at__gte=start, first_failed_at__lt=end).values_list(
            "invoice__total_currency", "invoice__total", "invoice__paid_at"
        )
    )
    dunning_entered = _sums((currency, total) for currency, total, _ in dunning)
    dunning_recovered = _sums(
        (currency, total) for currency, total, paid_at in dunning if paid_at and paid_at < end
    )
    currencies = sorted(
        set(mrr_start)
        | set(mrr_end)
        | set(invoiced)
        | set(payments)
        | set(refunds)
        | set(overdue)
        | set(usage)
        | set(dunning_entered)
    )

    figures = []
    for currency in currencies:
        moved = movements.get(currency, {})

        def money(amount: Decimal | None, currency: str = currency) -> Money:
            # Summed unrounded, rounded once here.
            return round_money(Money(amount or Decimal(0), currency))

        figures.append(
            RevenueFigures(
                currency=currency,
                mrr_start=money(mrr_start.get(currency)),
                mrr=money(mrr_end.get(currency)),
                new=money(moved.get("new")),
                reactivation=money(moved.get("reactivation")),
                expansion=money(moved.get("expansion")),
                contraction=money(moved.get("contraction")),
                churned=money(moved.get("churned")),
                paying_accounts=paying.get(currency, 0),
                accounts_start=paying_at_start.get(currency, 0),
                accounts_churned=churned_accounts.get(currency, 0),
                usage_run_rate=money(usage.get(currency, Decimal(0)) / RUN_RATE_MONTHS),
                invoiced=money(invoiced.get(currency)),
                collected=money(payments.get(currency, 0) - refunds.get(currency, 0)),
                overdue=money(overdue.get(currency)),
                overdue_invoices=sum(1 for row_currency, _ in unpaid if row_currency == currency),
                dunning_entered=money(dunning_entered.get(currency)),
                dunning_recovered=money(dunning_recovered.get(currency)),
            )
        )
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
    """What one organization contributes to a month's MRR figures and usage run-rate."""

    organization_id: int
    name: str
    currency: str
    mrr_start: Money
    mrr: Money
    movement: str  # new, reactivation, expansion, contraction, churned, or "" (unchanged)
    usage_run_rate: Money


DRILLABLE_FIGURES = (
    "mrr",
    "usage_run_rate",
    "new",
    "reactivation",
    "expansion",
    "contraction",
    "churned",
)


def revenue_by_organization(*, month: dt.date, now: dt.datetime) -> list[OrganizationRevenue]:
    """The organizations behind the month's MRR figures and usage run-rate (the same rules as
    `revenue_report`), by currency and name. A fixed number of queries."""
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    end = min(start + relativedelta(months=1), now)
    before = mrr_by_organization(at=start)
    after = mrr_by_organization(at=end)
    paid_before = set(
        Subscription.history.model.objects.filter(
            history_date__lt=start, status__in=PAYING_STATUSES
        ).values_list("organization_id", flat=True)
    )
    usage: dict[int, tuple[str, Decimal]] = {}
    for organization_id, currency, amount in (
        InvoiceLine.objects.filter(
            kind__in=USAGE_LINE_KINDS,
            invoice__issued_at__gte=start - relativedelta(months=RUN_RATE_MONTHS - 1),
            invoice__issued_at__lt=end,
        )
        .exclude(invoice__status__in=(Invoice.Status.DRAFT, Invoice.Status.VOID))
        .values_list("invoice__organization_id", "amount_currency", "amount")
    ):
        _, total = usage.get(organization_id, (currency, Decimal(0)))
        usage[organization_id] = (currency, total + amount)
    involved = before.keys() | after.keys() | usage.keys()
    names = dict(Organization.objects.filter(pk__in=involved).values_list("pk", "name"))
    rows = []
    for organization_id in involved:
        currency, was = before.get(organization_id, (None, Decimal(0)))
        currency, is_now = after.get(organization_id, (currency, Decimal(0)))
        currency, used = usage.get(organization_id, (currency, Decimal(0)))
        if not was:
            movement = (
                ("reactivation" if organization_id in paid_before else "new") if is_now else ""
            )
        elif not is_now:
            movement = "churned"
        else:
            movement = "expansion" if is_now > was else "contraction" if is_now < was else ""
        rows.append(
            OrganizationRevenue(
                organization_id=organization_id,
                name=names[organization_id],
                currency=currency,
                mrr_start=round_money(Money(was, currency)),
                mrr=round_money(Money(is_now, currency)),
                movement=movement,
                usage_run_rate=round_money(Money(used / RUN_RATE_MONTHS, currency)),
            )
        )
    return sorted(rows, key=lambda row: (row.currency, row.name, row.organization_id))


def revenue_contributors(
    rows: list[OrganizationRevenue], *, figure: str
) -> list[OrganizationRevenue]:
    """The rows behind one figure (`DRILLABLE_FIGURES`)."""
    if figure == "mrr":
        return [row for row in rows if row.mrr.amount]
    if figure == "usage_run_rate":
        return [row for row in rows if row.usage_run_rate.amount]
    return [row for row in rows if row.movement == figure]
