"""Reads of the usage app for the platform API, pages and invoicing."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

from django.db import connection, models
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from djmoney.money import Money

from billing.errors import BillingError, ErrorCode
from billing.models import Invoice, InvoiceLine, Organization, Plan, Subscription
from billing.money import round_money
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage.models import AIEmployee, Call, PhoneNumber, ServiceToken, UsageAlert, UsageCounter

# Storage is sold, measured and billed in GiB: 2^30 bytes, the unit every page names.
GIB = 1024**3


# --- call authorization -------------------------------------------------------------------


@dataclass(frozen=True)
class CallAuthorization:
    allowed: bool
    reason: str
    remaining_seconds: int | None  # seconds until calls are refused; None: no limit
    usage_percent: int | None = None  # of the included call time; None: unlimited
    warning: str | None = None  # see `_warning`


def _percent(used: int, included: int | None) -> int | None:
    if included is None:
        return None
    if included == 0:
        return 100 if used else 0
    return used * 100 // included


def _warning(*, percent: int | None, call_time_alerted: bool, cap_alerted: bool) -> str | None:
    """The alert state the calling platform may warn with before it must refuse: the overage
    cap nearly reached, the included call time used up, or a call-time alert crossed this
    period (the organization's own thresholds)."""
    if cap_alerted:
        return "overage_cap_near"
    if percent is not None and percent >= 100:
        return "allowance_used"
    if call_time_alerted:
        return "approaching_allowance"
    return None


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


def _authorize_sql() -> str:
    """One statement for the question asked before every call. Written in SQL because the ORM
    spends several times longer compiling it than the database does answering it (bench/).
    Decimals come back as text, so no float ever carries a rate."""
    quote = connection.ops.quote_name
    subscription, organization = Subscription._meta.db_table, Organization._meta.db_table
    plan, counter, employee, alert = (
        Plan._meta.db_table,
        UsageCounter._meta.db_table,
        AIEmployee._meta.db_table,
        UsageAlert._meta.db_table,
    )
    return f"""
        SELECT s.status, p.included_call_seconds, p.overage_policy,
               CAST(p.overage_rate_per_second AS TEXT), CAST(p.overage_cap AS TEXT),
               (SELECT c.call_seconds FROM {quote(counter)} c
                 WHERE c.organization_id = s.organization_id AND c.period_start = s.usage_period_start),
               (SELECT e.is_active FROM {quote(employee)} e
                 WHERE e.id = %s AND e.organization_id = s.organization_id),
               CASE WHEN s.usage_period_end <= %s THEN 1 ELSE 0 END,
               s.id,
               (SELECT COUNT(*) FROM {quote(alert)} a
                 WHERE a.organization_id = s.organization_id
                   AND a.period_start = s.usage_period_start AND a.metric = 'call_seconds'),
               (SELECT COUNT(*) FROM {quote(alert)} a
                 WHERE a.organization_id = s.organization_id
                   AND a.period_start = s.usage_period_start AND a.metric = 'overage_cap')
          FROM {quote(subscription)} s
          JOIN {quote(organization)} o ON o.id = s.organization_id
          JOIN {quote(plan)} p ON p.id = s.plan_id
         WHERE o.slug = %s AND s.status <> 'canceled'
    """  # noqa: S608 - identifiers come from model metadata, values are parameters


def call_authorize(
    *, organization_slug: str, employee_id: int, now: dt.datetime
) -> CallAuthorization:
    """May this AI employee place or take a call now, and how close is the organization to
    its limits? One query on the normal path."""
    with connection.cursor() as cursor:
        cursor.execute(
            _authorize_sql(),
            [employee_id, connection.ops.adapt_datetimefield_value(now), organization_slug],
        )
        row = cursor.fetchone()
    if row is None:
        return CallAuthorization(False, "no_subscription", 0)
    (
        status,
        included,
        policy,
        rate,
        cap,
        used,
        employee_active,
        renewal_pending,
        subscription_id,
        call_time_alerts,
        cap_alerts,
    ) = row
    if renewal_pending:
        # Renewal has not opened the new usage month yet: count what is already in it.
        subscription = Subscription.objects.get(pk=subscription_id)
        used = (
            UsageCounter.objects.filter(
                organization_id=subscription.organization_id,
                period_start=subscription.usage_period_at(now).start,
            )
            .values_list("call_seconds", flat=True)
            .first()
        )
        call_time_alerts = cap_alerts = 0  # the new month has none yet
    used = used or 0
    percent = _percent(used, included)
    authorization = _authorization(
        status=status,
        included=included,
        used=used,
        policy=policy,
        rate=Decimal(rate),
        cap=Decimal(cap) if cap is not None else None,
        employee_active=None if employee_active is None else bool(employee_active),
    )
    return replace(
        authorization,
        usage_percent=percent,
        warning=_warning(
            percent=percent, call_time_alerted=bool(call_time_alerts), cap_alerted=bool(cap_alerts)
        ),
    )


# --- usage summary ------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    used: int
    limit: int | None  # None: unlimited

    @property
    def percent(self) -> int | None:
        if self.limit is None:
            return None
        if self.limit == 0:
            return 100 if self.used else 0
        return round(self.used * 100 / self.limit)

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit


@dataclass(frozen=True)
class UsageSummary:
    period: periods.Period
    is_current: bool
    is_trial: bool  # the free trial: its usage is recorded and shown, never charged
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
    # Two scalar subqueries: joining both tables would multiply employees by numbers.
    counts = (
        Organization.objects.filter(pk=organization_id)
        .values(
            active_employees=_count(
                AIEmployee.objects.filter(organization=OuterRef("pk"), is_active=True)
            ),
            held_numbers=_count(
                PhoneNumber.objects.filter(organization=OuterRef("pk"), released_at__isnull=True)
            ),
        )
        .get()
    )
    included = plan.included_call_seconds
    used = counter.call_seconds
    overage = max(used - included, 0) if included is not None else 0
    is_current = now in period
    projected = used
    exhaustion = None
    elapsed_seconds = int((now - period.start).total_seconds())
    if is_current and elapsed_seconds > 0:
        projected = int(used / Fraction(elapsed_seconds, period.seconds))
        if included is not None and 0 < used < included:
            used_per_second = Fraction(used, elapsed_seconds)
            exhaustion_at = now + dt.timedelta(
                seconds=math.ceil((included - used) / used_per_second)
            )
            exhaustion = exhaustion_at if exhaustion_at < period.end else None
    projected_overage = max(projected - included, 0) if included is not None else 0
    is_trial = period == subscription.trial_period

    def charged(overage_seconds: int) -> Money:
        # Nothing used in the trial is charged, its overage included.
        if is_trial:
            return Money(0, plan.currency)
        return call_overage_cost(plan=plan, overage_seconds=overage_seconds)

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
        is_trial=is_trial,
        plan=plan,
        call_seconds=Allowance(used, included),
        calls=counter.calls,
        remaining_seconds=authorization.remaining_seconds if is_current else None,
        overage_seconds=overage,
        overage_cost=charged(overage),
        projected_seconds=projected,
        projected_overage_seconds=projected_overage,
        projected_overage_cost=charged(projected_overage),
        projected_exhaustion=exhaustion,
        employees=Allowance(counts["active_employees"] or 0, plan.max_active_employees),
        phone_numbers=Allowance(counts["held_numbers"] or 0, plan.max_phone_numbers),
        storage_bytes=Allowance(
            counter.storage_bytes, plan.storage_gb * GIB if plan.storage_gb is not None else None
        ),
        api_calls=Allowance(counter.api_calls, plan.api_calls_per_month),
    )


