"""Renewal: the scheduled job that closes usage periods, applies scheduled changes, opens
the next period and issues its invoice. Safe to run twice, concurrently, or after a crash.

Due subscriptions are read in chunks, with what renewing them reads besides the
subscription (numbers, taxes, cost rules); each is then renewed in its own transaction under
its own lock (SKIP LOCKED), one period per transaction. Each run is recorded for staff.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.tasks import async_task

from billing import locks, notifications
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing.pricing import LineDraft
from billing.invoicing.services import invoice_issue
from billing.lifecycle.services import scheduled_change_apply
from billing.models import (
    Invoice,
    Organization,
    PendingLine,
    Plan,
    RenewalRun,
    Subscription,
)
from billing.notifications.emails import absolute_url
from billing.subscriptions import periods
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import RenewalStep, renewal_step
from billing.subscriptions.services import (
    pending_lines_take,
    scheduled_change_drop,
    subscription_set_status,
)
from usage import selectors as usage_selectors
from usage.costs import selectors as cost_selectors
from usage.costs import services as cost_services
from usage.metering import services as metering
from usage.models import PhoneNumber

logger = logging.getLogger(__name__)


RENEWING = (Subscription.Status.TRIALING, Subscription.Status.ACTIVE, Subscription.Status.PAST_DUE)
# Due subscriptions whose organizations' facts are read together, before each is renewed in
# its own transaction under its own lock.
RENEWAL_CHUNK = 100


@dataclass(frozen=True)
class RenewalFacts:
    """What renewing an organization's subscription reads besides the subscription and its
    month's usage, read for a chunk of due subscriptions at once: its phone numbers, tax
    rates, whether it has a discount, a ledger or AI employees, and its cost rule. Read just
    before the chunk is renewed; what they say is there (a discount, a balance) is read again
    under its lock, so a renewal never spends what is no longer there."""

    numbers: list[PhoneNumber]
    issue: invoicing_selectors.IssueFacts
    costs: cost_selectors.CostFacts
    # The organization and the plans (immutable versions) read with the chunk, so that the
    # lock reads the subscription's own row only: its joins cost more to compile than to run.
    organization: Organization
    plans: dict[int, Plan]

    def attach(self, subscription: Subscription) -> None:
        """Give the subscription, just locked, its organization and plans read before. A
        plan the chunk did not read (changed meanwhile) is read when first used."""
        subscription.organization = self.organization
        for field in ("plan", "scheduled_plan"):
            plan = self.plans.get(getattr(subscription, f"{field}_id"))
            if plan is not None:
                setattr(subscription, field, plan)


def renewal_facts_for(*, subscription_ids: list[int]) -> dict[int, RenewalFacts]:
    """`RenewalFacts` by subscription id, in a fixed number of queries for the whole chunk."""
    subscriptions = list(
        Subscription.objects.filter(pk__in=subscription_ids).select_related(
            "organization", "plan", "scheduled_plan"
        )
    )
    if not subscriptions:
        return {}
    organizations = list({row.organization_id: row.organization for row in subscriptions}.values())
    organization_ids = [organization.pk for organization in organizations]
    since = min(min(row.current_period_start, row.usage_period_start) for row in subscriptions)
    numbers = usage_selectors.numbers_held_since(organization_ids=organization_ids, since=since)
    issue = invoicing_selectors.issue_facts_for(organizations=organizations)
    costs = cost_selectors.cost_facts_for(organization_ids=organization_ids)
    plans = {row.plan_id: row.plan for row in subscriptions} | {
        row.scheduled_plan_id: row.scheduled_plan for row in subscriptions if row.scheduled_plan_id
    }
    return {
        row.pk: RenewalFacts(
            numbers[row.organization_id],
            issue[row.organization_id],
            costs[row.organization_id],
            row.organization,
            plans,
        )
        for row in subscriptions
    }


def _usage_lines(
    subscription: Subscription, step: RenewalStep, now, facts: RenewalFacts | None
) -> list[LineDraft]:
    """Usage of the step's usage month, in arrears: call and storage overage, one line per
    number. Closes the month, so calls reported for it later count in the open one."""
    totals = metering.usage_period_close(
        organization_id=subscription.organization_id, period=step.usage_period, now=now
    )
    return cost_selectors.usage_month_drafts(
        subscription=subscription,
        plan=step.usage_plan,
        period=step.usage_period,
        call_seconds=totals.call_seconds,
        storage_peak_bytes=totals.storage_peak_bytes,
        number_fees=(
            usage_selectors.number_fees_of(
                numbers=facts.numbers, plan=step.usage_plan, period=step.usage_period
            )
            if facts is not None
            else None
        ),
    )


@functools.lru_cache(maxsize=1)
def _due_locked(now: dt.datetime) -> QuerySet[Subscription]:
    """Subscriptions with a period ended at `now`, each locked as it is read (skipping one
    that another worker holds). Made once for a run of the job, which shares its `now`, and
    read by key for each subscription: making it costs more than the statement's round trip.
    Never read itself, only filtered, so it holds no rows."""
    due = Q(current_period_end__lte=now) | Q(usage_period_end__lte=now)
    query = Subscription.objects.filter(due, status__in=RENEWING).annotate(
        # Read with the lock, so the common renewal without a plan change costs no query more.
        has_pending_lines=Exists(
            PendingLine.objects.filter(subscription=OuterRef("pk"), invoice__isnull=True)
        )
    )
    # One row at most (by its key): read without an ORDER BY, which costs compiling.
    return locks.subscription_lock(query, skip_locked=True).order_by()


def _lock_due(
    subscription_id: int, now: dt.datetime, facts: RenewalFacts | None
) -> Subscription | None:
    """The subscription, locked, if one of its periods has ended; None if it is not due or
    another worker holds it (that worker renews it). With `facts`, its organization and
    plans are the ones read with the chunk."""
    query = _due_locked(now).filter(pk=subscription_id)
    if facts is None:
        query = query.select_related("plan", "scheduled_plan", "organization")
    subscription = next(iter(query), None)
    if subscription is not None and facts is not None:
        facts.attach(subscription)
    return subscription


# What renewal changes: the periods, and a scheduled plan change applied or dropped.
RENEWAL_FIELDS = [
    "current_period_start",
    "current_period_end",
    "usage_period_start",
    "usage_period_end",
    "plan",
    "scheduled_plan",
    "scheduled_change_at",
    "scheduled_removals",
]


def _save(subscription: Subscription, reason: str, now: dt.datetime) -> None:
    subscription_services.subscription_save_recorded(
        subscription=subscription, fields=RENEWAL_FIELDS, reason=reason, now=now
    )


def _trial_end(
    subscription: Subscription, step: RenewalStep, now: dt.datetime, facts: RenewalFacts | None
) -> Invoice | None:
    """The trial is over: nothing is charged for it (usage beyond the allowance included);
    the subscription ends if it was canceled, otherwise its first period is invoiced."""
    trial = subscription.billing_period
    metering.usage_period_close(organization_id=subscription.organization_id, period=trial, now=now)
    if step.kind is None:
        subscription_set_status(
            subscription=subscription,
            status=Subscription.Status.CANCELED,
            reason=subscription.cancel_reason or "Canceled during the trial",
            now=trial.end,
        )
        return None
    tz, plan, first = subscription.tzinfo, subscription.plan, step.next_period
    subscription.current_period_start, subscription.current_period_end = first.start, first.end
    subscription.usage_period_start, subscription.usage_period_end = (
        step.next_usage.start,
        step.next_usage.end,
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
        kind=step.kind,
        period=step.period,
        lines=[step.fee],
        now=now,
        facts=facts.issue if facts else None,
    )


def _issue_with_pending(
    subscription: Subscription,
    now: dt.datetime,
    *,
    kind: str,
    period,
    lines: list[LineDraft],
    usage_period: periods.Period,
    facts: RenewalFacts | None,
) -> Invoice | None:
    """Issue the invoice with the lines waiting for it (a plan change's proration), and
    freeze its split among cost centers and AI employees for the usage month it closes."""
    pending = (
        pending_lines_take(subscription=subscription) if subscription.has_pending_lines else []
    )
    charges = lines + [LineDraft.of_pending(line) for line in pending]
    invoice = invoice_issue(
        organization=subscription.organization,
        subscription=subscription,
        kind=kind,
        period=period,
        lines=charges,
        now=now,
        facts=facts.issue if facts else None,
    )
    if pending:
        PendingLine.objects.filter(pk__in=[line.pk for line in pending]).update(invoice=invoice)
    if invoice is not None:
        cost_services.cost_shares_freeze(
            invoice=invoice,
            period=usage_period,
            charges=[
                cost_services.Charge(draft.kind, draft.amount_written, draft.details)
                for draft in charges
            ],
            facts=facts.costs if facts else None,
        )
    return invoice


def _renew_one_period(
    subscription: Subscription, now: dt.datetime, facts: RenewalFacts | None
) -> Invoice | None:
    """Advance `subscription` by one usage month or billing period, under its lock."""
    step = renewal_step(subscription=subscription)
    if subscription.is_trialing:
        return _trial_end(subscription, step, now, facts)
    plan = subscription.plan
    tz = subscription.tzinfo
    issue = functools.partial(
        _issue_with_pending,
        subscription,
        now,
        kind=step.kind,
        usage_period=step.usage_period,
        facts=facts,
    )
    if step.kind == Invoice.Kind.USAGE:
        lines = _usage_lines(subscription, step, now, facts)
        subscription.usage_period_start, subscription.usage_period_end = (
            step.next_usage.start,
            step.next_usage.end,
        )
        _save(subscription, f"Usage month {step.usage_period.label(tz)} closed", now)
        return issue(period=step.period, lines=lines)

    if step.kind == Invoice.Kind.FINAL:
        lines = _usage_lines(subscription, step, now, facts)
        if subscription.scheduled_plan_id:
            # The change was on hold while the subscription could still be kept: it never applies.
            scheduled_change_drop(subscription=subscription)
            _save(subscription, "Scheduled plan change dropped: the subscription ended", now)
        subscription_set_status(
            subscription=subscription,
            status=Subscription.Status.CANCELED,
            reason=subscription.cancel_reason or "Canceled at the end of the period",
            now=step.at,
        )
        return issue(period=step.period, lines=lines)

    reason = "Renewed"
    if step.changes_plan:
        next_plan = step.next_plan
        reason = f"Changed from {plan} to {next_plan} and renewed"
        removals = scheduled_change_apply(subscription=subscription, at=step.at)
        subscription.plan, subscription.scheduled_plan, subscription.scheduled_change_at = (
            next_plan,
            None,
            None,
        )
        notifications.send_plan_change_applied(
            subscription=subscription, previous=plan, removals=removals
        )
    lines = [step.fee, *_usage_lines(subscription, step, now, facts)]
    subscription.current_period_start, subscription.current_period_end = (
        step.next_period.start,
        step.next_period.end,
    )
    subscription.usage_period_start, subscription.usage_period_end = (
        step.next_usage.start,
        step.next_usage.end,
    )
    _save(subscription, f"{reason} for {step.next_period.label(tz)}", now)
    return issue(period=step.period, lines=lines)


def subscription_renew_if_needed(
    *, subscription_id: int, now: dt.datetime | None = None, facts: RenewalFacts | None = None
) -> list[Invoice]:
    """Bring one subscription up to date, one period per transaction. Returns the invoices
    issued: none when it is not due, already renewed, or being renewed by another worker.
    `facts` read with the chunk's serve its first period; a subscription that is several
    periods behind reads the others' afresh (its first invoice may have changed them)."""
    now = now or timezone.now()
    issued = []
    while True:
        with transaction.atomic():
            subscription = _lock_due(subscription_id, now, facts)
            if subscription is None:
                return issued
            invoice = _renew_one_period(subscription, now, facts)
        facts = None
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
    invoices were issued. One subscription failing is logged and does not stop the others.
    The run is recorded for staff; a failing or slow one is e-mailed to the superusers."""
    now = now or timezone.now()
    started, clock = timezone.now(), time.monotonic()
    due = list(
        Subscription.objects.filter(
            Q(current_period_end__lte=now) | Q(usage_period_end__lte=now), status__in=RENEWING
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    issued, failed = 0, []
    for start in range(0, len(due), RENEWAL_CHUNK):
        chunk = due[start : start + RENEWAL_CHUNK]
        chunk_facts = renewal_facts_for(subscription_ids=chunk)
        for subscription_id in chunk:
            try:
                issued += len(
                    subscription_renew_if_needed(
                        subscription_id=subscription_id,
                        now=now,
                        facts=chunk_facts.get(subscription_id),
                    )
                )
            except Exception:
                failed.append(subscription_id)
                logger.exception(
                    "Renewing subscription %s failed; the next run retries it", subscription_id
                )
    renewal_run_record(
        started_at=started,
        finished_at=started + dt.timedelta(seconds=time.monotonic() - clock),
        due=len(due),
        invoices_issued=issued,
        failed_subscriptions=failed,
    )
    return issued


def renewal_run_record(
    *,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    due: int,
    invoices_issued: int,
    failed_subscriptions: list[int],
) -> RenewalRun:
    """Record a run of the renewal job; one that failed for any subscription, or took longer
    than `RENEWAL_SLOW_SECONDS`, is e-mailed to the superusers once it is recorded."""
    with transaction.atomic():
        run = RenewalRun.objects.create(
            started_at=started_at,
            finished_at=finished_at,
            due=due,
            invoices_issued=invoices_issued,
            failed=len(failed_subscriptions),
            failed_subscriptions=failed_subscriptions,
        )
        if run.failed or run.duration.total_seconds() > settings.RENEWAL_SLOW_SECONDS:
            transaction.on_commit(lambda: _renewal_run_alert(run), robust=True)
    return run


def _renewal_run_alert(run: RenewalRun) -> None:
    recipients = list(
        get_user_model()
        .objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        logger.error("%s needs attention and no superuser has an e-mail address.", run)
        return
    context = {
        "run": run,
        "slow_seconds": settings.RENEWAL_SLOW_SECONDS,
        "failed_ids": ", ".join(str(pk) for pk in run.failed_subscriptions),
        "link": absolute_url("admin:billing_renewalrun_change", run.pk),
    }
    async_task(
        "billing.tasks.email_send",
        {
            "subject": " ".join(
                render_to_string("emails/staff/renewal_run_alert_subject.txt", context).split()
            ),
            "body": render_to_string("emails/staff/renewal_run_alert.txt", context),
            "html": render_to_string("emails/staff/renewal_run_alert.html", context),
            "to": recipients,
        },
    )
