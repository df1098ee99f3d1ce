"""Reads that combine billing with the usage app: a plan change's preview with what the
organization holds, the scheduled change as the billing page announces it, and the pages
that show billing beside usage (the overview, the plans, the change of plan)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from djmoney.money import Money

from billing.catalog.selectors import PlanComparison, plan_comparison, plans_offered
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing.selectors import InvoiceRow, organization_balance
from billing.models import (
    AuditEntry,
    Invoice,
    Notification,
    Organization,
    Plan,
    Subscription,
)
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
from payments.models import PaymentAttempt, PaymentMethod
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
