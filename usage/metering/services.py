"""Writes of usage metering: finished calls, storage and API usage reports, and the closing
of a usage month for invoicing. Each fact counts once, in the usage month it belongs to."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from billing.errors import BillingError, ErrorCode
from billing.models import Organization, Subscription
from billing.subscriptions import periods
from usage.alerts.selectors import Metric, threshold_rows
from usage.alerts.services import (
    Change,
    call_time_changes,
    usage_alert_notices_queue,
    usage_alerts_evaluate,
)
from usage.locks import usage_counter_lock
from usage.models import AIEmployee, Call, EmployeeUsageCounter, UsageCounter, UsageReport

MAX_CALL_SECONDS = 24 * 3600
CLOCK_SKEW = dt.timedelta(minutes=5)
DIRECTIONS = frozenset(Call.Direction.values)  # built once: `.values` makes a new list each time


def usage_period_for(subscription: Subscription, moment: dt.datetime) -> periods.Period:
    """The usage period a fact measured at `moment` counts in: the one containing it."""
    if moment in subscription.usage_period:
        return subscription.usage_period
    return subscription.usage_period_at(moment)


def _unless_invoiced(
    subscription: Subscription, period: periods.Period, closed: bool
) -> periods.Period:
    """Where a fact of `period` counts: there, or, once invoicing has closed that month, in
    the open one, billed rather than lost. Nothing of the trial is ever charged, so a fact of
    the trial stays in it, even reported after the trial ended."""
    if closed and period != subscription.trial_period:
        return subscription.usage_period
    return period


# --- calls --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallReport:
    call_id: str
    organization: str  # slug
    employee_id: int
    direction: str
    connected_at: dt.datetime
    ended_at: dt.datetime


@dataclass(frozen=True)
class Problem:
    """One reason a report was refused: where (`index` in a batch, `field`) and what."""

    field: str
    code: str
    message: str
    index: int | None = None


class ReportRejected(BillingError):
    def __init__(self, problems: list[Problem]):
        super().__init__(ErrorCode.INVALID_REPORT, problems[0].message, problems=problems)
        self.problems = problems


@dataclass(frozen=True)
class RecordResult:
    recorded: list[str]
    duplicates: list[str]


# What makes a call the same call, as reported and as stored: reported again with all of
# these equal, it is a repeat.
CALL_CONTENT = {
    "organization": "organization_id",
    "employee_id": "employee_id",
    "direction": "direction",
    "connected_at": "connected_at",
    "ended_at": "ended_at",
}


@dataclass(frozen=True)
class Conflict:
    """A call id already recorded with other content: which call (`index` in a batch) and
    which of `CALL_CONTENT` differ."""

    call_id: str
    fields: list[str]
    index: int | None = None


class CallConflict(BillingError):
    def __init__(self, conflicts: list[Conflict]):
        message = " ".join(
            f"{conflict.call_id} was already reported with a different {', '.join(conflict.fields)}."
            for conflict in conflicts
        )
        super().__init__(
            ErrorCode.CALL_CONFLICT,
            f"{message} {ErrorCode.CALL_CONFLICT.message}",
            conflicts=[vars(conflict) for conflict in conflicts],
        )


def billable_seconds(connected_at: dt.datetime, ended_at: dt.datetime) -> int:
    """Connect to disconnect, a started second counting as a whole one."""
    return math.ceil((ended_at - connected_at).total_seconds())


def _check_report(report: CallReport, index, subscriptions, employees, now) -> list[Problem]:
    problems = []
    if not report.call_id or len(report.call_id) > 100:
        problems.append(
            Problem("call_id", "invalid", "call_id must have 1 to 100 characters.", index)
        )
    if report.direction not in DIRECTIONS:
        problems.append(
            Problem("direction", "invalid", "direction must be inbound or outbound.", index)
        )
    if report.organization not in subscriptions:
        problems.append(
            Problem(
                "organization",
                "no_subscription",
                "No organization with a live subscription has this id.",
                index,
            )
        )
    elif employees.get(report.employee_id) != subscriptions[report.organization].organization_id:
        problems.append(
            Problem(
                "employee_id",
                "unknown_employee",
                "No AI employee of this organization has this id.",
                index,
            )
        )
    if report.ended_at < report.connected_at:
        problems.append(
            Problem("ended_at", "before_connect", "ended_at is before connected_at.", index)
        )
    elif (report.ended_at - report.connected_at).total_seconds() > MAX_CALL_SECONDS:
        problems.append(
            Problem("ended_at", "too_long", "A call cannot last more than 24 hours.", index)
        )
    if report.ended_at > now + CLOCK_SKEW:
        problems.append(Problem("ended_at", "in_future", "ended_at is in the future.", index))
    subscription = subscriptions.get(report.organization)
    if subscription is not None and report.connected_at < subscription.started_at:
        problems.append(
            Problem(
                "connected_at",
                "before_subscription",
                "connected_at is before the subscription began.",
                index,
            )
        )
    return problems


def calls_record(*, reports: list[CallReport], now: dt.datetime | None = None) -> RecordResult:
    """Record finished calls, all or none. A call id already recorded with the same content
    changes nothing; with other content it is refused (`CallConflict`), and so is the batch.

    The facts and the counters they add to are written in one transaction, and only rows
    that were really inserted count, so concurrent or repeated reports never count twice.
    """
    now = now or timezone.now()
    slugs = {report.organization for report in reports}
    subscriptions = {
        subscription.organization.slug: subscription
        for subscription in Subscription.objects.filter(organization__slug__in=slugs)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("organization", "plan")
    }
    employee_rows = AIEmployee.objects.filter(
        pk__in={report.employee_id for report in reports}
    ).values_list("pk", "organization_id", "cost_center")
    employees = {pk: organization_id for pk, organization_id, _ in employee_rows}
    cost_centers = {pk: cost_center for pk, _, cost_center in employee_rows}
    problems = [
        problem
        for index, report in enumerate(reports)
        for problem in _check_report(
            report, index if len(reports) > 1 else None, subscriptions, employees, now
        )
    ]
    seen: set[str] = set()
    for index, report in enumerate(reports):
        if report.call_id in seen:
            problems.append(
                Problem("call_id", "repeated_in_batch", f"{report.call_id} appears twice.", index)
            )
        seen.add(report.call_id)
    if problems:
        raise ReportRejected(problems)

    # `usage_period_for`, with each subscription's open month made once rather than per call.
    open_months = {slug: subscription.usage_period for slug, subscription in subscriptions.items()}
    measured = []
    for report in reports:
        subscription, period = subscriptions[report.organization], open_months[report.organization]
        if report.connected_at not in period:
            period = subscription.usage_period_at(report.connected_at)
        measured.append((report, subscription, period))
    closed = _closed_periods({(s.organization_id, period.start) for _, s, period in measured})
    rows = []
    for report, subscription, period in measured:
        period = _unless_invoiced(
            subscription, period, (subscription.organization_id, period.start) in closed
        )
        rows.append(
            (
                report,
                subscription.organization_id,
                period,
                billable_seconds(report.connected_at, report.ended_at),
            )
        )
    with transaction.atomic():
        inserted = _insert_new_calls(rows, now)
        conflicts = _conflicts(rows, inserted, in_batch=len(reports) > 1)
        if conflicts:
            raise CallConflict(conflicts)
        totals: dict[tuple[int, periods.Period], list[int]] = defaultdict(lambda: [0, 0])
        by_employee: dict[tuple[int, str, dt.datetime, int], int] = defaultdict(int)
        for report, organization_id, period, seconds in rows:
            if report.call_id in inserted:
                totals[organization_id, period][0] += seconds
                totals[organization_id, period][1] += 1
                employee_key = (report.employee_id, cost_centers[report.employee_id])
                by_employee[(*employee_key, period.start, organization_id)] += seconds
        after = _counters_add(
            {
                key: {"call_seconds": seconds, "calls": count}
                for key, (seconds, count) in totals.items()
            }
        )
        _employee_counters_add(by_employee)
        _call_time_alerts(subscriptions.values(), totals, after, now)
    return RecordResult(
        recorded=[report.call_id for report, *_ in rows if report.call_id in inserted],
        duplicates=[report.call_id for report, *_ in rows if report.call_id not in inserted],
    )


def _call_time_alerts(subscriptions, totals, after, now: dt.datetime) -> None:
    """Usage alerts on the call time (and overage) these calls added, in their transaction."""
    by_organization = {subscription.organization_id: subscription for subscription in subscriptions}
    rows = threshold_rows(organization_ids={organization_id for organization_id, _ in after})
    crossed = []
    for (organization_id, period), (seconds_after, _) in after.items():
        subscription = by_organization[organization_id]
        crossed += usage_alerts_evaluate(
            subscription=subscription,
            period=period,
            changes=call_time_changes(
                plan=subscription.plan,
                period=period,
                trial=period == subscription.trial_period,
                before=seconds_after - totals[organization_id, period][0],
                after=seconds_after,
            ),
            rows=rows[organization_id],
            now=now,
        )
    usage_alert_notices_queue(alerts=crossed)


def _conflicts(rows, inserted: set[str], *, in_batch: bool) -> list[Conflict]:
    """The reports that were not inserted, compared with the calls recorded under their ids
    (committed ones: the insert waited for any concurrent writer of the same id)."""
    repeats = {
        report.call_id: (
            index,
            (
                organization_id,
                report.employee_id,
                report.direction,
                report.connected_at,
                report.ended_at,
            ),
        )
        for index, (report, organization_id, *_) in enumerate(rows)
        if report.call_id not in inserted
    }
    if not repeats:
        return []
    recorded = {
        call_id: content
        for call_id, *content in Call.objects.filter(platform_call_id__in=repeats).values_list(
            "platform_call_id", *CALL_CONTENT.values()
        )
    }
    conflicts = []
    for call_id, (index, reported) in repeats.items():
        differing = [
            field
            for field, new, old in zip(CALL_CONTENT, reported, recorded[call_id], strict=True)
            if new != old
        ]
        if differing:
            conflicts.append(Conflict(call_id, differing, index if in_batch else None))
    return conflicts


def _closed_periods(keys: set[tuple[int, dt.datetime]]) -> set[tuple[int, dt.datetime]]:
    """Which of these (organization, usage period start) have been closed by invoicing."""
    if not keys:
        return set()
    match = Q()
    for organization_id, start in keys:
        match |= Q(organization_id=organization_id, period_start=start)
    return set(
        UsageCounter.objects.filter(match, closed_at__isnull=False).values_list(
            "organization_id", "period_start"
        )
    )


def _insert_new_calls(rows, now) -> set[str]:
    """One INSERT of every row that skips known call ids and returns the ids it inserted.

    Rows go in call id order: an insert waits for any concurrent transaction inserting the
    same id, so batches sharing calls must take them in one order, or they deadlock.
    On PostgreSQL the rows travel as one array per column, unnested in their order: nine
    parameters rather than nine per call, which the driver would otherwise find one by one
    in a statement of thousands. Elsewhere, a multi-row VALUES."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda row: row[0].call_id)
    adapt = connection.ops.adapt_datetimefield_value
    now = adapt(now)
    values = [
        (
            report.call_id,
            organization_id,
            report.employee_id,
            report.direction,
            adapt(report.connected_at),
            adapt(report.ended_at),
            seconds,
            adapt(period.start),
            now,
        )
        for report, organization_id, period, seconds in rows
    ]
    table = connection.ops.quote_name(Call._meta.db_table)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{_column_type(column)}[]" for column in CALL_COLUMNS)
        source = f"SELECT * FROM unnest({arrays})"  # noqa: S608 - types from model metadata
        params = [list(column) for column in zip(*values, strict=True)]
    else:
        row = "(" + ", ".join(["%s"] * len(CALL_COLUMNS)) + ")"
        source = "VALUES " + ", ".join([row] * len(values))
        params = [value for row_values in values for value in row_values]
    sql = (
        f"INSERT INTO {table} ({', '.join(CALL_COLUMNS)}) {source} "
        "ON CONFLICT (platform_call_id) DO NOTHING RETURNING platform_call_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


# The columns of a call as `_insert_new_calls` writes them.
CALL_COLUMNS = (
    "platform_call_id",
    *CALL_CONTENT.values(),
    "billable_seconds",
    "usage_period_start",
    "recorded_at",
)


def _column_type(column: str) -> str:
    return Call._meta.get_field(column).db_type(connection)


def _counters_add(
    increments: dict[tuple[int, periods.Period], dict[str, int]],
) -> dict[tuple[int, periods.Period], tuple[int, int]]:
    """Add to usage counters, creating missing ones, locking them in a fixed order. Returns
    each counter's call seconds and API calls after the addition, as this transaction made
    them (`RETURNING`): what usage alerts compare with the value before."""
    if not increments:
        return {}
    in_order = sorted(increments.items(), key=lambda item: (item[0][0], item[0][1].start))
    UsageCounter.objects.bulk_create(
        [
            UsageCounter(
                organization_id=organization_id, period_start=period.start, period_end=period.end
            )
            for (organization_id, period), _ in in_order
        ],
        ignore_conflicts=True,
    )
    quote = connection.ops.quote_name
    table = quote(UsageCounter._meta.db_table)
    after = {}
    with connection.cursor() as cursor:
        for (organization_id, period), amounts in in_order:
            if not amounts:
                continue
            additions = ", ".join(f"{quote(name)} = {quote(name)} + %s" for name in amounts)
            cursor.execute(
                f"UPDATE {table} SET {additions} "  # noqa: S608 - fixed identifiers
                "WHERE organization_id = %s AND period_start = %s "
                "RETURNING call_seconds, api_calls",
                [
                    *amounts.values(),
                    organization_id,
                    connection.ops.adapt_datetimefield_value(period.start),
                ],
            )
            after[organization_id, period] = cursor.fetchone()
    return after


def _employee_counters_add(seconds: dict[tuple[int, str, dt.datetime, int], int]) -> None:
    """Add call seconds to the AI employees' counters (keyed by employee, cost center, usage
    period start and organization) in one statement. After the organization's counters, in
    employee order: an employee's counter is only reached through its organization's, which
    this transaction already holds, so concurrent reporters cannot deadlock on them."""
    if not seconds:
        return
    adapt = connection.ops.adapt_datetimefield_value
    params = []
    for (employee_id, cost_center, period_start, organization_id), added in sorted(seconds.items()):
        params += [organization_id, employee_id, cost_center, adapt(period_start), added]
    table = connection.ops.quote_name(EmployeeUsageCounter._meta.db_table)
    placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(seconds))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS counter "  # noqa: S608 - fixed identifiers
            "(organization_id, employee_id, cost_center, period_start, call_seconds) "
            f"VALUES {placeholders} "
            "ON CONFLICT (employee_id, period_start, cost_center) "
            "DO UPDATE SET call_seconds = counter.call_seconds + EXCLUDED.call_seconds",
            params,
        )


