"""Plan changes and the rest of the subscription lifecycle: upgrades with proration,
scheduled downgrades, cancellation and its reversal, trials and feature trials.

An upgrade takes effect at once: the credit for the unused time on the old plan and the
charge for the rest of the period on the new one wait, as pending lines, for the next
invoice. Everything else waits for the end of the period (or of the commitment) as an
explicit scheduled change, which the renewal job applies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing import locks, notifications, periods
from billing.errors import BillingError, ErrorCode
from billing.models import (
    Feature,
    FeatureTrial,
    Invoice,
    InvoiceLine,
    Organization,
    PendingLine,
    Plan,
    Subscription,
)
from billing.money import round_money
from billing.services.invoices import LineDraft, invoice_issue
from billing.services.subscriptions import (
    Actor,
    check_plan_offered,
    history_reason,
    subscription_set_status,
)
from usage import services as usage_services
from usage.models import AIEmployee, PhoneNumber

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


def _share(price: Money, fraction) -> Money:
    return round_money(price * Decimal(fraction.numerator) / Decimal(fraction.denominator))


def proration_lines(
    *,
    current: Plan,
    new: Plan,
    period: periods.Period,
    new_period: periods.Period,
    at: dt.datetime,
    tz,
) -> list[LineDraft]:
    """Credit for the unused time of `period` on `current`, charge for the rest of
    `new_period` on `new`; each the exact share of its period, rounded once."""
    lines = []
    unused = period.fraction_remaining(at)
    if unused:
        covered = periods.Period(at, period.end)
        lines.append(
            LineDraft(
                InvoiceLine.Kind.PRORATION,
                f"Unused time on {current.name} ({current.get_interval_display().lower()}), "
                f"{covered.label(tz)}",
                -current.price,
                quantity=Decimal(unused.numerator / unused.denominator).quantize(Decimal("1e-6")),
                amount=-_share(current.price, unused),
                period=covered,
                details={"plan": current.code, "fraction": f"{unused}"},
            )
        )
    remaining = new_period.fraction_remaining(at)
    if remaining:
        covered = periods.Period(at, new_period.end)
        lines.append(
            LineDraft(
                InvoiceLine.Kind.PRORATION,
                f"Remaining time on {new.name} ({new.get_interval_display().lower()}), "
                f"{covered.label(tz)}",
                new.price,
                quantity=Decimal(remaining.numerator / remaining.denominator).quantize(
                    Decimal("1e-6")
                ),
                amount=_share(new.price, remaining),
                period=covered,
                details={"plan": new.code, "fraction": f"{remaining}"},
            )
        )
    return lines


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
    active_employees: list[AIEmployee]
    employees_over: int  # active AI employees beyond the new plan's limit
    held_numbers: list[PhoneNumber]
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
    now: dt.datetime | None = None,
    at_period_end: bool = False,
) -> PlanChangePreview:
    """The effect of changing `subscription` to `plan` at `now`: when it applies, the
    proration, features gained and lost, and what exceeds the new limits."""
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
    employees = list(
        AIEmployee.objects.filter(
            organization_id=subscription.organization_id, is_active=True
        ).order_by("created_at", "pk")
    )
    numbers = list(
        PhoneNumber.objects.filter(
            organization_id=subscription.organization_id, released_at__isnull=True
        )
        .select_related("employee")
        .order_by("provisioned_at", "pk")
    )
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


def _lock(subscription: Subscription) -> Subscription:
    return (
        locks.subscription_lock()
        .select_related("plan", "organization", "scheduled_plan")
        .get(pk=subscription.pk)
    )


def _save(subscription: Subscription, reason: str, actor: Actor, now: dt.datetime) -> None:
    subscription._history_user = actor
    subscription._change_reason = history_reason(reason)
    subscription._history_date = now
    subscription.save()


def _check_changeable(subscription: Subscription) -> None:
    if subscription.status == Subscription.Status.CANCELED:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION, "The subscription has ended.")
    if subscription.status == Subscription.Status.SUSPENDED:
        raise BillingError(
            ErrorCode.SUBSCRIPTION_SUSPENDED,
            "The subscription is suspended for non-payment: pay the open invoice before "
            "changing plans.",
        )
    if subscription.cancel_at_period_end:
        raise BillingError(ErrorCode.CANCELLATION_PENDING)


def _chosen_removals(
    preview: PlanChangePreview, employee_ids: list[int], number_ids: list[int]
) -> dict[str, list[int]]:
    """The AI employees and numbers the admin chose to let go, checked to bring the
    organization within the new plan's limits."""
    active = {employee.pk for employee in preview.active_employees}
    held = {number.pk for number in preview.held_numbers}
    employees = sorted(set(employee_ids) & active)
    numbers = sorted(set(number_ids) & held)
    short_employees = preview.employees_over - len(employees)
    short_numbers = preview.numbers_over - len(numbers)
    if short_employees > 0 or short_numbers > 0:
        plan = preview.new_plan
        missing = []
        if short_employees > 0:
            missing.append(
                f"{short_employees} more AI employee{'s' if short_employees > 1 else ''} to "
                f"deactivate ({plan.name} allows {plan.max_active_employees})"
            )
        if short_numbers > 0:
            missing.append(
                f"{short_numbers} more phone number{'s' if short_numbers > 1 else ''} to "
                f"release ({plan.name} allows {plan.max_phone_numbers})"
            )
        raise BillingError(
            ErrorCode.OVER_NEW_LIMITS,
            "Choose " + " and ".join(missing) + ".",
            employees_over=preview.employees_over,
            numbers_over=preview.numbers_over,
        )
    return {"employees": employees, "phone_numbers": numbers} if employees or numbers else {}


