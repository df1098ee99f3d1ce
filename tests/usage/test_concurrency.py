"""Concurrent writers on PostgreSQL: counters stay exact, quotas hold, balances are enforced."""

import datetime as dt
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from djmoney.money import Money

from billing.errors import BillingError
from tests.factories import EmployeeFactory, PlanFactory, SubscriptionFactory
from usage import selectors, services
from usage.metering import services as metering
from usage.models import AIEmployee, Call, UsageCounter
from usage.tokens.services import service_token_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32
NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def in_threads(work, items):
    def run(item):
        try:
            return work(item)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, items))


def report(employee, call_id, seconds, minutes_ago):
    connected = NOW - dt.timedelta(minutes=minutes_ago)
    return metering.CallReport(
        call_id,
        employee.organization.slug,
        employee.pk,
        "inbound",
        connected,
        connected + dt.timedelta(seconds=seconds),
    )


def test_32_threads_with_a_fifth_repeated_count_each_call_exactly_once():
    # Given 640 distinct calls, of which every fifth report is sent twice (concurrently)
    subscription = SubscriptionFactory(start=START, now=NOW)
    employee = EmployeeFactory(organization=subscription.organization)
    rng = random.Random(7)
    unique = [
        report(employee, f"call-{n}", rng.randint(30, 1_200), rng.randint(10, 20_000))
        for n in range(640)
    ]
    repeats = unique[::5]
    sent = unique + repeats

    # When 32 threads report them, half in batches of 8, the rest and the repeats one by one
    def send(chunk):
        return metering.calls_record(reports=chunk, now=NOW)

    chunks = [unique[i : i + 8] for i in range(0, 320, 8)] + [[r] for r in unique[320:] + repeats]
    rng.shuffle(chunks)
    results = in_threads(send, chunks)

    # Then the counter equals the sum of the unique calls
    counter = UsageCounter.objects.get(organization=subscription.organization)
    assert counter.call_seconds == sum((r.ended_at - r.connected_at).seconds for r in unique)
    assert counter.calls == len(unique) == Call.objects.count()
    assert sum(len(r.recorded) for r in results) == len(unique)
    assert sum(len(r.duplicates) for r in results) == len(sent) - len(unique)


def test_32_threads_reporting_one_call_id_with_different_content_record_one_call():
    # Given one call id that 32 reporters send at once, each with its own length
    subscription = SubscriptionFactory(start=START, now=NOW)
    employee = EmployeeFactory(organization=subscription.organization)

    def send(seconds):
        try:
            metering.calls_record(reports=[report(employee, "race", seconds, 30)], now=NOW)
        except metering.CallConflict as conflict:
            return conflict.details["conflicts"][0]["fields"]
        return "recorded"

    outcomes = in_threads(send, range(60, 60 + THREADS))

    # Then one is recorded and every other one is refused for its different end
    assert outcomes.count("recorded") == 1
    assert outcomes.count(["ended_at"]) == THREADS - 1
    recorded = Call.objects.get()
    assert UsageCounter.objects.get().call_seconds == recorded.billable_seconds


def test_on_a_block_plan_no_call_is_authorized_once_the_balance_is_gone():
    # Given a 600-second allowance and 32 agents racing to call 60 seconds at a time
    subscription = SubscriptionFactory(
        plan=PlanFactory(included_call_seconds=600, overage_policy="block"), start=START, now=NOW
    )
    employee = EmployeeFactory(organization=subscription.organization)
    slug = employee.organization.slug

    def call_if_allowed(n):
        answer = selectors.call_authorize(organization_slug=slug, employee_id=employee.pk, now=NOW)
        if answer.allowed:
            metering.calls_record(reports=[report(employee, f"race-{n}", 60, n + 1)], now=NOW)
        return answer.allowed

    in_threads(call_if_allowed, range(THREADS * 3))

    # Then once the balance is used up every new call is refused
    used = UsageCounter.objects.get(organization=subscription.organization).call_seconds
    assert used >= 600
    answer = selectors.call_authorize(organization_slug=slug, employee_id=employee.pk, now=NOW)
    assert (answer.allowed, answer.reason, answer.remaining_seconds) == (
        False,
        "balance_exhausted",
        0,
    )
    assert answer.warning == "allowance_used"
    # Calls allowed before the balance ran out complete and are recorded, past the allowance
    # by at most the calls that were already connected.
    assert used <= 600 + THREADS * 60


