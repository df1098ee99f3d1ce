"""Reads of the usage app for the platform API, pages and invoicing."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from djmoney.money import Money

from billing import periods
from billing.models import Organization, Plan, Subscription
from billing.money import round_money
from usage.models import AIEmployee, Call, PhoneNumber, UsageCounter

GB = 1024**3


# --- call authorization -------------------------------------------------------------------


@dataclass(frozen=True)
class CallAuthorization:
    allowed: bool
    reason: str
    remaining_seconds: int | None  # seconds until calls are refused; None: no limit


def _authorization(
    *, status, included, used, policy, rate: Decimal, cap: Decimal | None, employee_active
) -> CallAuthorization:
    if status == Subscription.Status.SUSPENDED:
        return CallAuthorization(False, "subscription_suspended", 0)
    if employee_active is None:
        return CallAuthorization(False, "employee_not_found", None)
    if not employee_active:
        return CallAuthorization(False, "employee_inactive", None)
    if included is None:
        return CallAuthorization(True, "ok", None)
    left_in_allowance = included - used
    if policy == Plan.OveragePolicy.BLOCK:
        if left_in_allowance <= 0:
            return CallAuthorization(False, "balance_exhausted", 0)
        return CallAuthorization(True, "ok", left_in_allowance)
    if cap is None or rate <= 0:
        return CallAuthorization(True, "ok", None)
    overage_seconds_in_cap = int(cap / rate)
    remaining = left_in_allowance + overage_seconds_in_cap
    if remaining <= 0:
        return CallAuthorization(False, "overage_cap_reached", 0)
    return CallAuthorization(True, "ok", remaining)


def call_authorize(
    *, organization_slug: str, employee_id: int, now: dt.datetime
) -> CallAuthorization:
    """May this AI employee place or take a call now? One query on the normal path."""
    counter = UsageCounter.objects.filter(
        organization_id=OuterRef("organization_id"), period_start=OuterRef("usage_period_start")
    ).values("call_seconds")[:1]
    employee = AIEmployee.objects.filter(
        pk=employee_id, organization_id=OuterRef("organization_id")
    ).values("is_active")[:1]
    row = (
        Subscription.objects.filter(organization__slug=organization_slug)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("plan")
        .annotate(used_seconds=Subquery(counter), employee_active=Subquery(employee))
        .first()
    )
    if row is None:
        return CallAuthorization(False, "no_subscription", 0)
    used = row.used_seconds or 0
    if now >= row.usage_period_end:
        # Renewal has not opened the new usage month yet: count what is already in it.
        period = row.usage_period_at(now)
        used = (
            UsageCounter.objects.filter(
                organization_id=row.organization_id, period_start=period.start
            )
            .values_list("call_seconds", flat=True)
            .first()
            or 0
        )
    plan = row.plan
    return _authorization(
        status=row.status,
        included=plan.included_call_seconds,
        used=used,
        policy=plan.overage_policy,
        rate=plan.overage_rate_per_second.amount,
        cap=plan.overage_cap.amount if plan.overage_cap is not None else None,
        employee_active=row.employee_active,
    )


# --- usage summary ------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    used: int
    limit: int | None  # None: unlimited

    @property
    def percent(self) -> int | None:
        if not self.limit:
            return None
        return round(self.used * 100 / self.limit)

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit


@dataclass(frozen=True)
class UsageSummary:
    period: periods.Period
    is_current: bool
    plan: Plan
    call_seconds: Allowance
    calls: int
    remaining_seconds: int | None
    overage_seconds: int
    overage_cost: Money
    projected_seconds: int
    projected_overage_seconds: int
    projected_overage_cost: Money
    projected_exhaustion: dt.datetime | None
    employees: Allowance
    phone_numbers: Allowance
    storage_bytes: Allowance
    api_calls: Allowance

    @property
    def remaining_minutes(self) -> Decimal | None:
        if self.remaining_seconds is None:
            return None
        return (Decimal(self.remaining_seconds) / 60).quantize(Decimal("0.1"))


def call_overage_cost(*, plan: Plan, overage_seconds: int) -> Money:
    """What `overage_seconds` beyond the allowance cost on `plan`, the cap applied."""
    if not plan.charges_overage or overage_seconds <= 0:
        return Money(0, plan.currency)
    cost = plan.overage_rate_per_second * overage_seconds
    if plan.overage_cap is not None and cost > plan.overage_cap:
        cost = plan.overage_cap
    return round_money(cost)


def usage_periods(*, subscription: Subscription, count: int = 12) -> list[periods.Period]:
    """The open usage period and those before it, newest first (for choosing history)."""
    index = periods.period_index_at(
        subscription.anchor, subscription.tzinfo, 1, subscription.usage_period_start
    )
    return [
        periods.nth_period(subscription.anchor, subscription.tzinfo, 1, i)
        for i in range(index, max(index - count, -1), -1)
    ]


def usage_summary(
    *, subscription: Subscription, now: dt.datetime, period: periods.Period | None = None
) -> UsageSummary:
    """Usage of one period against the plan's allowances, with the projection to its end."""
    period = period or subscription.usage_period_at(now)
    plan = subscription.plan
    organization_id = subscription.organization_id
    counter = UsageCounter.objects.filter(
        organization_id=organization_id, period_start=period.start
    ).first() or UsageCounter(period_start=period.start, period_end=period.end)
    counts = Organization.objects.filter(pk=organization_id).aggregate(
        employees=Count("employees", filter=Q(employees__is_active=True), distinct=True),
        numbers=Count(
            "phone_numbers", filter=Q(phone_numbers__released_at__isnull=True), distinct=True
        ),
    )
    included = plan.included_call_seconds
    used = counter.call_seconds
    overage = max(used - included, 0) if included is not None else 0
    is_current = now in period
    projected = used
    exhaustion = None
    if is_current and now > period.start:
        elapsed = Fraction(int((now - period.start).total_seconds()), period.seconds)
        projected = int(used / elapsed) if elapsed else used
        if included is not None and 0 < used < included:
            used_per_second = Fraction(used, int((now - period.start).total_seconds()))
            exhaustion_at = now + dt.timedelta(
                seconds=math.ceil((included - used) / used_per_second)
            )
            exhaustion = exhaustion_at if exhaustion_at < period.end else None
    projected_overage = max(projected - included, 0) if included is not None else 0
    authorization = _authorization(
        status=subscription.status,
        included=included,
        used=used,
        policy=plan.overage_policy,
        rate=plan.overage_rate_per_second.amount,
        cap=plan.overage_cap.amount if plan.overage_cap is not None else None,
        employee_active=True,
    )
    return UsageSummary(
        period=period,
        is_current=is_current,
        plan=plan,
        call_seconds=Allowance(used, included),
        calls=counter.calls,
        remaining_seconds=authorization.remaining_seconds if is_current else None,
        overage_seconds=overage,
        overage_cost=call_overage_cost(plan=plan, overage_seconds=overage),
        projected_seconds=projected,
        projected_overage_seconds=projected_overage,
        projected_overage_cost=call_overage_cost(plan=plan, overage_seconds=projected_overage),
        projected_exhaustion=exhaustion,
        employees=Allowance(counts["employees"], plan.max_active_employees),
        phone_numbers=Allowance(counts["numbers"], plan.max_phone_numbers),
        storage_bytes=Allowance(
            counter.storage_bytes, plan.storage_gb * GB if plan.storage_gb is not None else None
        ),
        api_calls=Allowance(counter.api_calls, plan.api_calls_per_month),
    )


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


