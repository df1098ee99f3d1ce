"""Realistic call traffic for an organization, reported the way the platform reports it.

Three kinds of call, each AI employee mixing them by its cost center; business hours in the
organization's timezone, weekdays busier than weekends; a volume set as a share of the plan's
included seconds per usage month. Everything is drawn from a generator seeded per day, and
call ids are derived from the day, so the same arguments always give the same calls and a
re-run records nothing twice. Calls are recorded only through
`usage.metering.services.calls_record`, in batches, so the usage counters are exactly the sum
of the calls.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.utils import timezone

from billing.errors import BillingError, ErrorCode
from billing.models import Organization, Plan
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage.metering import services as metering
from usage.models import AIEmployee, Call

BATCH_SIZE = 1_000
DEFAULT_SHARE_OF_ALLOWANCE = Decimal("0.7")


@dataclass(frozen=True)
class CallKind:
    shortest: int  # seconds
    longest: int
    outbound_percent: int


CALL_KINDS = {
    "confirmation": CallKind(shortest=30, longest=60, outbound_percent=100),
    "sales": CallKind(shortest=5 * 60, longest=10 * 60, outbound_percent=80),
    "support": CallKind(shortest=10 * 60, longest=20 * 60, outbound_percent=10),
}
# Percent of an employee's calls per kind, by the first keyword found in its cost center.
MIX_BY_COST_CENTER = {
    "sales": {"sales": 70, "confirmation": 20, "support": 10},
    "support": {"support": 75, "sales": 15, "confirmation": 10},
    "scheduling": {"confirmation": 85, "support": 10, "sales": 5},
}
DEFAULT_MIX = {"confirmation": 40, "sales": 30, "support": 30}

# Relative traffic per local hour: a morning peak, a lunch dip, a quieter late afternoon.
WEEKDAY_HOURS = {8: 4, 9: 9, 10: 10, 11: 9, 12: 5, 13: 7, 14: 9, 15: 8, 16: 6, 17: 3}
WEEKEND_HOURS = {10: 5, 11: 6, 12: 4, 13: 3}
# Relative traffic per day, Monday first.
DAY_WEIGHTS = (20, 20, 20, 20, 18, 5, 2)


@dataclass(frozen=True)
class SimulationResult:
    calls: int
    recorded: int
    duplicates: int
    seconds: int


def call_mix(cost_center: str) -> dict[str, int]:
    cost_center = cost_center.lower()
    for keyword, mix in MIX_BY_COST_CENTER.items():
        if keyword in cost_center:
            return mix
    return DEFAULT_MIX


def calls_simulate(
    *,
    organization: Organization,
    since: dt.date,
    until: dt.date | None = None,
    seed: int = 0,
    share_of_allowance: Decimal = DEFAULT_SHARE_OF_ALLOWANCE,
    seconds_per_month: int | None = None,
    now: dt.datetime | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Record simulated calls of `organization` for the days `since`..`until` (local dates,
    `until` defaulting to today), spread over its active AI employees.

    Each usage month gets `share_of_allowance` of the plan's included seconds, or
    `seconds_per_month` (needed for a plan without a limit), in proportion to how much of the
    month's traffic falls on the simulated days. On a plan that blocks calls at the
    allowance, no simulated call starts once the month's seconds are used up. Calls before the
    subscription began or ending after `now` are left out: a later run with a later `now`
    adds the rest of the day.
    `on_batch(done, total)` is told after each batch.
    """
    now = now or timezone.now()
    tz = organization.tzinfo
    until = until or now.astimezone(tz).date()
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION, f"{organization} has no live subscription.")
    if seconds_per_month is None:
        if subscription.plan.included_call_seconds is None:
            raise BillingError(
                ErrorCode.UNLIMITED_ALLOWANCE,
                f"{subscription.plan} includes unlimited seconds: give the seconds per month.",
            )
        seconds_per_month = int(subscription.plan.included_call_seconds * share_of_allowance)
    employees = list(
        AIEmployee.objects.filter(organization=organization, is_active=True).order_by("pk")
    )
    if not employees:
        raise BillingError(ErrorCode.NO_EMPLOYEES, f"{organization} has no active AI employees.")

    mean_call_seconds = _mean_call_seconds(employees)
    plan = subscription.plan
    blocks_at = (
        plan.included_call_seconds if plan.overage_policy == Plan.OveragePolicy.BLOCK else None
    )
    month_weights: dict[periods.Period, int] = {}
    month_used: dict[periods.Period, int] = {}
    reports: list[metering.CallReport] = []
    # Drawn from the start of `since`'s usage month, so a block plan's balance counts the
    # calls before `since` too.
    first_month = subscription.usage_period_at(dt.datetime.combine(since, dt.time(12), tzinfo=tz))
    for day in _days(first_month.start.astimezone(tz).date(), until):
        midday = dt.datetime.combine(day, dt.time(12), tzinfo=tz)
        month = subscription.usage_period_at(midday)
        if month not in month_weights:
            month_weights[month] = sum(DAY_WEIGHTS[d.weekday()] for d in _local_days(month, tz))
        day_seconds = seconds_per_month * DAY_WEIGHTS[day.weekday()] // month_weights[month]
        for report in _day_of_calls(
            organization=organization,
            employees=employees,
            day=day,
            seconds=day_seconds,
            mean_call_seconds=mean_call_seconds,
            seed=seed,
        ):
            if report.connected_at < subscription.started_at:
                continue
            used = month_used.get(month, 0)
            if blocks_at is not None and used >= blocks_at:
                break  # refused, as authorization refuses calls once the balance is used up
            month_used[month] = used + metering.billable_seconds(
                report.connected_at, report.ended_at
            )
            if day >= since and report.ended_at <= now:
                reports.append(report)

    recorded = duplicates = 0
    for offset in range(0, len(reports), BATCH_SIZE):
        result = metering.calls_record(reports=reports[offset : offset + BATCH_SIZE], now=now)
        recorded += len(result.recorded)
        duplicates += len(result.duplicates)
        if on_batch is not None:
            on_batch(recorded + duplicates, len(reports))
    return SimulationResult(
        calls=len(reports),
        recorded=recorded,
        duplicates=duplicates,
        seconds=sum(metering.billable_seconds(r.connected_at, r.ended_at) for r in reports),
    )