def test_the_overage_cap_stops_calls_when_reached_under_concurrency():
    # Given $0.004/s overage capped at $1.20: 600 included + 300 overage seconds
    plan = PlanFactory(
        included_call_seconds=600,
        overage_policy="charge",
        overage_rate_per_second=Money(Decimal("0.004"), "USD"),
        overage_cap=Money(Decimal("1.20"), "USD"),
    )
    subscription = SubscriptionFactory(plan=plan, start=START, now=NOW)
    employee = EmployeeFactory(organization=subscription.organization)
    slug = employee.organization.slug

    def call_if_allowed(n):
        if selectors.call_authorize(
            organization_slug=slug, employee_id=employee.pk, now=NOW
        ).allowed:
            metering.calls_record(reports=[report(employee, f"cap-{n}", 30, n + 1)], now=NOW)

    in_threads(call_if_allowed, range(THREADS * 3))

    answer = selectors.call_authorize(organization_slug=slug, employee_id=employee.pk, now=NOW)
    assert (answer.allowed, answer.reason, answer.remaining_seconds) == (
        False,
        "overage_cap_reached",
        0,
    )
    assert answer.warning == "overage_cap_near"
    assert UsageCounter.objects.get(organization=subscription.organization).call_seconds >= 900


def test_concurrent_creations_never_exceed_the_employee_quota():
    subscription = SubscriptionFactory(
        plan=PlanFactory(max_active_employees=5), start=START, now=NOW
    )

    def create(n):
        try:
            services.employee_create(
                organization=subscription.organization, name=f"Agent {n}", now=NOW
            )
        except BillingError as refused:
            return refused.code
        return "created"

    outcomes = in_threads(create, range(THREADS))

    assert outcomes.count("created") == 5
    assert outcomes.count("employee_quota_reached") == THREADS - 5
    assert AIEmployee.objects.filter(is_active=True).count() == 5


def test_32_clients_sending_overlapping_batches_all_succeed_and_count_each_call_once():
    # Given 3 organizations and 1,500 distinct calls spread over two usage months
    subscriptions = [
        SubscriptionFactory(start=dt.datetime(2026, 2, 1, tzinfo=dt.UTC), now=NOW) for _ in range(3)
    ]
    employees = [EmployeeFactory(organization=s.organization) for s in subscriptions]
    token = service_token_create(name="calling platform", all_organizations=True)[1]
    rng = random.Random(11)
    calls, expected = [], Counter()
    for n in range(1_500):
        employee = rng.choice(employees)
        connected = NOW - dt.timedelta(minutes=rng.randint(10, 40 * 24 * 60))
        seconds = rng.randint(1, 900)
        calls.append(
            {
                "call_id": f"shared-{n:04d}",
                "org": employee.organization.slug,
                "employee_id": employee.pk,
                "direction": rng.choice(["inbound", "outbound"]),
                "connected_at": connected.isoformat(),
                "ended_at": (connected + dt.timedelta(seconds=seconds)).isoformat(),
            }
        )
        month = connected.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        expected[employee.organization.slug, month, "seconds"] += seconds
        expected[employee.organization.slug, month, "calls"] += 1
    # ... sent in 120 batches of 200 drawn at random, so each call is in 16 batches on
    # average, in a different order in each
    batches = [rng.sample(calls, 200) for _ in range(120)]

    # When 32 clients send them at once through the API
    def send(batch):
        response = Client(raise_request_exception=False).post(
            "/api/v1/calls/batch",
            {"calls": batch},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        return response.status_code, response.json() if response.status_code == 200 else {}

    with time_machine.travel(NOW, tick=False):
        answers = in_threads(send, batches)

    # Then every batch is accepted, and each counter holds exactly its distinct calls
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: len(batches)}
    assert sum(body["recorded"] for _, body in answers) == len(calls) == Call.objects.count()
    counted = Counter()
    for counter in UsageCounter.objects.select_related("organization"):
        counted[counter.organization.slug, counter.period_start, "seconds"] = counter.call_seconds
        counted[counter.organization.slug, counter.period_start, "calls"] = counter.calls
    assert counted == expected
