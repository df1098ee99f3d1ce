"""Reads of the billing app for pages, the admin and other apps. A fixed number of queries each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from djmoney.money import Money

from billing import periods
from billing.models import (
    Feature,
    FeatureTrial,
    Invoice,
    InvoiceLine,
    Membership,
    Organization,
    Plan,
    Subscription,
)

if TYPE_CHECKING:
    from billing.services.plan_changes import PlanChangePreview


@dataclass(frozen=True)
class OrgAccess:
    """What a signed-in person may do in one organization's billing pages."""

    organization: Organization
    role: str  # "admin", "member", or "staff" (support staff who are not members)
    subscription_status: str | None = None  # of the live subscription, read with the access

    @property
    def in_arrears(self) -> bool:
        return self.subscription_status in (
            Subscription.Status.PAST_DUE,
            Subscription.Status.SUSPENDED,
        )

    @property
    def sees_finances(self) -> bool:
        return self.role in ("admin", "staff")

    @property
    def can_manage(self) -> bool:
        """Changes (plans, payment methods) are for the organization's own administrators."""
        return self.role == "admin"


def _live_status(organization: str) -> Subquery:
    """The status of the live subscription of the organization `organization` refers to."""
    return Subquery(
        Subscription.objects.filter(organization=OuterRef(organization))
        .exclude(status=Subscription.Status.CANCELED)
        .values("status")[:1]
    )


