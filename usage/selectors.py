"""Reads of the usage app for the platform API, pages and invoicing: call authorization, the
usage summary against the plan, overage costs, lists, number fees and rosters."""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from djmoney.money import Money

from billing.models import Organization, Plan, Subscription
from billing.money import round_money
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage.models import (
    AIEmployee,
    EmployeeUsageCounter,
    PhoneNumber,
    SpendCap,
    UsageAlert,
    UsageCounter,
)

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


@dataclass(frozen=True)
class CallTimeCap:
    """A monthly call-time cap of an AI employee or a cost center, and its use so far."""

    limit: int
    used: int


def _within_organization_limits(
    *, included, used, policy, rate: Decimal, cap: Decimal | None, spend_cap: Decimal | None
) -> CallAuthorization:
    """The organization's own limits: the allowance on a `block` plan, else the overage
    caps, the plan's and the one the organization set itself, whichever is lower."""
    if included is None:
        return CallAuthorization(True, "ok", None)
    left_in_allowance = included - used
    if policy == Plan.OveragePolicy.BLOCK:
        if left_in_allowance <= 0:
            return CallAuthorization(False, "balance_exhausted", 0)
        return CallAuthorization(True, "ok", left_in_allowance)
    # On a tie the organization's own cap is named: it is the one it can raise.
    caps = [
        (limit, reason)
        for limit, reason in ((spend_cap, "spend_cap_reached"), (cap, "overage_cap_reached"))
        if limit is not None
    ]
    if not caps or rate <= 0:
        return CallAuthorization(True, "ok", None)
    lowest, reason = min(caps, key=lambda item: item[0])
    remaining = left_in_allowance + int(lowest / rate)
    if remaining <= 0:
        return CallAuthorization(False, reason, 0)
    return CallAuthorization(True, "ok", remaining)


def _authorization(
    *,
    status,
    included,
    used,
    policy,
    rate: Decimal,
    cap: Decimal | None,
    employee_active,
    spend_cap: Decimal | None = None,
    employee_cap: CallTimeCap | None = None,
    cost_center_cap: CallTimeCap | None = None,
) -> CallAuthorization:
    if status == Subscription.Status.SUSPENDED:
        return CallAuthorization(False, "subscription_suspended", 0)
    if employee_active is None:
        return CallAuthorization(False, "employee_not_found", None)
    if not employee_active:
        return CallAuthorization(False, "employee_inactive", None)
    authorization = _within_organization_limits(
        included=included, used=used, policy=policy, rate=rate, cap=cap, spend_cap=spend_cap
    )
    if not authorization.allowed:
        return authorization
    remaining = authorization.remaining_seconds
    for reason, call_time_cap in (
        ("employee_cap_reached", employee_cap),
        ("cost_center_cap_reached", cost_center_cap),
    ):
        if call_time_cap is None:
            continue
        left = call_time_cap.limit - call_time_cap.used
        if left <= 0:
            return CallAuthorization(False, reason, 0)
        remaining = left if remaining is None else min(remaining, left)
    return CallAuthorization(True, "ok", remaining)


def _prepared_statement_cursor():
    """Django's cursor, except that on PostgreSQL it binds parameters on the server, so the
    server plans the statement once per connection and reuses the plan: planning the
    authorize statement takes several times longer than running it. The ORM's cursors bind
    on the client and are never prepared (`DATABASES` `prepare_threshold` only applies here).
    Wrapped as Django wraps its own: health-checked, logged, counted, errors translated."""
    database = connections[DEFAULT_DB_ALIAS]  # one look-up of the thread's connection
    if database.vendor != "postgresql":
        return database.cursor()
    database.close_if_health_check_failed()
    database.ensure_connection()
    return database._prepare_cursor(psycopg.Cursor(database.connection))


@functools.cache
def _authorize_sql(vendor: str) -> str:
    """One statement for the question asked before every call, built once per database
    vendor. Written in SQL because the ORM spends several times longer compiling it than the
    database does answering it (bench/). Decimals come back as text, so no float ever
    carries a rate."""
    quote = connection.ops.quote_name
    subscription, organization = Subscription._meta.db_table, Organization._meta.db_table
    plan, counter, employee, alert = (
        Plan._meta.db_table,
        UsageCounter._meta.db_table,
        AIEmployee._meta.db_table,
        UsageAlert._meta.db_table,
    )
    cap, employee_counter = SpendCap._meta.db_table, EmployeeUsageCounter._meta.db_table
    return f"""
        SELECT s.status, p.included_call_seconds, p.overage_policy,
               CAST(p.overage_rate_per_second AS TEXT), CAST(p.overage_cap AS TEXT),
               (SELECT c.call_seconds FROM {quote(counter)} c
                 WHERE c.organization_id = s.organization_id AND c.period_start = s.usage_period_start),
               e.is_active,
               CASE WHEN s.usage_period_end <= %s THEN 1 ELSE 0 END,
               s.id,
               (SELECT 1 FROM {quote(alert)} a
                 WHERE a.organization_id = s.organization_id
                   AND a.period_start = s.usage_period_start AND a.metric = 'call_seconds'
                 LIMIT 1),
               (SELECT 1 FROM {quote(alert)} a
                 WHERE a.organization_id = s.organization_id
                   AND a.period_start = s.usage_period_start AND a.metric = 'overage_cap'
                 LIMIT 1),
               (SELECT CAST(k.overage_limit AS TEXT) FROM {quote(cap)} k
                 WHERE k.organization_id = s.organization_id AND k.scope = 'overage_spend'),
               (SELECT k.call_seconds_limit FROM {quote(cap)} k
                 WHERE k.employee_id = e.id AND k.scope = 'employee'),
               (SELECT SUM(u.call_seconds) FROM {quote(employee_counter)} u
                 WHERE u.employee_id = e.id AND u.period_start = s.usage_period_start),
               e.cost_center,
               (SELECT k.call_seconds_limit FROM {quote(cap)} k
                 WHERE k.organization_id = s.organization_id AND k.scope = 'cost_center'
                   AND k.cost_center = e.cost_center),
               (SELECT SUM(u.call_seconds) FROM {quote(employee_counter)} u
                 WHERE u.organization_id = s.organization_id
                   AND u.period_start = s.usage_period_start AND u.cost_center = e.cost_center)
          FROM {quote(subscription)} s
          JOIN {quote(organization)} o ON o.id = s.organization_id
          JOIN {quote(plan)} p ON p.id = s.plan_id
          LEFT JOIN {quote(employee)} e ON e.id = %s AND e.organization_id = s.organization_id
         WHERE o.slug = %s AND s.status <> 'canceled'
    """  # noqa: S608 - identifiers come from model metadata, values are parameters


