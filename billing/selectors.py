"""Reads of the billing app for pages, the admin and other apps. A fixed number of queries each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, Q, Subquery
from djmoney.money import Money

from billing.models import (
    Feature,
    Invoice,
    InvoiceLine,
    Membership,
    Organization,
    Plan,
    Subscription,
)


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


def plans_offered(*, organization: Organization) -> list[Plan]:
    """Plans this organization may choose: public ones and its own custom plans, in its currency."""
    return list(
        Plan.objects.filter(
            Q(is_public=True) | Q(organization=organization),
            is_available=True,
            price_currency=organization.currency,
        ).prefetch_related("features")
    )


def plan_comparison(*, organization: Organization, interval: str) -> PlanComparison:
    """Plans side by side for one billing interval, the current plan marked (even a retired
    version), annual plans with what they save against twelve monthly payments."""
    offered = plans_offered(organization=organization)
    subscription = subscription_live(organization=organization)
    current = subscription.plan if subscription else None
    monthly_by_tier = {
        (plan.tier, plan.is_public): plan
        for plan in offered
        if plan.interval == Plan.Interval.MONTH
    }
    shown = [plan for plan in offered if plan.interval == interval]
    if current is not None and current.interval == interval and current not in shown:
        current = Plan.objects.prefetch_related("features").get(pk=current.pk)
        shown.append(current)
    offers = []
    for plan in sorted(shown, key=lambda plan: (plan.rank, plan.price.amount)):
        offer = PlanOffer(
            plan=plan,
            is_current=current is not None and plan.pk == current.pk,
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
        "credits": [line for line in lines if line.kind == kinds.CREDIT],
        "credit_notes": list(invoice.credit_notes.all()),
        "seller": settings.BILLING_SELLER,
    }


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
