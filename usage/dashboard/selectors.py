"""Reads of the usage page: the usage months to choose from, call time by day, week, AI
employee and cost center, and the page that puts them beside the usage summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from billing.models import Organization, Subscription
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage.models import AIEmployee, Call, PhoneNumber, UsageCounter
from usage.selectors import UsageSummary, usage_summary


def usage_periods(*, subscription: Subscription, count: int = 12) -> list[periods.Period]:
    """The open usage period and those before it, newest first (for choosing history): the
    months from the anchor, then the free trial if there was one."""
    trial = subscription.trial_period
    if subscription.usage_period == trial:
        return [trial]
    index = periods.period_index_at(
        subscription.anchor, subscription.tzinfo, 1, subscription.usage_period_start
    )
    months = [
        periods.nth_period(subscription.anchor, subscription.tzinfo, 1, i)
        for i in range(index, max(index - count, -1), -1)
    ]
    return [*months, trial] if trial is not None and len(months) < count else months


# --- breakdowns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    label: str
    seconds: int
    calls: int


def _period_calls(organization_id: int, period: periods.Period):
    return Call.objects.filter(
        organization_id=organization_id,
        usage_period_start=period.start,
    )


def usage_by_day(
    *, organization: Organization, period: periods.Period
) -> list[tuple[dt.date, int]]:
    """Call seconds per day of the period in the organization's timezone, days without calls
    included."""
    tz = organization.tzinfo
    totals = dict(
        _period_calls(organization.pk, period)
        .annotate(day=TruncDate("connected_at", tzinfo=tz))
        .values("day")
        .annotate(seconds=Sum("billable_seconds"))
        .values_list("day", "seconds")
    )
    first, last = period.start.astimezone(tz).date(), period.last_day(tz)
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [(day, totals.get(day, 0)) for day in days]


def usage_by_week(days: list[tuple[dt.date, int]]) -> list[tuple[dt.date, int]]:
    """Daily totals folded into weeks starting on the period's first day."""
    weeks: list[tuple[dt.date, int]] = []
    for offset in range(0, len(days), 7):
        chunk = days[offset : offset + 7]
        weeks.append((chunk[0][0], sum(seconds for _, seconds in chunk)))
    return weeks


def usage_by_employee_and_cost_center(
    *, organization: Organization, period: periods.Period
) -> tuple[list[UsageRow], list[UsageRow]]:
    """Call time by AI employee and by cost center, in one query: an employee has one cost
    center, so the employees' totals add up to the cost centers'."""
    rows = (
        _period_calls(organization.pk, period)
        .values("employee_id", "employee__name", "employee__cost_center")
        .annotate(seconds=Sum("billable_seconds"), calls=Count("pk"))
        .order_by("-seconds", "employee__name")
    )
    by_employee, by_cost_center = [], {}
    for row in rows:
        by_employee.append(UsageRow(row["employee__name"], row["seconds"], row["calls"]))
        label = row["employee__cost_center"] or "Unassigned"
        seconds, calls = by_cost_center.get(label, (0, 0))
        by_cost_center[label] = (seconds + row["seconds"], calls + row["calls"])
    cost_centers = [UsageRow(label, *totals) for label, totals in by_cost_center.items()]
    return by_employee, sorted(cost_centers, key=lambda row: (-row.seconds, row.label))


def call_seconds_by_period(
    *, organization: Organization, starts: list[dt.datetime]
) -> dict[dt.datetime, int]:
    """Call seconds of the usage periods starting at `starts`, from their counters."""
    return dict(
        UsageCounter.objects.filter(organization=organization, period_start__in=starts).values_list(
            "period_start", "call_seconds"
        )
    )


