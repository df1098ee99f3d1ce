"""Reads of subscriptions: the live one and its summary, its status history, what changing
plans would do (the preview, priced by `billing.invoicing.pricing`), the scheduled change,
and what cancelling means.

A preview also says what the organization holds beyond the new plan's limits: its active AI
employees and phone numbers, which the usage app keeps. They come in as `Holdings`, read by
`billing.lifecycle`, so subscriptions never reach into usage themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from djmoney.money import Money

from billing.invoicing.pricing import LineDraft, proration_lines, subscription_fee_line
from billing.models import Feature, Invoice, Organization, PendingLine, Plan, Subscription
from billing.subscriptions import periods


def subscription_live(*, organization: Organization) -> Subscription | None:
    return (
        Subscription.objects.filter(organization=organization)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("plan", "scheduled_plan", "organization")
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
    """The summary area of the billing page: plan, status, period and the next renewal.
    A scheduled change comes without its `pending_change`, which needs what the organization
    holds: `billing.lifecycle.selectors.overview_page` adds it."""
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


def pending_lines_for(*, subscription: Subscription) -> list[PendingLine]:
    """The lines waiting for the subscription's next invoice (a plan change's proration)."""
    return list(PendingLine.objects.filter(subscription=subscription, invoice__isnull=True))


@dataclass(frozen=True)
class RenewalStep:
    """What the subscription's next renewal does, read before it runs: the invoice it issues
    (`kind`, `period`, the fee in advance) and the usage month it invoices in arrears, on
    which plan, and the periods it opens. Renewal carries it out; the upcoming invoice shows it.
    """

    at: dt.datetime  # when the period or usage month ends and renewal takes it
    kind: str | None  # of the invoice issued; None when the subscription just ends
    period: periods.Period | None  # the invoice's period
    fee: LineDraft | None  # the next period's fee, in advance
    usage_period: periods.Period | None  # invoiced in arrears (not for a free trial)
    usage_plan: Plan  # the usage month is priced on the plan it was used under
    next_plan: Plan | None  # a scheduled change applies when it differs from the plan
    next_period: periods.Period | None
    next_usage: periods.Period | None

    @property
    def changes_plan(self) -> bool:
        return self.next_plan is not None and self.next_plan != self.usage_plan


def renewal_step(*, subscription: Subscription) -> RenewalStep:
    """The next step of a live subscription's renewal: the end of its trial, of an annual
    plan's usage month, or of its billing period (renewed, changed or ended)."""
    tz, plan, anchor = subscription.tzinfo, subscription.plan, subscription.anchor
    if subscription.is_trialing:
        trial = subscription.billing_period
        if subscription.cancel_at_period_end:
            return RenewalStep(trial.end, None, None, None, None, plan, None, None, None)
        first = periods.nth_period(anchor, tz, plan.months, 0)
        return RenewalStep(
            at=trial.end,
            kind=Invoice.Kind.SUBSCRIPTION,
            period=first,
            fee=subscription_fee_line(plan=plan, period=first, tz=tz),
            usage_period=None,
            usage_plan=plan,
            next_plan=plan,
            next_period=first,
            next_usage=periods.nth_period(anchor, tz, 1, 0),
        )
    usage_period = subscription.usage_period
    if usage_period.end < subscription.current_period_end:
        # An annual plan's usage month ends: its usage is invoiced, the year goes on.
        return RenewalStep(
            at=usage_period.end,
            kind=Invoice.Kind.USAGE,
            period=usage_period,
            fee=None,
            usage_period=usage_period,
            usage_plan=plan,
            next_plan=plan,
            next_period=subscription.billing_period,
            next_usage=periods.period_at(anchor, tz, 1, usage_period.end),
        )
    ended = subscription.billing_period
    if subscription.cancel_at_period_end:
        return RenewalStep(
            ended.end, Invoice.Kind.FINAL, ended, None, usage_period, plan, None, None, None
        )
    next_plan = plan
    if subscription.scheduled_plan_id and subscription.scheduled_change_at <= ended.end:
        next_plan = subscription.scheduled_plan
    # Periods count whole months from the anchor, so a change of interval keeps the day.
    months_elapsed = periods.period_index_at(anchor, tz, 1, ended.end)
    next_period = periods.Period(
        ended.end, periods.boundary(anchor, tz, months_elapsed + next_plan.months)
    )
    return RenewalStep(
        at=ended.end,
        kind=Invoice.Kind.SUBSCRIPTION,
        period=next_period,
        fee=subscription_fee_line(plan=next_plan, period=next_period, tz=tz),
        usage_period=usage_period,
        usage_plan=plan,
        next_plan=next_plan,
        next_period=next_period,
        next_usage=periods.nth_period(anchor, tz, 1, months_elapsed),
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


# --- changing plans ---------------------------------------------------------------------

UPGRADE = "upgrade"
DOWNGRADE = "downgrade"


def change_kind(*, current: Plan, new: Plan) -> str:
    """An upgrade goes to a higher tier, or to a longer interval of the same tier, without
    shortening the interval; anything else is a downgrade and waits for the period's end."""
    if new.months < current.months:
        return DOWNGRADE
    if (new.rank, new.months) > (current.rank, current.months):
        return UPGRADE
    same_terms = (new.rank, new.months) == (current.rank, current.months)
    return UPGRADE if same_terms and new.price > current.price else DOWNGRADE


@dataclass(frozen=True)
class Holdings:
    """What an organization holds that plans limit, oldest first: its active AI employees and
    its phone numbers (usage models, read by `billing.lifecycle`)."""

    employees: list = field(default_factory=list)
    numbers: list = field(default_factory=list)


@dataclass(frozen=True)
class PlanChangePreview:
    """What changing to `new_plan` would do, shown before the admin confirms it."""

    subscription: Subscription
    current_plan: Plan
    new_plan: Plan
    kind: str
    applies_now: bool
    effective_at: dt.datetime
    new_period: periods.Period  # the billing period the new plan starts in
    proration: list[LineDraft]
    features_gained: list[Feature]
    features_lost: list[Feature]
    active_employees: list  # AI employees, oldest first
    employees_over: int  # active AI employees beyond the new plan's limit
    held_numbers: list  # phone numbers, oldest first
    numbers_over: int  # numbers beyond the new plan's limit

    @property
    def is_upgrade(self) -> bool:
        return self.kind == UPGRADE

    @property
    def proration_total(self) -> Money:
        return sum((line.amount for line in self.proration), Money(0, self.new_plan.currency))

    @property
    def needs_choices(self) -> bool:
        return bool(self.employees_over or self.numbers_over)


def _over(count: int, limit: int | None) -> int:
    return 0 if limit is None else max(count - limit, 0)


def plan_change_preview(
    *,
    subscription: Subscription,
    plan: Plan,
    holdings: Holdings,
    now: dt.datetime | None = None,
    at_period_end: bool = False,
) -> PlanChangePreview:
    """The effect of changing `subscription` to `plan` at `now`: when it applies, the
    proration, features gained and lost, and what of `holdings` exceeds the new limits."""
    now = now or timezone.now()
    current = subscription.plan
    tz = subscription.tzinfo
    period = subscription.billing_period
    kind = change_kind(current=current, new=plan)
    proration: list[LineDraft] = []
    if subscription.is_trialing:
        # Nothing has been charged yet: the trial simply continues on the other plan.
        effective_at, new_period = now, period
    elif kind == UPGRADE and not at_period_end:
        effective_at = now
        new_period = period
        if plan.months != current.months:
            # A longer interval starts with the current period, so the anchor day stays.
            months_elapsed = periods.period_index_at(subscription.anchor, tz, 1, period.start)
            new_period = periods.Period(
                period.start,
                periods.boundary(subscription.anchor, tz, months_elapsed + plan.months),
            )
        proration = proration_lines(
            current=current, new=plan, period=period, new_period=new_period, at=now, tz=tz
        )
    else:
        effective_at = max(period.end, subscription.commitment_ends_at or period.end)
        months_elapsed = periods.period_index_at(subscription.anchor, tz, 1, effective_at)
        new_period = periods.Period(
            effective_at, periods.boundary(subscription.anchor, tz, months_elapsed + plan.months)
        )
    current_features = list(current.features.all())
    new_features = list(plan.features.all())
    employees, numbers = holdings.employees, holdings.numbers
    return PlanChangePreview(
        subscription=subscription,
        current_plan=current,
        new_plan=plan,
        kind=kind,
        applies_now=effective_at == now,
        effective_at=effective_at,
        new_period=new_period,
        proration=proration,
        features_gained=[f for f in new_features if f not in current_features],
        features_lost=[f for f in current_features if f not in new_features],
        active_employees=employees,
        employees_over=_over(len(employees), plan.max_active_employees),
        held_numbers=numbers,
        numbers_over=_over(len(numbers), plan.max_phone_numbers),
    )


def plan_change_action(*, current: Plan | None, plan: Plan, trialing: bool = False) -> str:
    """What choosing `plan` is, as its button says: `subscribe` without a live subscription,
    `current`, `switch` during a trial or between intervals of one tier, else `upgrade` or
    `downgrade`. From a custom plan, anything but an upgrade to a public plan is `contact`:
    its terms were negotiated, so the account manager changes them."""
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
class PendingChange:
    """A scheduled plan change as the billing page announces it until it takes effect."""

    plan: Plan
    effective_at: dt.datetime
    features_lost: list[Feature]
    employees: list  # AI employees the admin chose to deactivate then
    numbers: list  # phone numbers the admin chose to release then
    more_employees: int  # still over the limit: the most recently added go too
    more_numbers: int


def pending_change(*, subscription: Subscription, preview: PlanChangePreview) -> PendingChange:
    """The subscription's scheduled plan change, with what it takes out of service then, from
    the change's `preview` (at the period's end, with what the organization holds)."""
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


# --- cancelling ---------------------------------------------------------------------------


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
