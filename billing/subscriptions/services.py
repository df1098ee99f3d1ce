"""Writes of subscriptions: subscribing, the status machine, changing plans, scheduled
changes, cancellation and its reversal, trials. Keyword-only, typed; each owns its
transaction or says that it runs in its caller's.

An upgrade takes effect at once: the credit for the unused time on the old plan and the
charge for the rest of the period on the new one wait, as pending lines, for the next
invoice. Everything else waits for the end of the period (or of the commitment) as an
explicit scheduled change, which the renewal job applies. What a change does to the
organization's AI employees and phone numbers is `billing.lifecycle`'s part.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.manager import HistoryManager
from simple_history.utils import get_history_manager_for_model

from billing import locks, notifications
from billing.accounts.services import Actor, staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.invoicing.pricing import LineDraft, subscription_fee_line
from billing.invoicing.services import invoice_issue
from billing.models import Invoice, Organization, PendingLine, Plan, Subscription
from billing.subscriptions import periods
from billing.subscriptions import selectors as subscription_selectors
from billing.subscriptions.selectors import PlanChangePreview


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
    trial = (
        trial
        and subscription_selectors.trial_days_offered(organization=organization, plan=plan) > 0
    )
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


@functools.cache
def _history() -> HistoryManager:
    """The subscriptions' history, read once: simple-history makes a new manager class each
    time it is read, which a save that records history does too."""
    return get_history_manager_for_model(Subscription)


def subscription_save_recorded(
    *, subscription: Subscription, fields: list[str], reason: str, now: dt.datetime
) -> None:
    """Write `fields` of the caller's locked row, and its history row as a save writes it
    (every field, the user set on it or signed in, `reason`, `now`), in the caller's
    transaction: the renewal job saves every subscription it renews."""
    subscription._change_reason = history_reason(reason)
    subscription._history_date = now
    subscription.skip_history_when_saving = True
    try:
        subscription.save(update_fields=fields)
    finally:
        del subscription.skip_history_when_saving
    _history().bulk_history_create([subscription], update=True)


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


# --- changing plans ---------------------------------------------------------------------


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


def subscription_lock_for_plan_change(*, subscription: Subscription, plan: Plan) -> Subscription:
    """Lock the subscription's row for a change to `plan`, in the caller's transaction, and
    refuse a change it cannot make now."""
    subscription = _lock(subscription)
    _check_changeable(subscription)
    check_plan_offered(organization=subscription.organization, plan=plan)
    if plan.pk == subscription.plan_id:
        raise BillingError(ErrorCode.SAME_PLAN, f"The subscription is already on {plan}.")
    return subscription


def subscription_plan_change_record(
    *,
    subscription: Subscription,
    preview: PlanChangePreview,
    removals: dict[str, list[int]],
    actor: Actor = None,
    now: dt.datetime,
) -> Subscription:
    """Record the change `preview` describes on the row the caller locked, in its
    transaction. Applied now: the new plan and period, the proration pending for the next
    invoice (or on an invoice of its own, `BILLING_INVOICE_PRORATIONS_IMMEDIATELY`).
    Otherwise scheduled, with the AI employees and numbers chosen to go then (`removals`)."""
    plan, current = preview.new_plan, preview.current_plan
    if preview.applies_now:
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
                lines=[LineDraft.of_pending(line) for line in pending],
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


def pending_lines_take(*, subscription: Subscription) -> list[PendingLine]:
    """The lines waiting for the subscription's next invoice (caller holds its lock)."""
    return subscription_selectors.pending_lines_for(subscription=subscription)


@transaction.atomic
def subscription_scheduled_change_cancel(
    *, subscription: Subscription, actor: Actor = None, now: dt.datetime | None = None
) -> Subscription:
    """Keep the current plan: the scheduled change will not happen."""
    staff_action_begin(
        actor=actor,
        permission="billing.call_off_scheduled_change",
        action="Calling off a scheduled change",
        subject=subscription,
        organization_id=subscription.organization_id,
        admins_may=True,
    )
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
    staff_action_begin(
        actor=actor,
        permission="billing.manage_subscription",
        action="Cancelling a subscription",
        subject=subscription,
        organization_id=subscription.organization_id,
        admins_may=True,
        reason=reason,
    )
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
    staff_action_begin(
        actor=actor,
        permission="billing.manage_subscription",
        action="Reactivating a subscription",
        subject=subscription,
        organization_id=subscription.organization_id,
        admins_may=True,
    )
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
    staff_action_begin(
        actor=actor,
        permission="billing.extend_trial",
        action="Extending a trial",
        subject=subscription,
        organization_id=subscription.organization_id,
        changes={"trial ends": [subscription.trial_ends_at, ends_on]},
    )
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