def holdings_over_time(
    *, organization: Organization, moments: list[dt.datetime]
) -> list[tuple[int, int]]:
    """How many AI employees were active and phone numbers held at each of `moments`, from
    when each was created or provisioned, deactivated or released. An employee deactivated
    and reactivated counts as active since its creation."""
    employees = list(
        AIEmployee.objects.filter(organization=organization).values_list(
            "created_at", "deactivated_at", "is_active"
        )
    )
    numbers = list(
        PhoneNumber.objects.filter(organization=organization).values_list(
            "provisioned_at", "released_at"
        )
    )
    return [
        (
            sum(
                1
                for created, deactivated, active in employees
                if created <= moment and (active or deactivated is None or deactivated > moment)
            ),
            sum(
                1
                for provisioned, released in numbers
                if provisioned <= moment and (released is None or released > moment)
            ),
        )
        for moment in moments
    ]


# --- usage pages --------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodChoice:
    key: str  # the period's first day in the organization's timezone, as `?period=` names it
    label: str
    is_selected: bool


@dataclass(frozen=True)
class UsageWeek:
    first_day: dt.date
    last_day: dt.date
    seconds: int


@dataclass(frozen=True)
class UsageDashboard:
    subscription: Subscription
    summary: UsageSummary
    period_label: str
    period_choices: list[PeriodChoice]
    by_day: list[tuple[dt.date, int]]
    by_week: list[UsageWeek]
    by_employee: list[UsageRow]
    by_cost_center: list[UsageRow]

    @property
    def allowance_left_seconds(self) -> int | None:
        """Included seconds not used yet; None when the plan has no call allowance."""
        allowance = self.summary.call_seconds
        return None if allowance.limit is None else max(allowance.limit - allowance.used, 0)

    @property
    def daily_pace_seconds(self) -> int | None:
        """Seconds a day that would use exactly the allowance by the period's end."""
        limit = self.summary.call_seconds.limit
        return None if limit is None else limit // len(self.by_day)


def usage_dashboard(
    *,
    organization: Organization,
    now: dt.datetime,
    period_start: dt.date | None = None,
    breakdowns: bool = True,
) -> UsageDashboard | None:
    """The usage page of one usage period: the current one, or the earlier one starting on
    `period_start` (a day in the organization's timezone). None without a live subscription.
    Without `breakdowns` (a plan without analytics) the by-employee and by-cost-center lists
    stay empty and unread. A fixed number of queries whatever the number of calls,
    employees or days."""
    subscription = subscription_live(organization=organization)
    if subscription is None:
        return None
    tz = organization.tzinfo
    current = subscription.usage_period_at(now)
    choices = usage_periods(subscription=subscription)
    if current not in choices:
        # Renewal has not opened the new usage month yet, but it is the one running now.
        choices.insert(0, current)
    period = next(
        (choice for choice in choices if choice.start.astimezone(tz).date() == period_start),
        current,
    )
    by_day = usage_by_day(organization=organization, period=period)
    by_employee, by_cost_center = (
        usage_by_employee_and_cost_center(organization=organization, period=period)
        if breakdowns
        else ([], [])
    )
    return UsageDashboard(
        subscription=subscription,
        summary=usage_summary(subscription=subscription, now=now, period=period),
        period_label=period.label(tz),
        period_choices=[
            PeriodChoice(
                key=choice.start.astimezone(tz).date().isoformat(),
                label=choice.label(tz),
                is_selected=choice == period,
            )
            for choice in choices
        ],
        by_day=by_day,
        by_week=_weeks(usage_by_week(by_day), last_day=period.last_day(tz)),
        by_employee=by_employee,
        by_cost_center=by_cost_center,
    )


def _weeks(weeks: list[tuple[dt.date, int]], *, last_day: dt.date) -> list[UsageWeek]:
    """Name each week by its first and last day; the period's last week may be short."""
    last_days = [first - dt.timedelta(days=1) for first, _ in weeks[1:]] + [last_day]
    return [
        UsageWeek(first, last, seconds)
        for (first, seconds), last in zip(weeks, last_days, strict=True)
    ]
