"""Every write of the billing app. Keyword-only, typed, each owning its transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from djmoney.money import Money

from billing import catalog, locks, notifications, periods, selectors
from billing.errors import BillingError, ErrorCode
from billing.models import Feature, Invoice, Membership, Organization, Plan, Subscription
from billing.money import round_money
from billing.services.invoices import invoice_issue, subscription_fee_line

Actor = AbstractBaseUser | None


# --- organizations ---------------------------------------------------------------------


@transaction.atomic
def organization_create(
    *, name: str, slug: str, billing_emails: str, admin: Actor = None, **details: Any
) -> Organization:
    organization = Organization(name=name, slug=slug, billing_emails=billing_emails, **details)
    organization.full_clean()
    organization.save()
    if admin is not None:
        membership_set(organization=organization, user=admin, role=Membership.Role.ADMIN)
    return organization


def membership_set(*, organization: Organization, user: AbstractBaseUser, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


# --- catalog -------------------------------------------------------------------------------


@transaction.atomic
def catalog_load() -> list[Plan]:
    """Create the features and the public demo plans that are missing. Safe to run again."""
    for position, (code, name, category, description) in enumerate(catalog.FEATURES):
        Feature.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "category": category,
                "description": description,
                "position": position,
            },
        )
    plans = []
    for spec in catalog.PUBLIC_PLANS:
        spec = dict(spec)
        monthly_price = spec.pop("monthly_price")
        annual_price = monthly_price * 12 * (1 - catalog.ANNUAL_DISCOUNT)
        code = spec.pop("code")
        name = spec.pop("name")
        plans.append(
            plan_ensure(
                code=f"{code}-monthly", name=name, interval="month", price=monthly_price, **spec
            )
        )
        plans.append(
            plan_ensure(
                code=f"{code}-annual", name=name, interval="year", price=annual_price, **spec
            )
        )
    return plans


def plan_ensure(
    *,
    code: str,
    price: Decimal,
    features: list[str],
    currency: str = "USD",
    organization: Organization | None = None,
    overage_cap: Decimal | None = None,
    **terms: Any,
) -> Plan:
    """The latest version of plan `code`, created with these terms if it does not exist."""
    existing = Plan.objects.filter(code=code).order_by("-version").first()
    if existing is not None:
        return existing
    plan = Plan(
        code=code,
        price=round_money(Money(price, currency)),
        overage_rate_per_second=Money(terms.pop("overage_rate_per_second"), currency),
        overage_rate_per_gb=Money(terms.pop("overage_rate_per_gb"), currency),
        overage_cap=Money(overage_cap, currency) if overage_cap is not None else None,
        is_public=organization is None,
        organization=organization,
        **terms,
    )
    plan.full_clean()
    plan.save()
    plan.features.set(Feature.objects.filter(code__in=features))
    return plan


@transaction.atomic
def plan_new_version(*, plan: Plan, changes: dict[str, Any]) -> Plan:
    """Publish a new version of `plan` with `changes` to its terms.

    The old version stops being offered; its subscribers keep it until they change plans.
    """
    latest = locks.plan_lock().filter(code=plan.code).order_by("-version").first()
    new = Plan.objects.get(pk=plan.pk)
    features = list(plan.features.all())
    new.pk = None
    new.version = latest.version + 1
    new.is_available = True
    for name, value in changes.items():
        setattr(new, name, value)
    new.full_clean()
    new.save()
    new.features.set(features)
    for retired in Plan.objects.filter(code=plan.code, is_available=True).exclude(pk=new.pk):
        retired.is_available = False
        retired._change_reason = f"Replaced by version {new.version}"
        retired.save(update_fields=["is_available"])
    return new


# --- subscriptions -------------------------------------------------------------------------


def check_plan_offered(*, organization: Organization, plan: Plan) -> None:
    """Refuse a plan the organization may not choose: another currency, another
    organization's custom plan, or a version no longer offered."""
    if plan.currency != organization.currency:
        raise BillingError(
            ErrorCode.CURRENCY_MISMATCH,
            f"{organization} bills in {organization.currency}; this plan is in {plan.currency}.",
        )
    if not plan.is_public and plan.organization_id != organization.pk:
        raise BillingError(
            ErrorCode.PLAN_NOT_OFFERED, "This custom plan belongs to another organization."
        )
    if not plan.is_available:
        raise BillingError(
            ErrorCode.PLAN_NOT_OFFERED, f"{plan} is no longer offered to new subscriptions."
        )