@transaction.atomic
def subscription_plan_change(
    *,
    subscription: Subscription,
    plan: Plan,
    actor: Actor = None,
    now: dt.datetime | None = None,
    at_period_end: bool = False,
    deactivate_employee_ids: list[int] = (),
    release_number_ids: list[int] = (),
) -> Subscription:
    """Change plans. An upgrade applies at once, its proration on the next invoice (or on
    an invoice of its own, `BILLING_INVOICE_PRORATIONS_IMMEDIATELY`); a downgrade, or any
    change `at_period_end`, is scheduled for the end of the period or of the commitment,
    with the AI employees and numbers chosen to go when it takes effect."""
    now = now or timezone.now()
    subscription = _lock(subscription)
    _check_changeable(subscription)
    check_plan_offered(organization=subscription.organization, plan=plan)
    current = subscription.plan
    if plan.pk == current.pk:
        raise BillingError(ErrorCode.SAME_PLAN, f"The subscription is already on {plan}.")
    preview = plan_change_preview(
        subscription=subscription, plan=plan, now=now, at_period_end=at_period_end
    )
    removals = _chosen_removals(preview, list(deactivate_employee_ids), list(release_number_ids))

    if preview.applies_now:
        if removals:
            _removals_apply(subscription, plan, removals, at=now)
        subscription.plan = plan
        subscription.current_period_end = preview.new_period.end
        if plan.months != current.months:
            subscription.commitment_ends_at = (
                preview.new_period.end if plan.interval == Plan.Interval.YEAR else None
            )
        superseded = subscription.scheduled_plan
        scheduled_change_drop(subscription=subscription)
        verb = "Switched" if subscription.is_trialing else "Upgraded"
        reason = f"{verb} from {current} to {plan}"
        if superseded:
            reason += f" (replaces the change to {superseded} that was scheduled)"
        _save(subscription, reason, actor, now)
        pending = _pending_lines_create(subscription, preview.proration, now)
        if pending and settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY:
            invoice = invoice_issue(
                organization=subscription.organization,
                subscription=subscription,
                kind=Invoice.Kind.PLAN_CHANGE,
                period=periods.Period(now, preview.new_period.end),
                lines=[line_draft(line) for line in pending],
                now=now,
            )
            PendingLine.objects.filter(pk__in=[line.pk for line in pending]).update(invoice=invoice)
    else:
        subscription.scheduled_plan = plan
        subscription.scheduled_change_at = preview.effective_at
        subscription.scheduled_removals = removals
        day = preview.effective_at.astimezone(subscription.tzinfo)
        _save(subscription, f"Change to {plan} scheduled for {day:%-d %b %Y}", actor, now)
    notifications.send_plan_change(subscription=subscription, preview=preview)
    return subscription


def _pending_lines_create(
    subscription: Subscription, drafts: list[LineDraft], now: dt.datetime
) -> list[PendingLine]:
    return PendingLine.objects.bulk_create(
        [
            PendingLine(
                subscription=subscription,
                kind=draft.kind,
                description=draft.description,
                quantity=Decimal(draft.quantity),
                unit_price=draft.unit_price,
                amount=draft.amount,
                period_start=draft.period.start,
                period_end=draft.period.end,
                details=draft.details,
                created_at=now,
            )
            for draft in drafts
        ]
    )


