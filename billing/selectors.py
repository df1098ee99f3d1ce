"""Reads of the billing app for pages, the admin and other apps. A fixed number of queries each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from djmoney.money import Money

from billing import periods
from billing.catalog.selectors import plans_offered
from billing.models import (
    Feature,
    Organization,
    Plan,
    Subscription,
)

if TYPE_CHECKING:
    from billing.services.plan_changes import PlanChangePreview


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