# --- breakdowns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageRow:
    label: str
    seconds: int
    calls: int


def _count(queryset) -> Subquery:
    return Subquery(
        queryset.order_by().values("organization").annotate(n=Count("pk")).values("n")[:1],
        output_field=models.IntegerField(),
    )


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
        .order_by(F("released_at").asc(nulls_first=True), "provisioned_at")
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


@dataclass(frozen=True)
class EmployeeRoster:
    plan: Plan | None  # None without a live subscription
    employees: list[AIEmployee]  # active first, each with `numbers` (active numbers it answers)

    @property
    def quota(self) -> Allowance:
        active = sum(1 for employee in self.employees if employee.is_active)
        return Allowance(active, self.plan.max_active_employees if self.plan else None)


def employee_roster(*, organization: Organization) -> EmployeeRoster:
    subscription = subscription_live(organization=organization)
    return EmployeeRoster(
        plan=subscription.plan if subscription else None,
        employees=employees_for(organization=organization),
    )


@dataclass(frozen=True)
class NumberRow:
    phone_number: PhoneNumber
    fee: NumberFee | None  # this usage month's fee; None once released before the month


@dataclass(frozen=True)
class PhoneNumberRoster:
    plan: Plan | None  # None without a live subscription
    period: periods.Period | None  # the usage month the fees are for
    rows: list[NumberRow]  # held numbers first, then released ones
    answering_employees: list[AIEmployee]  # active and inbound-capable: who a number can ring

    @property
    def in_use(self) -> Allowance:
        held = sum(1 for row in self.rows if row.phone_number.is_active)
        return Allowance(held, self.plan.max_phone_numbers if self.plan else None)