def line_draft(line: PendingLine) -> LineDraft:
    return LineDraft(
        line.kind,
        line.description,
        line.unit_price,
        quantity=line.quantity,
        amount=line.amount,
        period=line.period,
        details=line.details,
    )


def pending_lines_take(*, subscription: Subscription) -> list[PendingLine]:
    """The lines waiting for the subscription's next invoice (caller holds its lock)."""
    return list(PendingLine.objects.filter(subscription=subscription, invoice__isnull=True))


@transaction.atomic
def subscription_scheduled_change_cancel(
    *, subscription: Subscription, actor: Actor = None, now: dt.datetime | None = None
) -> Subscription:
    """Keep the current plan: the scheduled change will not happen."""
    now = now or timezone.now()
    subscription = _lock(subscription)
    if subscription.scheduled_plan is None:
        raise BillingError(ErrorCode.NO_SCHEDULED_CHANGE)
    dropped = subscription.scheduled_plan
    scheduled_change_drop(subscription=subscription)
    _save(subscription, f"Scheduled change to {dropped} called off", actor, now)
    return subscription


def scheduled_change_drop(*, subscription: Subscription) -> None:
    """Forget the scheduled plan change, on the caller's locked row, which the caller saves."""
    subscription.scheduled_plan = subscription.scheduled_change_at = None
    subscription.scheduled_removals = {}


@dataclass(frozen=True)
class Removals:
    """What a plan change took out of service: chosen by the admin, or, when they were
    not enough, the most recently added beyond the new limits."""

    employees: list[str]
    numbers: list[str]
    automatic: bool

    def __bool__(self) -> bool:
        return bool(self.employees or self.numbers)


def _removals_apply(
    subscription: Subscription, plan: Plan, chosen: dict, at: dt.datetime
) -> Removals:
    organization_id = subscription.organization_id
    employees = AIEmployee.objects.filter(organization_id=organization_id, is_active=True)
    numbers = PhoneNumber.objects.filter(organization_id=organization_id, released_at__isnull=True)
    let_go = list(employees.filter(pk__in=chosen.get("employees", [])))
    released = list(numbers.filter(pk__in=chosen.get("phone_numbers", [])))
    automatic = False
    # Added since the choice was made, or never chosen: the newest go first, never silently.
    if plan.max_active_employees is not None:
        staying = employees.exclude(pk__in=[e.pk for e in let_go]).order_by("created_at", "pk")
        extra = list(staying[plan.max_active_employees :])
        automatic |= bool(extra)
        let_go += extra
    if plan.max_phone_numbers is not None:
        kept = numbers.exclude(pk__in=[n.pk for n in released]).order_by("provisioned_at", "pk")
        extra = list(kept[plan.max_phone_numbers :])
        automatic |= bool(extra)
        released += extra
    for employee in let_go:
        usage_services.employee_deactivate(employee=employee, now=at)
    for number in released:
        usage_services.phone_number_release(phone_number=number, now=at)
    return Removals(
        employees=[employee.name for employee in let_go],
        numbers=[number.number for number in released],
        automatic=automatic,
    )


def scheduled_change_apply(*, subscription: Subscription, at: dt.datetime) -> Removals:
    """Take out of service what the scheduled plan leaves no room for, at the moment the
    change takes effect. Called by renewal, under the subscription's lock."""
    removals = _removals_apply(
        subscription, subscription.scheduled_plan, subscription.scheduled_removals, at
    )
    subscription.scheduled_removals = {}
    return removals


# --- cancellation -----------------------------------------------------------------------


@transaction.atomic
def subscription_cancel(
    *,
    subscription: Subscription,
    reason: str,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """End the subscription with its paid period: access stays until then, nothing more is
    charged and nothing is refunded. A scheduled plan change stays recorded but on hold:
    the subscription ends before it, and keeping the subscription brings it back. A
    suspended subscription, which has no paid period left, ends at once."""
    now = now or timezone.now()
    if not reason.strip():
        raise BillingError(ErrorCode.REASON_REQUIRED, "Tell us why you are cancelling.")
    subscription = _lock(subscription)
    if subscription.status == Subscription.Status.CANCELED:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION, "The subscription has already ended.")
    if subscription.cancel_at_period_end:
        raise BillingError(ErrorCode.ALREADY_CANCELING)
    subscription.cancel_reason = reason.strip()
    subscription.cancel_requested_at = now
    if subscription.status == Subscription.Status.SUSPENDED:
        scheduled_change_drop(subscription=subscription)
        _save(subscription, "Cancellation requested while suspended", actor, now)
        return subscription_set_status(
            subscription=subscription,
            status=Subscription.Status.CANCELED,
            reason=f"Canceled: {reason.strip()}",
            actor=actor,
            now=now,
        )
    subscription.cancel_at_period_end = True
    _save(subscription, f"Cancellation requested: {reason.strip()}", actor, now)
    notifications.send_cancellation(subscription=subscription)
    return subscription