def last_simulated_day(*, organization: Organization, seed: int = 0) -> dt.date | None:
    """The last local day with calls simulated with `seed`: the days before it are complete,
    as calls are recorded day after day."""
    last = (
        Call.objects.filter(
            organization=organization,
            platform_call_id__startswith=_call_id_prefix(organization, seed),
        )
        .order_by("-connected_at")
        .values_list("connected_at", flat=True)
        .first()
    )
    return last.astimezone(organization.tzinfo).date() if last else None


def _call_id_prefix(organization: Organization, seed: int) -> str:
    # The organization's id, not its slug: staff may change a slug, and the ids must stay.
    return f"sim-{organization.pk}-{seed}-"


def _days(first: dt.date, last: dt.date):
    for n in range((last - first).days + 1):
        yield first + dt.timedelta(days=n)


def _local_days(period: periods.Period, tz) -> list[dt.date]:
    return list(_days(period.start.astimezone(tz).date(), period.last_day(tz)))


def _mean_call_seconds(employees: list[AIEmployee]) -> Fraction:
    """The expected length of a call, employees being picked alike."""
    per_employee = []
    for employee in employees:
        mix = call_mix(employee.cost_center)
        per_employee.append(
            Fraction(
                sum(
                    percent * (CALL_KINDS[kind].shortest + CALL_KINDS[kind].longest)
                    for kind, percent in mix.items()
                ),
                2 * sum(mix.values()),
            )
        )
    return sum(per_employee) / len(per_employee)


def _day_of_calls(
    *,
    organization: Organization,
    employees: list[AIEmployee],
    day: dt.date,
    seconds: int,
    mean_call_seconds: Fraction,
    seed: int,
) -> list[metering.CallReport]:
    """About `seconds` of calls on local `day`, the same ones for the same arguments, in the
    order they start."""
    # A generator per day keeps a day's calls independent of the range asked for; seeded by
    # the slug, so the same organization gets the same calls in any database.
    rng = random.Random(f"{seed}:{organization.slug}:{day.isoformat()}")  # noqa: S311 - not a secret
    # As many calls as the seconds hold on average; the fraction of a call left over is one
    # more call with that probability. (Stopping once the seconds are reached would
    # overshoot, by half a long call a day.)
    expected_calls = seconds / mean_call_seconds
    count = int(expected_calls) + (
        rng.randrange(expected_calls.denominator)
        < expected_calls.numerator % expected_calls.denominator
    )
    hours = WEEKDAY_HOURS if day.weekday() < 5 else WEEKEND_HOURS
    tz = organization.tzinfo
    reports = []
    for number in range(count):
        employee = rng.choice(employees)
        mix = call_mix(employee.cost_center)
        kind = CALL_KINDS[rng.choices(list(mix), weights=list(mix.values()))[0]]
        duration = rng.randint(kind.shortest, kind.longest)
        hour = rng.choices(list(hours), weights=list(hours.values()))[0]
        connected_at = dt.datetime.combine(day, dt.time(hour), tzinfo=tz) + dt.timedelta(
            seconds=rng.randrange(3600)
        )
        outbound = rng.randrange(100) < kind.outbound_percent or not employee.inbound_capable
        reports.append(
            metering.CallReport(
                call_id=f"{_call_id_prefix(organization, seed)}{day:%Y%m%d}-{number:05d}",
                organization=organization.slug,
                employee_id=employee.pk,
                direction=Call.Direction.OUTBOUND if outbound else Call.Direction.INBOUND,
                connected_at=connected_at.astimezone(dt.UTC),
                ended_at=(connected_at + dt.timedelta(seconds=duration)).astimezone(dt.UTC),
            )
        )
    return sorted(reports, key=lambda report: report.connected_at)
