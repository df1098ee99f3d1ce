"""Writes that reach into the usage app, and the jobs of a subscription's life (renewal
itself is `billing.lifecycle.renewals`).

- Plan changes that let AI employees and phone numbers go: at once, or, for a scheduled
  change, when renewal applies it.
- Retention: an organization's usage data and AI employees are kept for
  `DATA_RETENTION_DAYS` after its subscription ends, so it can resubscribe and find them,
  then deleted. Invoices, credits and payments are kept for good.
- The data export an organization downloads before it leaves.

Usage is read, closed and changed through the usage app's services and selectors.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from billing import locks
from billing.accounts.services import Actor, staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.invoicing.services import invoice_pdf_if_needed
from billing.lifecycle import exports
from billing.lifecycle.revenue import revenue_report
from billing.lifecycle.selectors import plan_change_preview
from billing.models import (
    Organization,
    Plan,
    RevenueSnapshot,
    Subscription,
)
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import PlanChangePreview
from billing.subscriptions.services import (
    history_reason,
)
from usage import services as usage_services
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