def phone_number_roster(*, organization: Organization, now: dt.datetime) -> PhoneNumberRoster:
    """Every number the organization holds or held, with what each costs this usage month."""
    subscription = subscription_live(organization=organization)
    numbers = phone_numbers_for(organization=organization)
    fees: dict[int, NumberFee] = {}
    period = None
    if subscription is not None:
        period = subscription.usage_period_at(now)
        fees = {
            fee.phone_number.pk: fee
            for fee in number_fees_for_period(
                organization=organization, plan=subscription.plan, period=period
            )
        }
    # Held numbers first, whatever the database does with NULLs in ORDER BY.
    numbers.sort(key=lambda number: not number.is_active)
    return PhoneNumberRoster(
        plan=subscription.plan if subscription else None,
        period=period,
        rows=[NumberRow(number, fees.get(number.pk)) for number in numbers],
        answering_employees=list(answering_employees(organization=organization)),
    )


def answering_employees(*, organization: Organization) -> QuerySet[AIEmployee]:
    """The AI employees a number can ring: active ones that take inbound calls."""
    return AIEmployee.objects.filter(
        organization=organization, is_active=True, inbound_capable=True
    ).order_by("name", "pk")


def active_employee_count(*, organization: Organization) -> int:
    return AIEmployee.objects.filter(organization=organization, is_active=True).count()


# --- what each plan would have cost -------------------------------------------------------

COMPARED_MONTHS = 3
# Guide, page 5: an allowance nearly used up is a reason to upgrade; less than half of every
# allowance used, a reason to downgrade.
NEARLY_USED_PERCENT = 90
UNDERUSED_PERCENT = 50


@dataclass(frozen=True)
class UsedMonth:
    """What the organization used in one closed usage month."""

    period: periods.Period
    call_seconds: int
    api_calls: int
    storage_peak_bytes: int


def gibibytes(size_in_bytes: int) -> Decimal:
    """`size_in_bytes` in GiB, to two decimals, as pages and invoices show storage."""
    return (Decimal(size_in_bytes) / GIB).quantize(Decimal("0.01"))


def format_gibibytes(size_in_bytes: int) -> str:
    """`1.25 GiB`, two decimals, in the unit storage is sold and billed in."""
    return f"{gibibytes(size_in_bytes):,} GiB"


def storage_overage_gib(*, plan: Plan, peak_bytes: int) -> Decimal:
    """GiB beyond the plan's storage in a month that peaked at `peak_bytes`, to six decimals."""
    if plan.storage_gb is None or peak_bytes <= plan.storage_gb * GIB:
        return Decimal(0)
    return (Decimal(peak_bytes - plan.storage_gb * GIB) / GIB).quantize(Decimal("0.000001"))


def storage_overage_cost(*, plan: Plan, peak_bytes: int) -> Money:
    """What that storage overage costs, as renewal invoices it (rounded once)."""
    return round_money(
        plan.overage_rate_per_gb * storage_overage_gib(plan=plan, peak_bytes=peak_bytes)
    )


def _refused_seconds(plan: Plan, overage_seconds: int) -> int:
    """Seconds beyond the allowance that calls would not have had: all of them on a `block`
    plan, those past the overage cap on a `charge` plan."""
    if overage_seconds <= 0:
        return 0
    if not plan.charges_overage:
        return overage_seconds
    rate = plan.overage_rate_per_second.amount
    if plan.overage_cap is None or rate <= 0:
        return 0
    return max(overage_seconds - int(plan.overage_cap.amount / rate), 0)