@transaction.atomic
def subscription_reactivate(
    *, subscription: Subscription, actor: Actor = None, now: dt.datetime | None = None
) -> Subscription:
    """Keep a subscription that was set to end, as long as its period has not ended."""
    now = now or timezone.now()
    subscription = _lock(subscription)
    if not subscription.cancel_at_period_end or subscription.status == "canceled":
        raise BillingError(ErrorCode.NOT_CANCELING)
    if now >= subscription.current_period_end:
        raise BillingError(ErrorCode.PERIOD_ENDED)
    subscription.cancel_at_period_end = False
    subscription.cancel_requested_at = None
    reason = "Cancellation reversed: the subscription renews again"
    if subscription.scheduled_plan:
        reason += f", the change to {subscription.scheduled_plan} as scheduled"
    _save(subscription, reason, actor, now)
    notifications.send_cancellation_reversed(subscription=subscription)
    return subscription


# --- trials -------------------------------------------------------------------------------


@transaction.atomic
def subscription_trial_extend(
    *,
    subscription: Subscription,
    ends_on: dt.date,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """Give a trialing subscription more days. No paid period has begun, so the anchor,
    which is the trial's end, moves with it."""
    now = now or timezone.now()
    subscription = _lock(subscription)
    if not subscription.is_trialing:
        raise BillingError(ErrorCode.NOT_TRIALING)
    tz = subscription.tzinfo
    ends_at = periods.day_start(ends_on, tz)
    if ends_at <= subscription.trial_ends_at:
        raise BillingError(ErrorCode.TRIAL_NOT_EXTENDED)
    subscription.trial_ends_at = subscription.anchor = ends_at
    subscription.current_period_end = subscription.usage_period_end = ends_at
    if subscription.plan.interval == Plan.Interval.YEAR:
        subscription.commitment_ends_at = periods.boundary(ends_at, tz, 12)
    subscription.trial_reminder_sent_at = None
    _save(subscription, f"Trial extended to {ends_on:%-d %b %Y}", actor, now)
    return subscription


def trial_reminders_send_if_needed(*, now: dt.datetime | None = None) -> int:
    """Remind the billing contacts of every trial ending within the reminder window, once
    per trial. Returns how many were sent."""
    now = now or timezone.now()
    window = dt.timedelta(days=settings.TRIAL_REMINDER_DAYS_BEFORE_END)
    due = Subscription.objects.filter(
        status=Subscription.Status.TRIALING,
        trial_reminder_sent_at__isnull=True,
        trial_ends_at__gt=now,
        trial_ends_at__lte=now + window,
    ).values_list("pk", flat=True)
    sent = 0
    for subscription_id in list(due):
        with transaction.atomic():
            # The conditional update claims the reminder: a second run finds nothing to send.
            claimed = Subscription.objects.filter(
                pk=subscription_id, trial_reminder_sent_at__isnull=True
            ).update(trial_reminder_sent_at=now)
            if not claimed:
                continue
            subscription = Subscription.objects.select_related("plan", "organization").get(
                pk=subscription_id
            )
            notifications.send_trial_ending(subscription=subscription)
            sent += 1
    return sent


@transaction.atomic
def feature_trial_grant(
    *,
    organization: Organization,
    feature: Feature,
    days: int,
    note: str = "",
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> FeatureTrial:
    """Let an organization try one feature its plan does not include, for `days` days."""
    now = now or timezone.now()
    if days < 1:
        raise BillingError(ErrorCode.INVALID_TRIAL_LENGTH)
    if FeatureTrial.objects.filter(
        organization=organization, feature=feature, starts_at__lte=now, ends_at__gt=now
    ).exists():
        raise BillingError(
            ErrorCode.FEATURE_TRIAL_ACTIVE, f"{organization} is already trying {feature.name}."
        )
    return FeatureTrial.objects.create(
        organization=organization,
        feature=feature,
        starts_at=now,
        ends_at=now + dt.timedelta(days=days),
        note=note,
        granted_by=actor,
        created_at=now,
    )
