"""Writes that reach into the usage app, and the jobs of a subscription's life.

- Plan changes that let AI employees and phone numbers go: at once, or, for a scheduled
  change, when renewal applies it.
- Renewal: the scheduled job that closes usage periods, applies scheduled changes, opens
  the next period and issues its invoice. Safe to run twice, concurrently, or after a crash.
- Retention: an organization's usage data and AI employees are kept for
  `DATA_RETENTION_DAYS` after its subscription ends, so it can resubscribe and find them,
  then deleted. Invoices, credits and payments are kept for good.
- The data export an organization downloads before it leaves.

Usage is read, closed and changed through the usage app's services and selectors.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.tasks import async_task

from billing import locks, notifications
from billing.accounts.services import Actor, staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing.pricing import LineDraft
from billing.invoicing.services import invoice_issue, invoice_pdf_if_needed
from billing.lifecycle import exports
from billing.lifecycle.revenue import revenue_report
from billing.lifecycle.selectors import plan_change_preview
from billing.models import (
    Invoice,
    Organization,
    PendingLine,
    Plan,
    RenewalRun,
    RevenueSnapshot,
    Subscription,
)
from billing.notifications.emails import absolute_url
from billing.subscriptions import periods
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import PlanChangePreview, RenewalStep, renewal_step
from billing.subscriptions.services import (
    history_reason,
    pending_lines_take,
    scheduled_change_drop,
    subscription_set_status,
)
from usage import selectors as usage_selectors
from usage import services as usage_services
from usage.costs import selectors as cost_selectors
from usage.costs import services as cost_services
from usage.metering import services as metering
from usage.models import AIEmployee, PhoneNumber

logger = logging.getLogger(__name__)


# --- plan changes ---------------------------------------------------------------------------


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
    staff_action_begin(
        actor=actor,
        permission="billing.manage_subscription",
        action="Changing plans",
        subject=subscription,
        organization_id=subscription.organization_id,
        admins_may=True,
        changes={"plan": [subscription.plan, plan], "at period end": at_period_end},
    )
    now = now or timezone.now()
    subscription = subscription_services.subscription_lock_for_plan_change(
        subscription=subscription, plan=plan
    )
    preview = plan_change_preview(
        subscription=subscription, plan=plan, now=now, at_period_end=at_period_end
    )
    removals = _chosen_removals(preview, list(deactivate_employee_ids), list(release_number_ids))
    if preview.applies_now and removals:
        _removals_apply(subscription, plan, removals, at=now)
    return subscription_services.subscription_plan_change_record(
        subscription=subscription, preview=preview, removals=removals, actor=actor, now=now
    )


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


# --- renewals -----------------------------------------------------------------------------


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


# --- retention ----------------------------------------------------------------------------


CANCELED = Subscription.Status.CANCELED


def _purgeable(cutoff: dt.datetime) -> QuerySet[Subscription]:
    """Canceled, unpurged subscriptions of organizations whose latest subscription ended by
    `cutoff`: none live, none ended more recently."""
    kept = Subscription.objects.filter(
        ~Q(status=CANCELED) | Q(ended_at__gt=cutoff), organization=OuterRef("organization")
    )
    return Subscription.objects.filter(
        status=CANCELED, data_purged_at__isnull=True, ended_at__lte=cutoff
    ).exclude(Exists(kept))


def _lock_purgeable(organization_id: int, cutoff: dt.datetime) -> list[Subscription]:
    """The organization's subscriptions to mark purged, locked; empty if it is no longer due
    or another worker holds them (that worker purges it)."""
    query = _purgeable(cutoff).filter(organization_id=organization_id)
    return list(locks.subscription_lock(query, skip_locked=True))


def _organization_purge(organization_id: int, cutoff: dt.datetime, now: dt.datetime) -> bool:
    with transaction.atomic():
        subscriptions = _lock_purgeable(organization_id, cutoff)
        if not subscriptions:
            return False
        deleted = usage_services.organization_usage_data_delete(organization_id=organization_id)
        # Subscribing takes none of these locks: had the organization resubscribed since it
        # was found due, the deletes may have taken the new subscription's data, so undo them.
        if (
            Subscription.objects.filter(organization_id=organization_id)
            .exclude(status=CANCELED)
            .exists()
        ):
            transaction.set_rollback(True)
            return False
        reason = f"Usage data and AI employees deleted after {settings.DATA_RETENTION_DAYS} days"
        for subscription in subscriptions:
            subscription.data_purged_at = now
            subscription._change_reason = history_reason(reason)
            subscription._history_date = now
            subscription.save(update_fields=["data_purged_at"])
    logger.info("Purged the usage data of organization %s: %s", organization_id, deleted)
    return True


def usage_data_purge_if_needed(*, now: dt.datetime | None = None) -> int:
    """The scheduled job: delete the usage data and AI employees of every organization whose
    last subscription ended `DATA_RETENTION_DAYS` ago, one organization per transaction.
    Returns how many organizations were purged. One failing is logged and does not stop the
    others; a re-run finds nothing left to do."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.DATA_RETENTION_DAYS)
    due = (
        _purgeable(cutoff)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
        .distinct()
    )
    purged = 0
    for organization_id in list(due):
        try:
            purged += _organization_purge(organization_id, cutoff, now)
        except Exception:
            logger.exception(
                "Purging the data of organization %s failed; the next run retries it",
                organization_id,
            )
    return purged


# --- the data export ------------------------------------------------------------------------


def organization_export_write(
    *, organization: Organization, out: IO[bytes], now: dt.datetime | None = None
) -> None:
    """Write the organization's export, a zip of CSVs and invoice PDFs, to the binary file
    `out`. Invoice PDFs are rendered once and kept, like those the invoice pages serve."""
    exports.archive_write(
        organization=organization,
        out=out,
        now=now or timezone.now(),
        invoice_pdf=lambda invoice: invoice_pdf_if_needed(invoice=invoice),
    )


# --- revenue snapshots ----------------------------------------------------------------------

# The figures a snapshot keeps, by their names in the definitions.
SNAPSHOT_FIGURES = (
    "mrr",
    "usage_run_rate",
    "arr",
    "new",
    "reactivation",
    "expansion",
    "contraction",
    "churned",
    "net_new",
    "logo_churn",
    "revenue_churn",
    "net_revenue_retention",
    "dunning_recovery",
    "arpa",
    "invoiced",
    "collected",
    "overdue",
)


def _figure_text(value) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "amount", value))


@transaction.atomic
def revenue_snapshot_if_needed(*, now: dt.datetime | None = None) -> int:
    """Keep today's (UTC) revenue figures, per currency, once: the month so far, read at
    `now`, with the definitions' version. A second run the same day writes nothing. Returns
    the snapshots written."""
    now = now or timezone.now()
    today = now.astimezone(dt.UTC).date()
    if RevenueSnapshot.objects.filter(day=today).exists():
        return 0
    report = revenue_report(month=today, now=now)
    snapshots = [
        RevenueSnapshot(
            day=today,
            currency=figures.currency,
            definitions_version=report.version,
            mrr=figures.mrr.amount,
            usage_run_rate=figures.usage_run_rate.amount,
            figures={name: _figure_text(getattr(figures, name)) for name in SNAPSHOT_FIGURES},
            taken_at=now,
        )
        for figures in report.figures
    ]
    # Two workers on the same day: the unique day and currency keeps one of each.
    return len(RevenueSnapshot.objects.bulk_create(snapshots, ignore_conflicts=True))