def usage_by_employee(*, organization: Organization, period: periods.Period) -> list[UsageRow]:
    rows = (
        _period_calls(organization.pk, period)
        .values("employee__name", "employee_id")
        .annotate(seconds=Sum("billable_seconds"), calls=Count("pk"))
        .order_by("-seconds", "employee__name")
    )
    return [UsageRow(row["employee__name"], row["seconds"], row["calls"]) for row in rows]


def usage_by_cost_center(*, organization: Organization, period: periods.Period) -> list[UsageRow]:
    rows = (
        _period_calls(organization.pk, period)
        .values("employee__cost_center")
        .annotate(seconds=Sum("billable_seconds"), calls=Count("pk"))
        .order_by("-seconds")
    )
    return [
        UsageRow(row["employee__cost_center"] or "Unassigned", row["seconds"], row["calls"])
        for row in rows
    ]


# --- lists and fees -----------------------------------------------------------------------


def employees_for(*, organization: Organization) -> list[AIEmployee]:
    return list(
        AIEmployee.objects.filter(organization=organization)
        .annotate(numbers=Count("phone_numbers", filter=Q(phone_numbers__released_at__isnull=True)))
        .order_by("-is_active", "name")
    )


def phone_numbers_for(*, organization: Organization) -> list[PhoneNumber]:
    return list(
        PhoneNumber.objects.filter(organization=organization)
        .select_related("employee")
        .order_by("released_at", "provisioned_at")
    )


@dataclass(frozen=True)
class NumberFee:
    phone_number: PhoneNumber
    charged: periods.Period  # from provisioning when that fell inside the period
    amount: Money
    is_free: bool
    is_prorated: bool


def number_fees_for_period(
    *, organization: Organization, plan: Plan, period: periods.Period
) -> list[NumberFee]:
    """The monthly fee of every number held during `period`, one entry per number.

    A number provisioned during the period pays the exact share of the period left
    (pro-rated by the second); one released during it pays the whole month, without refund.
    The plan's free numbers are the earliest provisioned among those held.
    """
    held = PhoneNumber.objects.filter(
        Q(released_at__isnull=True) | Q(released_at__gt=period.start),
        organization=organization,
        provisioned_at__lt=period.end,
    ).order_by("provisioned_at", "pk")
    fees = []
    for position, number in enumerate(held):
        is_free = position < plan.free_phone_numbers
        charged = periods.Period(max(number.provisioned_at, period.start), period.end)
        share = period.fraction_remaining(charged.start)
        amount = (
            Money(0, number.monthly_fee.currency)
            if is_free
            else round_money(number.monthly_fee * share.numerator / share.denominator)
        )
        fees.append(NumberFee(number, charged, amount, is_free, charged.start > period.start))
    return fees