# --- storage and API usage ----------------------------------------------------------------


@transaction.atomic
def usage_report_record(
    *,
    organization: Organization,
    kind: str,
    report_id: str,
    quantity: int,
    measured_at: dt.datetime,
    now: dt.datetime | None = None,
) -> bool:
    """Record stored bytes (a level) or API calls (a count) once; False for a repeat."""
    now = now or timezone.now()
    subscription = (
        Subscription.objects.filter(organization=organization)
        .exclude(status=Subscription.Status.CANCELED)
        .first()
    )
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    if measured_at > now + CLOCK_SKEW:
        raise ReportRejected([Problem("measured_at", "in_future", "measured_at is in the future.")])
    period = usage_period_for(subscription, measured_at)
    period = _unless_invoiced(
        subscription, period, bool(_closed_periods({(organization.pk, period.start)}))
    )
    try:
        with transaction.atomic():
            UsageReport.objects.create(
                organization=organization,
                kind=kind,
                report_id=report_id,
                quantity=quantity,
                measured_at=measured_at,
                period_start=period.start,
                recorded_at=now,
            )
    except IntegrityError:
        return False
    if kind == UsageReport.Kind.API_CALLS:
        after = _counters_add({(organization.pk, period): {"api_calls": quantity}})
        api_calls_after = after[organization.pk, period][1]
        change = Change(
            Metric.API_CALLS, Decimal(api_calls_after - quantity), Decimal(api_calls_after)
        )
        usage_alert_notices_queue(
            alerts=usage_alerts_evaluate(
                subscription=subscription, period=period, changes=[change], now=now
            )
        )
        return True
    _counters_add({(organization.pk, period): {}})
    counter = usage_counter_lock().filter(organization=organization, period_start=period.start)
    before = counter.values_list("storage_bytes", flat=True).get()
    latest_level = UsageReport.objects.filter(
        organization=organization, kind=UsageReport.Kind.STORAGE, period_start=period.start
    ).order_by("-measured_at", "-pk")[:1]
    counter.update(
        storage_bytes=latest_level.values("quantity"),
        storage_peak_bytes=Greatest(F("storage_peak_bytes"), quantity),
    )
    after = counter.values_list("storage_bytes", flat=True).get()
    usage_alert_notices_queue(
        alerts=usage_alerts_evaluate(
            subscription=subscription,
            period=period,
            changes=[Change(Metric.STORAGE, Decimal(before), Decimal(after))],
            now=now,
        )
    )
    return True


