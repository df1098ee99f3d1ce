import datetime as dt
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from djmoney.money import Money

from billing.models import Plan
from tests.factories import EmployeeFactory, OrganizationFactory, PlanFactory, SubscriptionFactory
from usage.models import Call, UsageCounter
from usage.simulation import calls_simulate

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
BANDS = {
    "confirmation": range(30, 61),
    "sales": range(5 * 60, 10 * 60 + 1),
    "support": range(10 * 60, 20 * 60 + 1),
}


@pytest.fixture
def organization(now):
    """A New York organization on a 180,000 s plan since 1 Feb 2026, with a sales, a support
    and a scheduling AI employee. It is Monday 16 Mar 2026, 06:00 in New York."""
    organization = OrganizationFactory(slug="acme", timezone="America/New_York")
    SubscriptionFactory(
        organization=organization,
        plan=PlanFactory(included_call_seconds=180_000),
        start=dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC),
        now=now,
    )
    for cost_center in ("Sales", "Support", "Scheduling"):
        EmployeeFactory(organization=organization, name=cost_center, cost_center=cost_center)
    return organization


def simulate(organization, now, since=dt.date(2026, 2, 1), until=None, **options):
    return calls_simulate(organization=organization, since=since, until=until, now=now, **options)


def calls():
    return list(
        Call.objects.order_by("platform_call_id").values_list(
            "platform_call_id", "employee_id", "direction", "connected_at", "ended_at"
        )
    )


def test_every_call_is_a_confirmation_a_sales_call_or_a_support_call(organization, now):
    simulate(organization, now)

    seconds = Call.objects.values_list("billable_seconds", flat=True)
    kinds = Counter(
        next(kind for kind, band in BANDS.items() if length in band) for length in seconds
    )
    assert sum(kinds.values()) == len(seconds)
    assert set(kinds) == set(BANDS)


def test_each_employee_mostly_makes_the_calls_of_its_cost_center(organization, now):
    simulate(organization, now)

    def share_in(employee_name, band):
        lengths = Call.objects.filter(employee__name=employee_name).values_list(
            "billable_seconds", flat=True
        )
        return sum(length in band for length in lengths) / len(lengths)

    assert share_in("Sales", BANDS["sales"]) > 0.5
    assert share_in("Support", BANDS["support"]) > 0.5
    assert share_in("Scheduling", BANDS["confirmation"]) > 0.5


def test_calls_start_in_business_hours_and_weekdays_are_busier(organization, now):
    simulate(organization, now)

    starts = [c.astimezone(NEW_YORK) for c in Call.objects.values_list("connected_at", flat=True)]
    assert all(8 <= start.hour < 18 for start in starts)  # local time, across the DST change
    per_day = Counter(start.date() for start in starts)
    weekdays = [n for day, n in per_day.items() if day.weekday() < 5]
    weekends = [n for day, n in per_day.items() if day.weekday() >= 5]
    assert sum(weekdays) / len(weekdays) > 2 * sum(weekends) / len(weekends)


def test_a_usage_month_gets_the_share_of_the_allowance_asked_for(organization, now):
    simulate(organization, now, until=dt.date(2026, 2, 28), share_of_allowance=Decimal("0.8"))

    used = UsageCounter.objects.get(period_start__month=2).call_seconds
    assert 0.9 * 144_000 <= used <= 1.1 * 144_000  # 80% of 180,000 s


def test_on_a_block_plan_no_call_starts_once_the_allowance_is_used(now):
    organization = OrganizationFactory(slug="small")
    SubscriptionFactory(
        organization=organization,
        plan=PlanFactory(
            included_call_seconds=3_600,
            overage_policy=Plan.OveragePolicy.BLOCK,
            overage_rate_per_second=Money(0, "USD"),
        ),
        start=dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        now=now,
    )
    EmployeeFactory(organization=organization)

    simulate(organization, now, until=dt.date(2026, 2, 28), share_of_allowance=Decimal(2))

    used = UsageCounter.objects.get(organization=organization).call_seconds
    last_call = Call.objects.latest("connected_at").connected_at
    assert 3_600 <= used < 3_600 + 20 * 60  # the last call allowed completes
    assert last_call < dt.datetime(2026, 2, 22, tzinfo=dt.UTC)  # twice the traffic: used early


def test_no_call_before_the_subscription_or_after_now(organization, now):
    simulate(organization, now, since=dt.date(2026, 1, 15))

    first = Call.objects.earliest("connected_at").connected_at
    assert first >= organization.subscriptions.get().anchor
    assert Call.objects.latest("ended_at").ended_at <= now


def test_the_same_seed_gives_the_same_calls_and_another_seed_others(organization, now):
    simulate(organization, now, seed=7)
    first = calls()
    Call.objects.all().delete()

    simulate(organization, now, seed=7)
    same = calls()
    simulate(organization, now, seed=8)

    assert same == first
    assert Call.objects.count() > len(first)


def test_a_rerun_records_nothing(organization, now):
    first = simulate(organization, now)
    counters = list(UsageCounter.objects.values_list("call_seconds", "calls"))

    again = simulate(organization, now)

    assert first.recorded == first.calls > 0
    assert (again.recorded, again.duplicates) == (0, first.calls)
    assert list(UsageCounter.objects.values_list("call_seconds", "calls")) == counters


def test_counters_are_exactly_the_sum_of_the_calls(organization, now):
    simulate(organization, now, since=dt.date(2026, 2, 10), until=dt.date(2026, 3, 3))
    simulate(organization, now, since=dt.date(2026, 3, 1))  # overlapping days, some repeated

    sums = {
        row["usage_period_start"]: (row["seconds"], row["calls"])
        for row in Call.objects.values("usage_period_start").annotate(
            seconds=Sum("billable_seconds"), calls=Count("pk")
        )
    }
    assert len(sums) == 2
    assert {c.period_start: (c.call_seconds, c.calls) for c in UsageCounter.objects.all()} == sums


def test_the_command_shows_progress_and_what_it_recorded(organization, now, capsys):
    call_command("simulate_calls", "--org", "acme", "--since", "2026-02-01", "--seed", "3")

    output = capsys.readouterr().out
    total = Call.objects.count()
    assert f"{total:,} of {total:,} calls" in output
    assert f"{total:,} recorded" in output


def test_the_command_needs_seconds_per_month_on_an_unlimited_plan(now, capsys):
    organization = OrganizationFactory(slug="big")
    SubscriptionFactory(
        organization=organization, plan=PlanFactory(included_call_seconds=None), now=now
    )
    EmployeeFactory(organization=organization)

    with pytest.raises(CommandError) as refused:
        call_command("simulate_calls", "--org", "big", "--since", "2026-03-16")
    assert refused.value.__cause__.code == "unlimited_allowance"
    call_command(
        "simulate_calls", "--org", "big", "--since", "2026-03-01", "--seconds-per-month", "900000"
    )

    assert Call.objects.exists()