def org_access_for(*, user: AbstractBaseUser, slug: str) -> OrgAccess | None:
    """Who the person is in the organization, with its subscription's status (which every
    page's payment banner needs), in one query."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=slug)
        .annotate(subscription_status=_live_status("organization"))
        .first()
    )
    if membership is not None:
        return OrgAccess(membership.organization, membership.role, membership.subscription_status)
    if user.is_staff:
        organization = (
            Organization.objects.filter(slug=slug)
            .annotate(subscription_status=_live_status("pk"))
            .first()
        )
        if organization is not None:
            return OrgAccess(organization, "staff", organization.subscription_status)
    return None


def memberships_for_user(*, user: AbstractBaseUser) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )


ORGANIZATIONS_PAGE_SIZE = 25


def organizations_for_staff(*, query: str, page_number: str | None) -> Page:
    """Support staff's way in: every organization by name, or those whose name or slug holds
    `query`, each with its live subscription (plan and status), a page at a time. Three
    queries whatever the number of organizations."""
    organizations = Organization.objects.order_by("name", "pk").prefetch_related(
        Prefetch(
            "subscriptions",
            queryset=Subscription.objects.exclude(
                status=Subscription.Status.CANCELED
            ).select_related("plan", "organization"),
            to_attr="live_subscriptions",
        )
    )
    if query:
        organizations = organizations.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    return Paginator(organizations, ORGANIZATIONS_PAGE_SIZE).get_page(page_number)


def organization_admins(*, organization: Organization) -> list[AbstractBaseUser]:
    return [
        membership.user
        for membership in organization.memberships.filter(role=Membership.Role.ADMIN)
        .select_related("user")
        .order_by("user__first_name", "user__username")
    ]


def subscription_live(*, organization: Organization) -> Subscription | None:
    return (
        Subscription.objects.filter(organization=organization)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("plan", "scheduled_plan")
        .first()
    )


@dataclass(frozen=True)
class BillingSummary:
    subscription: Subscription | None
    period_label: str = ""
    renews_on: dt.date | None = None
    ends_on: dt.date | None = None
    renewal_amount: Money | None = None
    renewal_plan: Plan | None = None
    pending_change: PendingChange | None = None

    @property
    def plan(self) -> Plan | None:
        return self.subscription.plan if self.subscription else None


def billing_summary(*, organization: Organization) -> BillingSummary:
    """The summary area of the billing page: plan, status, period and the next renewal."""
    subscription = subscription_live(organization=organization)
    if subscription is None:
        return BillingSummary(subscription=None)
    tz = organization.tzinfo
    period = subscription.billing_period
    renewal_plan = subscription.plan
    if subscription.scheduled_plan and subscription.scheduled_change_at <= period.end:
        renewal_plan = subscription.scheduled_plan
    renews = not subscription.cancel_at_period_end
    return BillingSummary(
        subscription=subscription,
        period_label=period.label(tz),
        renews_on=period.end.astimezone(tz).date() if renews else None,
        ends_on=None if renews else period.last_day(tz),
        renewal_amount=renewal_plan.price if renews else None,
        renewal_plan=renewal_plan if renews else None,
        pending_change=(
            pending_change(subscription=subscription) if subscription.scheduled_plan else None
        ),
    )


# --- plan comparison -----------------------------------------------------------------------


@dataclass
class PlanOffer:
    plan: Plan
    is_current: bool = False
    annual_saving: Money | None = None
    annual_saving_percent: Decimal | None = None
    feature_codes: set[str] = field(default_factory=set)


@dataclass
class PlanComparison:
    interval: str
    offers: list[PlanOffer]
    features: list[Feature]
    current_plan: Plan | None


def _offered(organization: Organization) -> Q:
    return (Q(is_public=True) | Q(organization=organization)) & Q(
        is_available=True, price_currency=organization.currency
    )


def plans_offered(*, organization: Organization) -> list[Plan]:
    """Plans this organization may choose: public ones and its own custom plans, in its currency."""
    return list(Plan.objects.filter(_offered(organization)).prefetch_related("features"))


def _live_subscriptions(organization: Organization) -> QuerySet[Subscription]:
    return Subscription.objects.filter(organization=organization).exclude(
        status=Subscription.Status.CANCELED
    )


def plan_comparison(*, organization: Organization, interval: str | None = None) -> PlanComparison:
    """Plans side by side for one billing interval (by default the organization's own, else
    monthly), the current plan marked (even a retired version), annual plans with what they
    save against twelve monthly payments. `current_plan` is the organization's plan whichever
    interval is shown."""
    # The offered plans and the current one in one query, so the page can afford the
    # usage costs beside them.
    plans = list(
        Plan.objects.annotate(
            is_current=Exists(_live_subscriptions(organization).filter(plan=OuterRef("pk"))),
            is_offered=ExpressionWrapper(_offered(organization), output_field=BooleanField()),
        )
        .filter(Q(is_offered=True) | Q(is_current=True))
        .prefetch_related("features")
    )
    current = next((plan for plan in plans if plan.is_current), None)
    if interval not in Plan.Interval.values:
        interval = current.interval if current else Plan.Interval.MONTH
    monthly_by_tier = {
        (plan.tier, plan.is_public): plan
        for plan in plans
        if plan.is_offered and plan.interval == Plan.Interval.MONTH
    }
    shown = [plan for plan in plans if plan.interval == interval]
    offers = []
    for plan in sorted(shown, key=lambda plan: (plan.rank, plan.price.amount)):
        offer = PlanOffer(
            plan=plan,
            is_current=plan.is_current,
            feature_codes={feature.code for feature in plan.features.all()},
        )
        monthly = monthly_by_tier.get((plan.tier, plan.is_public))
        if plan.interval == Plan.Interval.YEAR and monthly is not None:
            twelve_payments = monthly.price * 12
            offer.annual_saving = twelve_payments - plan.price
            offer.annual_saving_percent = (
                offer.annual_saving.amount / twelve_payments.amount * 100
            ).quantize(Decimal("1"))
        offers.append(offer)
    return PlanComparison(
        interval=interval,
        offers=offers,
        features=list(Feature.objects.all()),
        current_plan=current,
    )


@dataclass(frozen=True)
class StatusChange:
    at: dt.datetime
    previous: str
    status: str
    actor: str
    reason: str


def subscription_status_changes(*, subscription: Subscription) -> list[StatusChange]:
    """Who changed the subscription's status, when and why, oldest first."""
    records = subscription.history.order_by("history_date", "history_id").select_related(
        "history_user"
    )
    changes, previous = [], None
    for record in records:
        if record.status != previous:
            changes.append(
                StatusChange(
                    at=record.history_date,
                    previous=Subscription.Status(previous).label if previous else "",
                    status=Subscription.Status(record.status).label,
                    actor=str(record.history_user) if record.history_user else "system",
                    reason=record.history_change_reason or "",
                )
            )
            previous = record.status
    return changes


# --- invoices -----------------------------------------------------------------------------


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
    from zoneinfo import ZoneInfo  # only this read needs it

    return [
        InvoiceRow(invoice, invoice.period.label(ZoneInfo(invoice.customer_timezone or "UTC")))
        for invoice in invoices_for(organization=organization)
    ]


