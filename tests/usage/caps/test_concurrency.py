"""Spend caps under 32 concurrent authorizations and reports on PostgreSQL: no cap is
exceeded by more than the calls already allowed and not yet reported."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from tests.factories import EmployeeFactory, PlanFactory, SubscriptionFactory
from usage import selectors
from usage.caps.services import spend_caps_replace
from usage.metering import services as metering
from usage.models import EmployeeUsageCounter, UsageCounter

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32
CALL_SECONDS = 60
NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


class InFlight:
    """Calls allowed and not yet reported, and the most there ever were at once."""

    def __init__(self):
        self.lock, self.now, self.peak = threading.Lock(), 0, 0

    def start(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def end(self):
        with self.lock:
            self.now -= 1


def race(employees, cap_kind):
    """32 threads, each asking before a call and reporting it when allowed, three times
    as many calls as threads; returns the peak of calls in flight and the reasons seen."""
    in_flight, reasons = InFlight(), []

    def call_if_allowed(n):
        employee = employees[n % len(employees)]
        try:
            answer = selectors.call_authorize(
                organization_slug=employee.organization.slug, employee_id=employee.pk, now=NOW
            )
            reasons.append(answer.reason)
            if not answer.allowed:
                return
            in_flight.start()
            connected = NOW - dt.timedelta(minutes=n + 2)
            metering.calls_record(
                reports=[
                    metering.CallReport(
                        f"{cap_kind}-{n}",
                        employee.organization.slug,
                        employee.pk,
                        "outbound",
                        connected,
                        connected + dt.timedelta(seconds=CALL_SECONDS),
                    )
                ],
                now=NOW,
            )
            in_flight.end()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(call_if_allowed, range(THREADS * 3)))
    return in_flight.peak, set(reasons)


def organization_with(employees=1, **plan):
    subscription = SubscriptionFactory(plan=PlanFactory(**plan), start=START, now=NOW)
    return [
        EmployeeFactory(organization=subscription.organization, cost_center="Sales")
        for _ in range(employees)
    ]


def assert_held(used, cap, peak):
    """Reached, and past it by no more than the calls that were in flight."""
    assert cap <= used <= cap + peak * CALL_SECONDS
    assert used < cap + THREADS * CALL_SECONDS


def test_an_employee_cap_holds_under_concurrency():
    # Given an AI employee capped at 10 minutes a month
    (employee,) = organization_with()
    spend_caps_replace(
        organization=employee.organization,
        overage_spend=None,
        employees={employee.pk: 600},
        cost_centers={},
        now=NOW,
    )

    # When 32 threads race to call through it
    peak, reasons = race([employee], "employee")

    # Then it stopped at the cap, past it only by the calls in flight
    used = EmployeeUsageCounter.objects.get().call_seconds
    assert_held(used, 600, peak)
    assert reasons == {"ok", "employee_cap_reached"}
    answer = selectors.call_authorize(
        organization_slug=employee.organization.slug, employee_id=employee.pk, now=NOW
    )
    assert (answer.allowed, answer.reason) == (False, "employee_cap_reached")


def test_a_cost_center_cap_holds_for_its_employees_together_under_concurrency():
    # Given four Sales AI employees capped together at 20 minutes
    employees = organization_with(employees=4)
    spend_caps_replace(
        organization=employees[0].organization,
        overage_spend=None,
        employees={},
        cost_centers={"Sales": 1_200},
        now=NOW,
    )

    peak, reasons = race(employees, "cost-center")

    used = sum(EmployeeUsageCounter.objects.values_list("call_seconds", flat=True))
    assert_held(used, 1_200, peak)
    assert reasons == {"ok", "cost_center_cap_reached"}


def test_the_overage_spend_cap_holds_under_concurrency():
    # Given 600 s included and $0.004/s overage, capped by the organization at $0.96 (240 s)
    (employee,) = organization_with(included_call_seconds=600)
    spend_caps_replace(
        organization=employee.organization,
        overage_spend=Decimal("0.96"),
        employees={},
        cost_centers={},
        now=NOW,
    )

    peak, reasons = race([employee], "spend")

    used = UsageCounter.objects.get().call_seconds
    assert_held(used, 840, peak)
    assert reasons == {"ok", "spend_cap_reached"}