@dataclass(frozen=True)
class NamedAllowance:
    name: str
    allowance: Allowance

    def used_at_least(self, percent: int) -> bool:
        used, limit = self.allowance.used, self.allowance.limit
        return limit is not None and used > 0 and used * 100 >= percent * limit

    def used_below(self, percent: int) -> bool:
        used, limit = self.allowance.used, self.allowance.limit
        return limit is None or used == 0 or used * 100 < percent * limit


def _allowances(plan: Plan, month: UsedMonth, employees: int, numbers: int) -> list[NamedAllowance]:
    """A month's use against the plan's allowances. Only counters are kept per month, so AI
    employees and phone numbers are counted as they are now."""
    storage_limit = plan.storage_gb * GIB if plan.storage_gb is not None else None
    return [
        NamedAllowance("call time", Allowance(month.call_seconds, plan.included_call_seconds)),
        NamedAllowance("AI employees", Allowance(employees, plan.max_active_employees)),
        NamedAllowance("phone numbers", Allowance(numbers, plan.max_phone_numbers)),
        NamedAllowance("storage", Allowance(month.storage_peak_bytes, storage_limit)),
        NamedAllowance("API calls", Allowance(month.api_calls, plan.api_calls_per_month)),
    ]


@dataclass(frozen=True)
class PlanCost:
    """What the compared months would have cost on one plan, with the same usage."""

    plan: Plan
    months: int
    subscription: Money  # the plan's monthly price equivalent, once per month
    call_overage: Money  # the cap applied
    refused_seconds: int  # calls a `block` allowance or the overage cap would have refused
    storage_overage: Money  # on each month's peak
    phone_numbers: Money  # the numbers held now, beyond the plan's free ones
    fits: bool  # every allowance would have held every month's usage
    versus_current: Money | None = None  # per month, against the current plan

    @property
    def total(self) -> Money:
        return self.subscription + self.call_overage + self.storage_overage + self.phone_numbers

    @property
    def per_month(self) -> Money:
        return round_money(self.total / self.months)


def _plan_cost(
    plan: Plan, months: list[UsedMonth], employees: int, number_fees: list[Money]
) -> PlanCost:
    zero = Money(0, plan.currency)
    call_overage, storage_overage, refused = zero, zero, 0
    for month in months:
        included = plan.included_call_seconds
        overage = max(month.call_seconds - included, 0) if included is not None else 0
        call_overage += call_overage_cost(plan=plan, overage_seconds=overage)
        refused += _refused_seconds(plan, overage)
        storage_overage += storage_overage_cost(plan=plan, peak_bytes=month.storage_peak_bytes)
    # The plan's free numbers are the earliest provisioned, as on the invoice.
    numbers_a_month = sum(number_fees[plan.free_phone_numbers :], zero)
    return PlanCost(
        plan=plan,
        months=len(months),
        subscription=plan.monthly_equivalent * len(months),
        call_overage=call_overage,
        refused_seconds=refused,
        storage_overage=storage_overage,
        phone_numbers=numbers_a_month * len(months),
        fits=not any(
            named.allowance.over
            for month in months
            for named in _allowances(plan, month, employees, len(number_fees))
        ),
    )


@dataclass(frozen=True)
class PlanRecommendation:
    action: str  # "upgrade", "downgrade", or "keep": the plan fits
    current: PlanCost
    plan: PlanCost | None  # the plan to change to
    nearly_used: list[str]  # allowances of the current plan used ≥ 90% in one of the months

    @property
    def saving(self) -> Money | None:
        """A month, against the current plan."""
        return self.current.per_month - self.plan.per_month if self.plan else None


def _recommendation(
    current: PlanCost, costs: list[PlanCost], used: list[NamedAllowance]
) -> PlanRecommendation:
    """Guide, page 5: close to an allowance, upgrade when a higher plan costs less than the
    current one with its overage; under half of every allowance, downgrade to the cheapest
    lower plan that would have held the usage."""
    nearly_used = list(
        dict.fromkeys(named.name for named in used if named.used_at_least(NEARLY_USED_PERCENT))
    )
    action, candidates = "keep", []
    if nearly_used:
        action = "upgrade"
        candidates = [cost for cost in costs if cost.plan.rank > current.plan.rank]
    elif all(named.used_below(UNDERUSED_PERCENT) for named in used):
        action = "downgrade"
        candidates = [cost for cost in costs if cost.plan.rank < current.plan.rank and cost.fits]
    choice = min(
        (cost for cost in candidates if cost.total < current.total),
        key=lambda cost: (cost.total.amount, cost.plan.rank),
        default=None,
    )
    return PlanRecommendation(
        action=action if choice else "keep",
        current=current,
        plan=choice,
        nearly_used=nearly_used,
    )