# --- feature access -----------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureAccess:
    """The one answer to "may this organization use feature X now?": its live plan's features,
    and running trials of features that plan lacks."""

    plan_codes: frozenset[str] = frozenset()
    trials: Mapping[str, dt.datetime] = field(default_factory=dict)  # code: when it ends

    def has(self, code: str) -> bool:
        return code in self.plan_codes or code in self.trials

    def trial_ends(self, code: str) -> dt.datetime | None:
        return self.trials.get(code)

    def source(self, code: str) -> str | None:
        """`plan`, `trial`, or None when the feature is locked."""
        if code in self.plan_codes:
            return "plan"
        return "trial" if code in self.trials else None


def _features_with_access(*, organization: Organization, now: dt.datetime) -> QuerySet[Feature]:
    """Every feature, with `in_plan` (the live subscription's plan includes it; a canceled
    subscription gives nothing) and `trial_ends_at` (a trial running at `now`, half-open)."""
    return Feature.objects.annotate(
        in_plan=Exists(_live_subscriptions(organization).filter(plan__features=OuterRef("pk"))),
        trial_ends_at=Subquery(
            FeatureTrial.objects.filter(
                organization=organization,
                feature=OuterRef("pk"),
                starts_at__lte=now,
                ends_at__gt=now,
            )
            .order_by("-ends_at")
            .values("ends_at")[:1]
        ),
    )


def _access(features: Iterable[Feature]) -> FeatureAccess:
    features = list(features)
    return FeatureAccess(
        plan_codes=frozenset(feature.code for feature in features if feature.in_plan),
        trials={
            feature.code: feature.trial_ends_at
            for feature in features
            if feature.trial_ends_at is not None and not feature.in_plan
        },
    )


def feature_access_for(*, organization: Organization, now: dt.datetime) -> FeatureAccess:
    """One query, read every time: a plan change or a trial counts the moment it happens."""
    return _access(
        _features_with_access(organization=organization, now=now).filter(
            Q(in_plan=True) | Q(trial_ends_at__isnull=False)
        )
    )


def organization_has_feature(*, organization: Organization, code: str, now: dt.datetime) -> bool:
    return feature_access_for(organization=organization, now=now).has(code)


def _ranked_for(organization: Organization, plans: QuerySet[Plan]) -> QuerySet[Plan]:
    """`plans` marked `in_current_interval` when the organization pays on that interval."""
    return plans.annotate(
        in_current_interval=Exists(
            _live_subscriptions(organization).filter(plan__interval=OuterRef("interval"))
        )
    )


def _cheapest(plans: Iterable[Plan]) -> Plan | None:
    """The cheapest of `plans` (marked by `_ranked_for`), on the organization's billing
    interval when one is there, monthly for an organization without a subscription."""
    return min(
        plans,
        key=lambda plan: (
            not plan.in_current_interval,
            plan.interval != Plan.Interval.MONTH,
            plan.monthly_equivalent.amount,
            plan.rank,
        ),
        default=None,
    )


def feature_upgrade_plan(*, organization: Organization, code: str) -> Plan | None:
    """The plan a locked feature names: the cheapest plan offered to the organization that
    includes it. One query."""
    return _cheapest(
        _ranked_for(organization, Plan.objects.filter(_offered(organization), features__code=code))
    )


@dataclass(frozen=True)
class FeatureStatus:
    feature: Feature
    source: str | None  # "plan", "trial", or None when locked
    trial_ends_at: dt.datetime | None
    # When the organization's plan lacks the feature: the cheapest offered plan that has it.
    upgrade_plan: Plan | None

    @property
    def enabled(self) -> bool:
        return self.source is not None


def _status(feature: Feature, access: FeatureAccess, upgrade_plan: Plan | None) -> FeatureStatus:
    return FeatureStatus(
        feature=feature,
        source=access.source(feature.code),
        trial_ends_at=access.trial_ends(feature.code),
        upgrade_plan=upgrade_plan,
    )


