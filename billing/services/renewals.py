"""Renewals: the scheduled job that closes usage periods, applies planned changes, opens
the next period and issues its invoice. Safe to run twice, concurrently, or after a crash.

Usage is read and closed through the usage app's services and selectors.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from djmoney.money import Money

from billing import locks, notifications, periods
from billing.models import Invoice, InvoiceLine, PendingLine, Plan, Subscription
from billing.money import format_rate
from billing.services.invoices import LineDraft, invoice_issue, subscription_fee_line
from billing.services.plan_changes import (
    line_draft,
    pending_lines_take,
    scheduled_change_apply,
    scheduled_change_drop,
)
from billing.services.subscriptions import history_reason, subscription_set_status
from usage import selectors as usage_selectors
from usage import services as usage_services

logger = logging.getLogger(__name__)

RENEWING = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)


def _seconds(value: int) -> str:
    return f"{value:,} s"


def _usage_lines(
    subscription: Subscription, plan: Plan, period: periods.Period, now
) -> list[LineDraft]:
    """Usage of a usage month, in arrears: call and storage overage, one line per number.
    Closes the month, so calls reported for it later count in the open one."""
    totals = usage_services.usage_period_close(
        organization_id=subscription.organization_id, period=period, now=now
    )
    label = period.label(subscription.tzinfo)
    lines = []
    included = plan.included_call_seconds
    if included is not None and totals.call_seconds > included:
        overage = totals.call_seconds - included
        details = {
            "included_seconds": included,
            "used_seconds": totals.call_seconds,
            "overage_seconds": overage,
            "rate": str(plan.overage_rate_per_second.amount),
        }
        used = f"{_seconds(totals.call_seconds)} used of {_seconds(included)} included"
        if plan.charges_overage:
            cost = usage_selectors.call_overage_cost(plan=plan, overage_seconds=overage)
            capped = plan.overage_cap is not None and cost == plan.overage_cap
            rate = format_rate(plan.overage_rate_per_second)
            lines.append(
                LineDraft(
                    InvoiceLine.Kind.OVERAGE_CALLS,
                    f"Call overage {label}: {used}, {_seconds(overage)} over at {rate}/s"
                    + (f", capped at {plan.overage_cap}" if capped else ""),
                    plan.overage_rate_per_second,
                    quantity=overage,
                    amount=cost,
                    period=period,
                    details=details | {"capped": capped},
                )
            )
        else:
            lines.append(
                LineDraft(
                    InvoiceLine.Kind.OVERAGE_CALLS,
                    f"Calls beyond the allowance {label}: {used}, {_seconds(overage)} over "
                    "(your plan pauses calls instead of charging: not charged)",
                    Money(0, plan.currency),
                    quantity=overage,
                    period=period,
                    details=details,
                )
            )
    over_gib = usage_selectors.storage_overage_gib(plan=plan, peak_bytes=totals.storage_peak_bytes)
    if over_gib:
        peak_gib = usage_selectors.gibibytes(totals.storage_peak_bytes)
        lines.append(
            LineDraft(
                InvoiceLine.Kind.OVERAGE_STORAGE,
                f"Storage overage {label}: peak {peak_gib} GiB of {plan.storage_gb} GiB included",
                plan.overage_rate_per_gb,
                quantity=over_gib,
                period=period,
                details={"peak_bytes": totals.storage_peak_bytes, "included_gb": plan.storage_gb},
            )
        )
    for fee in usage_selectors.number_fees_for_period(
        organization=subscription.organization, plan=plan, period=period
    ):
        number = fee.phone_number
        what = f"Phone number {number.number} ({number.get_number_type_display().lower()}"
        what += ", vanity)" if number.is_vanity else ")"
        if fee.is_free:
            what += ", included in your plan"
        elif fee.is_prorated:
            what += f", pro-rated from {fee.charged.start.astimezone(subscription.tzinfo):%-d %b}"
        lines.append(
            LineDraft(
                InvoiceLine.Kind.PHONE_NUMBER,
                f"{what}, {label}",
                fee.amount,
                period=fee.charged,
                details={"number": number.number, "monthly_fee": str(number.monthly_fee.amount)},
            )
        )
    return lines


def _lock_due(subscription_id: int, now: dt.datetime) -> Subscription | None:
    """The subscription, locked, if one of its periods has ended; None if it is not due or
    another worker holds it (that worker renews it)."""
    due = Q(current_period_end__lte=now) | Q(usage_period_end__lte=now)
    query = Subscription.objects.filter(due, pk=subscription_id, status__in=RENEWING).annotate(
        # Read with the lock, so the common renewal without a plan change costs no query more.
        has_pending_lines=Exists(
            PendingLine.objects.filter(subscription=OuterRef("pk"), invoice__isnull=True)
        )
    )
    query = locks.subscription_lock(query, skip_locked=True)
    return query.select_related("plan", "scheduled_plan", "organization").first()


def _save(subscription: Subscription, reason: str, now: dt.datetime) -> None:
    subscription._change_reason = history_reason(reason)
    subscription._history_date = now
    subscription.save()


def _trial_end(subscription: Subscription, now: dt.datetime) -> Invoice | None:
    """The trial is over: nothing is charged for it (usage beyond the allowance included);
    the subscription ends if it was canceled, otherwise its first period is invoiced."""
    trial = subscription.billing_period
    usage_services.usage_period_close(
        organization_id=subscription.organization_id, period=trial, now=now
    )
    if subscription.cancel_at_period_end:
        subscription_set_status(
            subscription=subscription,
            status=Subscription.Status.CANCELED,
            reason=subscription.cancel_reason or "Canceled during the trial",
            now=trial.end,
        )
        return None
    tz, plan = subscription.tzinfo, subscription.plan
    first = periods.nth_period(subscription.anchor, tz, plan.months, 0)
    first_usage = periods.nth_period(subscription.anchor, tz, 1, 0)
    subscription.current_period_start, subscription.current_period_end = first.start, first.end
    subscription.usage_period_start, subscription.usage_period_end = (
        first_usage.start,
        first_usage.end,
    )
    _save(subscription, "Trial period recorded", now)
    subscription_set_status(
        subscription=subscription,
        status=Subscription.Status.ACTIVE,
        reason=f"Trial ended: {plan} from {first.label(tz)}",
        now=trial.end,
    )
    return invoice_issue(
        organization=subscription.organization,
        subscription=subscription,
        kind=Invoice.Kind.SUBSCRIPTION,
        period=first,
        lines=[subscription_fee_line(plan=plan, period=first, tz=tz)],
        now=now,
    )


def _issue_with_pending(
    subscription: Subscription, now: dt.datetime, *, kind: str, period, lines: list[LineDraft]
) -> Invoice | None:
    """Issue the invoice with the lines waiting for it (a plan change's proration)."""
    pending = (
        pending_lines_take(subscription=subscription) if subscription.has_pending_lines else []
    )
    invoice = invoice_issue(
        organization=subscription.organization,
        subscription=subscription,
        kind=kind,
        period=period,
        lines=lines + [line_draft(line) for line in pending],
        now=now,
    )
    if pending:
        PendingLine.objects.filter(pk__in=[line.pk for line in pending]).update(invoice=invoice)
    return invoice


def _renew_one_period(subscription: Subscription, now: dt.datetime) -> Invoice | None:
    """Advance `subscription` by one usage month or billing period, under its lock."""
    if subscription.is_trialing:
        return _trial_end(subscription, now)
    plan = subscription.plan
    usage_period = subscription.usage_period
    tz = subscription.tzinfo
    issue = functools.partial(_issue_with_pending, subscription, now)
    if usage_period.end < subscription.current_period_end:
        # An annual plan's usage month ended: invoice its usage, open the next month.
        lines = _usage_lines(subscription, plan, usage_period, now)
        next_usage = periods.period_at(subscription.anchor, tz, 1, usage_period.end)
        subscription.usage_period_start, subscription.usage_period_end = (
            next_usage.start,
            next_usage.end,
        )
        _save(subscription, f"Usage month {usage_period.label(tz)} closed", now)
        return issue(kind=Invoice.Kind.USAGE, period=usage_period, lines=lines)

    ended = subscription.billing_period
    if subscription.cancel_at_period_end:
        lines = _usage_lines(subscription, plan, usage_period, now)
        if subscription.scheduled_plan_id:
            # The change was on hold while the subscription could still be kept: it never applies.
            scheduled_change_drop(subscription=subscription)
            _save(subscription, "Scheduled plan change dropped: the subscription ended", now)
        subscription_set_status(
            subscription=subscription,
            status=Subscription.Status.CANCELED,
            reason=subscription.cancel_reason or "Canceled at the end of the period",
            now=ended.end,
        )
        return issue(kind=Invoice.Kind.FINAL, period=ended, lines=lines)

    next_plan = plan
    reason = "Renewed"
    if subscription.scheduled_plan_id and subscription.scheduled_change_at <= ended.end:
        next_plan = subscription.scheduled_plan
        reason = f"Changed from {plan} to {next_plan} and renewed"
        removals = scheduled_change_apply(subscription=subscription, at=ended.end)
        subscription.plan, subscription.scheduled_plan, subscription.scheduled_change_at = (
            next_plan,
            None,
            None,
        )
        notifications.send_plan_change_applied(
            subscription=subscription, previous=plan, removals=removals
        )
    # Periods count whole months from the anchor, so a change of interval keeps the day.
    months_elapsed = periods.period_index_at(subscription.anchor, tz, 1, ended.end)
    next_period = periods.Period(
        ended.end, periods.boundary(subscription.anchor, tz, months_elapsed + next_plan.months)
    )
    next_usage = periods.nth_period(subscription.anchor, tz, 1, months_elapsed)
    lines = [subscription_fee_line(plan=next_plan, period=next_period, tz=tz)]
    lines += _usage_lines(subscription, plan, usage_period, now)
    subscription.current_period_start, subscription.current_period_end = (
        next_period.start,
        next_period.end,
    )
    subscription.usage_period_start, subscription.usage_period_end = (
        next_usage.start,
        next_usage.end,
    )
    _save(subscription, f"{reason} for {next_period.label(tz)}", now)
    return issue(kind=Invoice.Kind.SUBSCRIPTION, period=next_period, lines=lines)


def subscription_renew_if_needed(
    *, subscription_id: int, now: dt.datetime | None = None
) -> list[Invoice]:
    """Bring one subscription up to date, one period per transaction. Returns the invoices
    issued: none when it is not due, already renewed, or being renewed by another worker."""
    now = now or timezone.now()
    issued = []
    while True:
        with transaction.atomic():
            subscription = _lock_due(subscription_id, now)
            if subscription is None:
                return issued
            invoice = _renew_one_period(subscription, now)
        if invoice is not None:
            issued.append(invoice)
        if not _is_due(subscription, now):
            return issued


def _is_due(subscription: Subscription, now: dt.datetime) -> bool:
    return subscription.is_live and now >= min(
        subscription.current_period_end, subscription.usage_period_end
    )


def renew_subscriptions_if_needed(*, now: dt.datetime | None = None) -> int:
    """The scheduled job: renew every subscription with an ended period. Returns how many
    invoices were issued. One subscription failing is logged and does not stop the others."""
    now = now or timezone.now()
    due = (
        Subscription.objects.filter(
            Q(current_period_end__lte=now) | Q(usage_period_end__lte=now), status__in=RENEWING
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    issued = 0
    for subscription_id in list(due):
        try:
            issued += len(subscription_renew_if_needed(subscription_id=subscription_id, now=now))
        except Exception:
            logger.exception(
                "Renewing subscription %s failed; the next run retries it", subscription_id
            )
    return issued