@dataclass(frozen=True)
class PlanFit:
    months: list[UsedMonth]  # newest first; empty before the first usage month closes
    costs: list[PlanCost]  # one per compared plan, in the order given
    current: PlanCost | None
    recommendation: PlanRecommendation | None  # with usage months and a current plan


def plan_fit(
    *, organization: Organization, current_plan: Plan | None, plans: list[Plan]
) -> PlanFit:
    """What the organization's last closed usage months (up to three) would have cost on each
    of `plans` and on its current plan, from its real usage, and whether to change plans.
    Two queries whatever the number of months or plans (one before the first month closes)."""
    counters = list(
        UsageCounter.objects.filter(organization=organization, closed_at__isnull=False)
        .annotate(
            active_employees=_count(
                AIEmployee.objects.filter(organization=OuterRef("organization"), is_active=True)
            )
        )
        .order_by("-period_start")[:COMPARED_MONTHS]
    )
    if not counters:
        return PlanFit(months=[], costs=[], current=None, recommendation=None)
    months = [
        UsedMonth(
            periods.Period(counter.period_start, counter.period_end),
            counter.call_seconds,
            counter.api_calls,
            counter.storage_peak_bytes,
        )
        for counter in counters
    ]
    employees = counters[0].active_employees or 0
    number_fees = [
        number.monthly_fee
        for number in PhoneNumber.objects.filter(
            organization=organization, released_at__isnull=True
        ).order_by("provisioned_at", "pk")
    ]
    current = _plan_cost(current_plan, months, employees, number_fees) if current_plan else None
    costs = [_plan_cost(plan, months, employees, number_fees) for plan in plans]
    if current is None:
        return PlanFit(months=months, costs=costs, current=None, recommendation=None)
    costs = [replace(cost, versus_current=cost.per_month - current.per_month) for cost in costs]
    used = [
        named
        for month in months
        for named in _allowances(current_plan, month, employees, len(number_fees))
    ]
    return PlanFit(
        months=months,
        costs=costs,
        current=current,
        recommendation=_recommendation(current, costs, used),
    )


# --- recent usage against another plan ----------------------------------------------------


@dataclass(frozen=True)
class MonthBeyondPlan:
    """A recent usage month that would have gone past a plan's allowances."""

    period: periods.Period
    is_current: bool  # the month so far
    call_seconds: int
    included_seconds: int
    over_seconds: int
    refused_seconds: int  # calls the plan would have refused (`block`, or past the cap)
    call_overage: Money  # what the plan would have charged for the rest
    storage_overage: Money


def usage_beyond_plan(
    *, organization: Organization, plan: Plan, now: dt.datetime
) -> list[MonthBeyondPlan]:
    """The organization's last closed usage months (up to three) and the month so far, those
    of them whose use would have gone past `plan`'s call or storage allowance, newest first:
    what the plan would have refused or charged. One query."""
    counters = list(
        UsageCounter.objects.filter(organization=organization, period_start__lte=now).order_by(
            "-period_start"
        )[: COMPARED_MONTHS + 1]
    )
    if counters and now not in periods.Period(counters[0].period_start, counters[0].period_end):
        counters = counters[:COMPARED_MONTHS]  # nothing used this month yet
    beyond = []
    for counter in counters:
        period = periods.Period(counter.period_start, counter.period_end)
        included = plan.included_call_seconds
        over = max(counter.call_seconds - included, 0) if included is not None else 0
        storage = storage_overage_cost(plan=plan, peak_bytes=counter.storage_peak_bytes)
        if not over and not storage.amount:
            continue
        beyond.append(
            MonthBeyondPlan(
                period=period,
                is_current=now in period,
                call_seconds=counter.call_seconds,
                included_seconds=included or 0,
                over_seconds=over,
                refused_seconds=_refused_seconds(plan, over),
                call_overage=call_overage_cost(plan=plan, overage_seconds=over),
                storage_overage=storage,
            )
        )
    return beyond


# --- service tokens -----------------------------------------------------------------------