def feature_statuses(*, organization: Organization, now: dt.datetime) -> list[FeatureStatus]:
    """Every feature and how the organization has it, each locked one with the plan that
    unlocks it. Two queries."""
    offered = _ranked_for(organization, Plan.objects.filter(_offered(organization)))
    features = list(
        _features_with_access(organization=organization, now=now).prefetch_related(
            Prefetch("plans", queryset=offered, to_attr="offered_plans")
        )
    )
    access = _access(features)
    return [
        _status(feature, access, None if feature.in_plan else _cheapest(feature.offered_plans))
        for feature in features
    ]


def feature_status(
    *, organization: Organization, code: str, now: dt.datetime
) -> FeatureStatus | None:
    """One feature (None for an unknown code): one query, two when the plan lacks it."""
    feature = _features_with_access(organization=organization, now=now).filter(code=code).first()
    if feature is None:
        return None
    upgrade_plan = (
        None if feature.in_plan else feature_upgrade_plan(organization=organization, code=code)
    )
    return _status(feature, _access([feature]), upgrade_plan)


# --- changing plans, subscribing and cancelling -------------------------------------------
# The plan-change services read this module, so their own reads are imported where used.


def plan_change_action(*, current: Plan | None, plan: Plan, trialing: bool = False) -> str:
    """What choosing `plan` is, as its button says: `subscribe` without a live subscription,
    `current`, `switch` during a trial or between intervals of one tier, else `upgrade` or
    `downgrade`. From a custom plan, anything but an upgrade to a public plan is `contact`:
    its terms were negotiated, so the account manager changes them."""
    from billing.services.plan_changes import UPGRADE, change_kind

    if current is None:
        return "subscribe"
    if plan.pk == current.pk:
        return "current"
    kind = change_kind(current=current, new=plan)
    if not current.is_public and plan.is_public and kind != UPGRADE:
        return "contact"
    if trialing or plan.tier == current.tier:
        return "switch"
    return kind


def trial_days_offered(*, organization: Organization, plan: Plan) -> int:
    """The free trial subscribing to `plan` starts with: one per organization, ever."""
    if not plan.trial_days or organization.subscriptions.exists():
        return 0
    return plan.trial_days


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
    from billing.services.plan_changes import plan_change_preview

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
class PendingChange:
    """A scheduled plan change as the billing page announces it until it takes effect."""

    plan: Plan
    effective_at: dt.datetime
    features_lost: list[Feature]
    employees: list  # AI employees the admin chose to deactivate then
    numbers: list  # phone numbers the admin chose to release then
    more_employees: int  # still over the limit: the most recently added go too
    more_numbers: int


def pending_change(*, subscription: Subscription) -> PendingChange:
    """The subscription's scheduled plan change, with what it takes out of service then."""
    from billing.services.plan_changes import plan_change_preview

    preview = plan_change_preview(
        subscription=subscription, plan=subscription.scheduled_plan, at_period_end=True
    )
    chosen = subscription.scheduled_removals or {}
    employees = [e for e in preview.active_employees if e.pk in chosen.get("employees", [])]
    numbers = [n for n in preview.held_numbers if n.pk in chosen.get("phone_numbers", [])]
    return PendingChange(
        plan=subscription.scheduled_plan,
        effective_at=subscription.scheduled_change_at,
        features_lost=preview.features_lost,
        employees=employees,
        numbers=numbers,
        more_employees=max(preview.employees_over - len(employees), 0),
        more_numbers=max(preview.numbers_over - len(numbers), 0),
    )


@dataclass(frozen=True)
class Cancellation:
    """What cancelling the live subscription at `now` means, before the admin confirms."""

    subscription: Subscription
    last_day: dt.date  # the last day of access
    at_once: bool  # a suspended subscription has no paid period left: it ends at once
    retention_days: int
    data_kept_until: dt.date


def cancellation_for(*, organization: Organization, now: dt.datetime) -> Cancellation | None:
    subscription = subscription_live(organization=organization)
    if subscription is None:
        return None
    tz = organization.tzinfo
    at_once = subscription.status == Subscription.Status.SUSPENDED
    ends_at = now if at_once else subscription.current_period_end
    last_day = now.astimezone(tz).date() if at_once else subscription.billing_period.last_day(tz)
    days = settings.DATA_RETENTION_DAYS
    return Cancellation(
        subscription=subscription,
        last_day=last_day,
        at_once=at_once,
        retention_days=days,
        data_kept_until=(ends_at + dt.timedelta(days=days)).astimezone(tz).date(),
    )
