"""Usage of the demo organizations for `seed_usage_demo`: AI employees, phone numbers and
their price list, months of calls, storage and API usage. Run after the billing demo; every
step skips what exists, so running it again adds nothing."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from djmoney.money import Money

from billing.models import Organization, Subscription
from billing.subscriptions import periods
from billing.subscriptions.selectors import subscription_live
from usage import services
from usage.metering import services as metering
from usage.models import AIEmployee, PhoneNumber, PhoneNumberRate, UsageReport
from usage.simulation import calls_simulate, last_simulated_day

DEMO_SEED = 2026
GIB = 1024**3

LOCAL, TOLL_FREE = PhoneNumberRate.Type.LOCAL, PhoneNumberRate.Type.TOLL_FREE
# (type, country, region, currency, monthly price, regulatory fee, vanity surcharge)
PRICE_LIST = [
    (LOCAL, "US", "", "USD", "1.50", "0.25", "5.00"),
    (LOCAL, "US", "CA", "USD", "1.50", "0.60", "5.00"),  # California's telecom fees
    (TOLL_FREE, "US", "", "USD", "2.50", "0.25", "10.00"),
    (LOCAL, "DE", "", "USD", "1.80", "0.00", "6.00"),
    (TOLL_FREE, "DE", "", "USD", "3.50", "0.00", "12.00"),
    (LOCAL, "DE", "", "EUR", "1.60", "0.00", "5.50"),
    (TOLL_FREE, "DE", "", "EUR", "3.20", "0.00", "11.00"),
]


@dataclass(frozen=True)
class DemoEmployee:
    name: str
    cost_center: str
    inbound_capable: bool = True
    deactivated_on_day: int | None = None  # days after the subscription began


@dataclass(frozen=True)
class DemoNumber:
    number: str
    number_type: str
    country: str
    provisioned_on_day: int
    region: str = ""
    vanity: bool = False
    employee: str = ""  # the name of the AI employee that answers it
    released_on_day: int | None = None


@dataclass(frozen=True)
class BusyWeek:
    """A week of extra calls (a campaign) on top of the usual traffic, in the usage month
    `month` (0 is the first), at the pace of `seconds_per_month`: enough to go past the
    allowance that month."""

    month: int
    seconds_per_month: int


@dataclass(frozen=True)
class DemoUsage:
    employees: list[DemoEmployee]
    numbers: list[DemoNumber]  # in the order they were provisioned, within the plan's limit
    share_of_allowance: Decimal
    storage_gb: int  # stored in the first month; a tenth more every month after
    api_calls_per_week: int
    busy_week: BusyWeek | None = None


DEMO_USAGE = {
    "acme-dental": DemoUsage(
        employees=[
            DemoEmployee("Reception", "Scheduling"),
            DemoEmployee("Reminders", "Scheduling", inbound_capable=False),
            DemoEmployee("Night desk", "Support", deactivated_on_day=40),
        ],
        numbers=[
            DemoNumber("+12125550143", LOCAL, "US", 0, employee="Reception"),
            DemoNumber("+12125550178", LOCAL, "US", 1, released_on_day=20),
            DemoNumber("+18005550199", TOLL_FREE, "US", 30, vanity=True, employee="Reception"),
        ],
        share_of_allowance=Decimal("0.7"),
        storage_gb=1,
        api_calls_per_week=1_200,
    ),
    "northwind": DemoUsage(
        employees=[
            DemoEmployee("Lead qualifier", "Sales"),
            DemoEmployee("Outbound sales", "Sales", inbound_capable=False),
            DemoEmployee("Viewing scheduler", "Scheduling"),
            DemoEmployee("Tenant support", "Support"),
            DemoEmployee("Pilot agent", "", deactivated_on_day=30),
        ],
        numbers=[
            DemoNumber("+493023125001", LOCAL, "DE", 0, employee="Lead qualifier"),
            DemoNumber("+493023125002", LOCAL, "DE", 0, employee="Tenant support"),
            DemoNumber("+493023125003", LOCAL, "DE", 2, released_on_day=60),
            DemoNumber("+498005550100", TOLL_FREE, "DE", 14, employee="Tenant support"),
            DemoNumber("+493023125777", LOCAL, "DE", 45, vanity=True, employee="Lead qualifier"),
        ],
        share_of_allowance=Decimal("0.8"),
        storage_gb=12,
        api_calls_per_week=9_000,
        # A spring campaign: the third month goes past the allowance and shows call overage.
        busy_week=BusyWeek(month=2, seconds_per_month=300_000),
    ),
    # The enterprise plan includes 6,000,000 s a month; a tenth of it keeps the demo quick.
    "initech": DemoUsage(
        employees=[
            DemoEmployee("Sales desk", "Sales"),
            DemoEmployee("Help desk 1", "Support"),
            DemoEmployee("Help desk 2", "Support"),
            DemoEmployee("Scheduler", "Scheduling"),
            DemoEmployee("Collections", "Finance", inbound_capable=False),
            DemoEmployee("Legacy IVR", "IT", deactivated_on_day=90),
        ],
        numbers=[
            DemoNumber("+15125550100", LOCAL, "US", 0, region="TX", employee="Help desk 1"),
            DemoNumber("+14155550123", LOCAL, "US", 0, region="CA", employee="Sales desk"),
            DemoNumber("+18005550142", TOLL_FREE, "US", 3, employee="Help desk 2"),
            DemoNumber("+18885550111", TOLL_FREE, "US", 10, vanity=True, employee="Sales desk"),
            DemoNumber("+15125550199", LOCAL, "US", 5, region="TX", released_on_day=100),
        ],
        share_of_allowance=Decimal("0.1"),
        storage_gb=300,
        api_calls_per_week=60_000,
    ),
}


def seed_usage_demo(*, now: dt.datetime, say=print) -> None:
    """Create whatever of the usage demo is missing, for the demo organizations that exist."""
    say("Phone number price list…")
    _price_list()
    for slug, spec in DEMO_USAGE.items():
        organization = Organization.objects.filter(slug=slug).first()
        subscription = subscription_live(organization=organization) if organization else None
        if subscription is None:
            say(f"{slug}: no organization with a live subscription; run seed_demo first.")
            continue
        say(f"{organization}: AI employees and phone numbers…")
        employees = _employees(organization, subscription, spec, now)
        _numbers(organization, subscription, spec, employees, now)
        # Days already simulated are complete up to the last one, so a re-run starts there.
        since = last_simulated_day(organization=organization, seed=DEMO_SEED) or (
            subscription.anchor.astimezone(organization.tzinfo).date()
        )
        say(f"{organization}: calls since {since:%-d %b %Y}…")
        calls = calls_simulate(
            organization=organization,
            since=since,
            seed=DEMO_SEED,
            share_of_allowance=spec.share_of_allowance,
            now=now,
        )
        say(f"{organization}: {calls.recorded:,} calls recorded.")
        if spec.busy_week is not None:
            recorded = _busy_week(organization, subscription, spec.busy_week, now)
            say(f"{organization}: a busy week, {recorded:,} calls recorded.")
        _storage_and_api_usage(organization, subscription, spec, now)


def _price_list() -> None:
    for number_type, country, region, currency, price, fee, vanity in PRICE_LIST:
        PhoneNumberRate.objects.get_or_create(
            number_type=number_type,
            country=country,
            region=region,
            monthly_price_currency=currency,
            defaults={
                "monthly_price": Money(Decimal(price), currency),
                "regulatory_fee": Money(Decimal(fee), currency),
                "vanity_surcharge": Money(Decimal(vanity), currency),
            },
        )


def _on_day(subscription: Subscription, day: int, now: dt.datetime) -> dt.datetime:
    """Ten in the morning `day` days after the subscription began, and never after `now`."""
    return min(subscription.anchor + dt.timedelta(days=day, hours=10), now)


def _employees(organization, subscription, spec: DemoUsage, now) -> dict[str, AIEmployee]:
    existing = {employee.name: employee for employee in organization.employees.all()}
    for wanted in spec.employees:
        if wanted.name in existing:
            continue
        employee = services.employee_create(
            organization=organization,
            name=wanted.name,
            cost_center=wanted.cost_center,
            inbound_capable=wanted.inbound_capable,
            now=_on_day(subscription, 0, now),
        )
        if wanted.deactivated_on_day is not None:
            employee = services.employee_deactivate(
                employee=employee, now=_on_day(subscription, wanted.deactivated_on_day, now)
            )
        existing[employee.name] = employee
    return existing


def _numbers(organization, subscription, spec: DemoUsage, employees, now) -> None:
    # Released numbers included: they cannot be provisioned again.
    ever_provisioned = set(
        PhoneNumber.objects.filter(organization=organization).values_list("number", flat=True)
    )
    for wanted in spec.numbers:
        if wanted.number in ever_provisioned:
            continue
        phone_number = services.phone_number_provision(
            organization=organization,
            number=wanted.number,
            number_type=wanted.number_type,
            country=wanted.country,
            region=wanted.region,
            vanity=wanted.vanity,
            employee=employees.get(wanted.employee),
            now=_on_day(subscription, wanted.provisioned_on_day, now),
        )
        if wanted.released_on_day is not None:
            services.phone_number_release(
                phone_number=phone_number,
                now=_on_day(subscription, wanted.released_on_day, now),
            )


def _busy_week(organization, subscription, busy: BusyWeek, now) -> int:
    """The second week of usage month `busy.month`, once that month is over; returns how many
    calls were recorded. Its own seed keeps its calls apart from the usual traffic, so a
    re-run records nothing twice."""
    tz = subscription.tzinfo
    month = periods.nth_period(subscription.anchor, tz, 1, busy.month)
    if month.end > now:
        return 0
    first_day = month.start.astimezone(tz).date() + dt.timedelta(days=7)
    return calls_simulate(
        organization=organization,
        since=first_day,
        until=first_day + dt.timedelta(days=6),
        seed=DEMO_SEED + 1,
        seconds_per_month=busy.seconds_per_month,
        now=now,
    ).recorded


def _storage_and_api_usage(organization, subscription, spec: DemoUsage, now) -> None:
    """A storage level in the middle of every usage month, growing a little each month, and
    the API calls of every week, reported when the week ends."""
    tz = subscription.tzinfo
    months = periods.period_index_at(subscription.anchor, tz, 1, now) + 1
    for index in range(months):
        month = periods.nth_period(subscription.anchor, tz, 1, index)
        rng = random.Random(f"{DEMO_SEED}:{organization.pk}:{month.start.isoformat()}")  # noqa: S311
        measured_at = month.start + dt.timedelta(days=14, hours=12)
        if measured_at <= now:
            metering.usage_report_record(
                organization=organization,
                kind=UsageReport.Kind.STORAGE,
                report_id=f"demo-storage-{month.start:%Y%m%d}",
                quantity=spec.storage_gb * GIB * (10 + index) // 10,
                measured_at=measured_at,
                now=now,
            )
        week_start = month.start
        while week_start < month.end:
            week_end = min(week_start + dt.timedelta(days=7), month.end)
            if week_end > now:
                break
            metering.usage_report_record(
                organization=organization,
                kind=UsageReport.Kind.API_CALLS,
                report_id=f"demo-api-{week_start:%Y%m%d}",
                quantity=spec.api_calls_per_week * rng.randint(80, 120) // 100,
                measured_at=week_end - dt.timedelta(minutes=1),
                now=now,
            )
            week_start = week_end