class ServiceTokenRefused(BillingError):
    """A valid service token that may not be used here: expired (401 `token_expired`), or
    for an organization it does not reach (403 `token_out_of_scope`)."""


def service_token_for_request(
    *, token: str, organization_slug: str | None, now: dt.datetime
) -> ServiceToken | None:
    """The active (not revoked) token with this secret, or None; in one query, with whether
    it reaches the organization of the request's path. Raises `ServiceTokenRefused` for an
    expired token or an organization outside its scope."""
    tokens = ServiceToken.objects.filter(
        token_hash=ServiceToken.hash(token), revoked_at__isnull=True
    ).only("pk", "all_organizations", "expires_at")
    if organization_slug is not None:
        tokens = tokens.annotate(
            reaches=Exists(
                ServiceToken.organizations.through.objects.filter(
                    servicetoken=OuterRef("pk"), organization__slug=organization_slug
                )
            )
        )
    service_token = tokens.first()
    if service_token is None:
        return None
    if service_token.expires_at is not None and service_token.expires_at <= now:
        raise ServiceTokenRefused(
            ErrorCode.TOKEN_EXPIRED,
            f"This service token expired at {service_token.expires_at.isoformat()}: ask "
            "for a new one.",
        )
    if organization_slug is not None and not (
        service_token.all_organizations or service_token.reaches
    ):
        raise _out_of_scope([organization_slug])
    return service_token


def service_token_check_reach(*, service_token: ServiceToken, organization_slugs: set[str]):
    """Raises `ServiceTokenRefused` unless the token reaches every one of these
    organizations (a batch names them in its body). No query for an all-organizations
    token."""
    if service_token.all_organizations:
        return
    reached = set(
        service_token.organizations.filter(slug__in=organization_slugs).values_list(
            "slug", flat=True
        )
    )
    if outside := sorted(organization_slugs - reached):
        raise _out_of_scope(outside)


def _out_of_scope(slugs: list[str]) -> ServiceTokenRefused:
    return ServiceTokenRefused(
        ErrorCode.TOKEN_OUT_OF_SCOPE,
        f"This service token does not reach {', '.join(map(repr, slugs))}: it reaches only "
        "the organizations it was made for.",
    )


# --- the calls of an invoice's call overage line ------------------------------------------


@dataclass(frozen=True)
class CallFilters:
    """What the drill-down from a call overage line narrows the month's calls by."""

    employee_id: int | None = None
    number: str = ""  # a phone number the AI employee answers
    direction: str = ""
    min_seconds: int | None = None
    max_seconds: int | None = None


def call_line_for(*, organization: Organization, number: str, line_id: int) -> InvoiceLine:
    """The organization's issued invoice's call overage line; another organization's
    invoice is not found."""
    invoice = (
        Invoice.objects.filter(organization=organization, number=number)
        .exclude(status=Invoice.Status.DRAFT)
        .first()
    )
    if invoice is None:
        raise BillingError(
            ErrorCode.INVOICE_NOT_FOUND, f"{organization} has no invoice {number}.", field="number"
        )
    line = invoice.lines.filter(pk=line_id).first()
    if line is None:
        raise BillingError(ErrorCode.LINE_NOT_FOUND, field="line")
    if line.kind != InvoiceLine.Kind.OVERAGE_CALLS or line.period_start is None:
        raise BillingError(ErrorCode.NOT_A_CALL_LINE, field="line")
    return line


def line_calls(*, line: InvoiceLine, filters: CallFilters = CallFilters()) -> QuerySet[Call]:
    """The calls of the line's usage month (the month they count in), oldest first: one
    indexed range of (organization, usage month)."""
    calls = Call.objects.filter(
        organization_id=line.invoice.organization_id, usage_period_start=line.period_start
    )
    if filters.employee_id is not None:
        calls = calls.filter(employee_id=filters.employee_id)
    if filters.number:
        calls = calls.filter(employee__phone_numbers__number=filters.number)
    if filters.direction:
        calls = calls.filter(direction=filters.direction)
    if filters.min_seconds is not None:
        calls = calls.filter(billable_seconds__gte=filters.min_seconds)
    if filters.max_seconds is not None:
        calls = calls.filter(billable_seconds__lte=filters.max_seconds)
    return calls.select_related("employee").order_by("connected_at", "pk")