def _call_seconds_in_period(*, organization_id: int, period_start, **match) -> int:
    """Call seconds of one AI employee or one cost center in a usage period."""
    return (
        EmployeeUsageCounter.objects.filter(
            organization_id=organization_id, period_start=period_start, **match
        ).aggregate(seconds=Sum("call_seconds"))["seconds"]
        or 0
    )


def _call_time_cap(limit: int | None, used) -> CallTimeCap | None:
    return None if limit is None else CallTimeCap(limit, int(used or 0))


def call_authorize(
    *, organization_slug: str, employee_id: int, now: dt.datetime
) -> CallAuthorization:
    """May this AI employee place or take a call now, and how close is the organization to
    its limits (the plan's, and the spend caps it set itself)? One query on the normal path."""
    with _prepared_statement_cursor() as cursor:
        database = cursor.db
        cursor.execute(
            _authorize_sql(database.vendor),
            [database.ops.adapt_datetimefield_value(now), employee_id, organization_slug],
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
        spend_cap,
        employee_limit,
        employee_used,
        cost_center,
        cost_center_limit,
        cost_center_used,
    ) = row
    if renewal_pending:
        # Renewal has not opened the new usage month yet: count what is already in it.
        subscription = Subscription.objects.get(pk=subscription_id)
        organization_id = subscription.organization_id
        period_start = subscription.usage_period_at(now).start
        used = (
            UsageCounter.objects.filter(organization_id=organization_id, period_start=period_start)
            .values_list("call_seconds", flat=True)
            .first()
        )
        if employee_limit is not None:
            employee_used = _call_seconds_in_period(
                organization_id=organization_id, period_start=period_start, employee_id=employee_id
            )
        if cost_center_limit is not None:
            cost_center_used = _call_seconds_in_period(
                organization_id=organization_id, period_start=period_start, cost_center=cost_center
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
        spend_cap=Decimal(spend_cap) if spend_cap is not None else None,
        employee_cap=_call_time_cap(employee_limit, employee_used),
        cost_center_cap=_call_time_cap(cost_center_limit, cost_center_used),
    )
    return CallAuthorization(
        authorization.allowed,
        authorization.reason,
        authorization.remaining_seconds,
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
    storage_peak_bytes: int  # the month's peak, on which storage overage is invoiced

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


def count_per_organization(queryset) -> Subquery:
    """A scalar subquery: how many rows of `queryset` (filtered on an `OuterRef` to the
    outer row's organization) the organization has. Annotating it side by side with others
    never multiplies them, as joining both tables would."""
    return Subquery(
        queryset.order_by().values("organization").annotate(n=Count("pk")).values("n")[:1],
        output_field=models.IntegerField(),
    )


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
            active_employees=count_per_organization(
                AIEmployee.objects.filter(organization=OuterRef("pk"), is_active=True)
            ),
            held_numbers=count_per_organization(
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
        storage_peak_bytes=counter.storage_peak_bytes,
    )


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
    return number_fees_of(numbers=list(held), plan=plan, period=period)


def numbers_held_since(
    *, organization_ids: list[int], since: dt.datetime
) -> dict[int, list[PhoneNumber]]:
    """The numbers each organization held at any time since `since`, in the order
    `number_fees_of` expects, in one query whatever how many organizations."""
    held: dict[int, list[PhoneNumber]] = {
        organization_id: [] for organization_id in organization_ids
    }
    for number in PhoneNumber.objects.filter(
        Q(released_at__isnull=True) | Q(released_at__gt=since),
        organization__in=organization_ids,
    ).order_by("provisioned_at", "pk"):
        held[number.organization_id].append(number)
    return held


def number_fees_of(
    *, numbers: list[PhoneNumber], plan: Plan, period: periods.Period
) -> list[NumberFee]:
    """`number_fees_for_period` of numbers already read (in provisioning order): those of
    them held during `period`."""
    held = [
        number
        for number in numbers
        if number.provisioned_at < period.end
        and (number.released_at is None or number.released_at > period.start)
    ]
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