@transaction.atomic
def subscription_create(
    *,
    organization: Organization,
    plan: Plan,
    start: dt.datetime | None = None,
    trial: bool = True,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """Subscribe `organization` to `plan` from `start` (default: now).

    The anchor is local midnight of the start day in the organization's timezone; the
    current periods are the ones that contain `now`. The current period is invoiced in
    advance. A plan with trial days starts an organization's first subscription with a
    free trial instead: its end is the anchor, and the first invoice comes then.
    """
    now = now or timezone.now()
    start = start or now
    check_plan_offered(organization=organization, plan=plan)
    already = BillingError(
        ErrorCode.ALREADY_SUBSCRIBED, f"{organization} already has a live subscription."
    )
    if Subscription.objects.filter(organization=organization).exclude(status="canceled").exists():
        raise already

    tz = organization.tzinfo
    anchor = periods.anchor_for(start, tz)
    # One trial per organization: a returning customer starts paying at once.
    trial = trial and selectors.trial_days_offered(organization=organization, plan=plan) > 0
    if trial:
        # The trial runs to local midnight `trial_days` days on, which anchors the billing.
        trial_start, anchor = start, periods.days_after(anchor, tz, plan.trial_days)
        billing_period = usage_period = periods.Period(trial_start, anchor)
    else:
        billing_period = periods.period_at(anchor, tz, plan.months, now)
        usage_period = periods.period_at(anchor, tz, 1, now)
    subscription = Subscription(
        organization=organization,
        plan=plan,
        status=Subscription.Status.TRIALING if trial else Subscription.Status.ACTIVE,
        trial_starts_at=billing_period.start if trial else None,
        trial_ends_at=anchor if trial else None,
        anchor=anchor,
        anchor_timezone=organization.timezone,
        current_period_start=billing_period.start,
        current_period_end=billing_period.end,
        usage_period_start=usage_period.start,
        usage_period_end=usage_period.end,
        commitment_ends_at=(
            periods.boundary(anchor, tz, plan.months)
            if plan.interval == Plan.Interval.YEAR
            else None
        ),
    )
    subscription._history_user = actor
    subscription._change_reason = (
        f"Subscribed with a {plan.trial_days}-day trial" if trial else "Subscribed"
    )
    subscription._history_date = now
    try:
        with transaction.atomic():
            subscription.save()
    except IntegrityError as error:  # a concurrent request subscribed first
        raise already from error
    if trial:
        return subscription  # the first invoice comes when the trial ends
    invoice_issue(
        organization=organization,
        subscription=subscription,
        kind=Invoice.Kind.SUBSCRIPTION,
        period=subscription.billing_period,
        lines=[subscription_fee_line(plan=plan, period=subscription.billing_period, tz=tz)],
        now=now,
    )
    return subscription


def subscription_lock_live(*, organization_id: int) -> Subscription:
    """Lock the organization's live subscription row for the rest of the transaction.

    Every write that checks a quota or limit takes this lock first, so two concurrent
    requests cannot both pass a check that only one of them may pass.
    """
    subscription = (
        locks.subscription_lock()
        .select_related("plan", "organization")
        .filter(organization_id=organization_id)
        .exclude(status=Subscription.Status.CANCELED)
        .first()
    )
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    return subscription


def history_reason(reason: str) -> str:
    """The reason as the audit trail stores it: at most 100 characters."""
    return reason if len(reason) <= 100 else reason[:99] + "…"


ALLOWED_TRANSITIONS = {
    Subscription.Status.TRIALING: {"active", "past_due", "canceled"},
    Subscription.Status.ACTIVE: {"past_due", "canceled"},
    Subscription.Status.PAST_DUE: {"active", "suspended", "canceled"},
    # Back to past due when the invoice that suspended it is paid while others are retried.
    Subscription.Status.SUSPENDED: {"active", "past_due", "canceled"},
    Subscription.Status.CANCELED: set(),
}


@transaction.atomic
def subscription_set_status(
    *,
    subscription: Subscription,
    status: str,
    reason: str,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """The one way a subscription changes status: recorded (who, when, why) and announced."""
    now = now or timezone.now()
    subscription = locks.subscription_lock().get(pk=subscription.pk)
    previous = subscription.status
    if status == previous:
        return subscription
    if status not in ALLOWED_TRANSITIONS[previous]:
        raise BillingError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"A {subscription.get_status_display().lower()} subscription cannot become {status}.",
        )
    subscription.status = status
    if status == Subscription.Status.CANCELED:
        subscription.ended_at = now
    subscription._history_user = actor
    subscription._change_reason = history_reason(reason)
    subscription._history_date = now
    subscription.save()
    notifications.send_status_changed(subscription=subscription, previous=previous, reason=reason)
    return subscription