# --- closing a usage month ---------------------------------------------------------------


@dataclass(frozen=True)
class UsageTotals:
    call_seconds: int
    calls: int
    storage_peak_bytes: int
    api_calls: int


def usage_period_close(
    *, organization_id: int, period: periods.Period, now: dt.datetime
) -> UsageTotals:
    """Close a usage month for invoicing and return its totals. From now on facts measured
    in it count in the open month instead, so nothing reported late is lost or billed twice."""
    totals = _counter_close(organization_id, period, now)
    if totals is None:
        # A month without any usage has no counter yet; one closed before keeps its totals.
        _counters_add({(organization_id, period): {}})
        _counter_close(organization_id, period, now)
        counter = UsageCounter.objects.get(
            organization_id=organization_id, period_start=period.start
        )
        totals = UsageTotals(
            counter.call_seconds, counter.calls, counter.storage_peak_bytes, counter.api_calls
        )
    return totals


def _counter_close(
    organization_id: int, period: periods.Period, now: dt.datetime
) -> UsageTotals | None:
    """Close the month's open counter and read its totals in one statement (`RETURNING`):
    what it holds as it closes, which no report can change any more. None when there is no
    open counter."""
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET closed_at = %s "  # noqa: S608 - fixed identifiers
            "WHERE organization_id = %s AND period_start = %s AND closed_at IS NULL "
            "RETURNING call_seconds, calls, storage_peak_bytes, api_calls",
            [
                connection.ops.adapt_datetimefield_value(now),
                organization_id,
                connection.ops.adapt_datetimefield_value(period.start),
            ],
        )
        row = cursor.fetchone()
    return UsageTotals(*row) if row else None
