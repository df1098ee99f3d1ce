"""Usage alerts under concurrent writers on PostgreSQL: a threshold crossed by many writers at
once alerts exactly once."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing.models import Notification
from tests.factories import EmployeeFactory, SubscriptionFactory
from usage.metering import services as metering
from usage.models import UsageAlert, UsageCounter

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 32
NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def call(employee, call_id, seconds, hours_ago):
    connected = NOW - dt.timedelta(hours=hours_ago)
    return metering.CallReport(
        call_id,
        employee.organization.slug,
        employee.pk,
        "outbound",
        connected,
        connected + dt.timedelta(seconds=seconds),
    )


def test_32_writers_crossing_90_percent_at_once_alert_once():
    # Given Professional's 180,000 included seconds, 150,000 used (83%)
    subscription = SubscriptionFactory(start=START, now=START)
    employee = EmployeeFactory(organization=subscription.organization)
    metering.calls_record(
        reports=[call(employee, "before", 75_000, 100), call(employee, "b2", 75_000, 200)], now=NOW
    )

    # When 32 writers at once each report a call of 1,000 seconds (182,000 in all)
    def report(n):
        try:
            return metering.calls_record(reports=[call(employee, f"c{n}", 1_000, n + 1)], now=NOW)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(report, range(THREADS)))

    # Then the counter is exact, 90% and 100% fired once each, each in exactly one notice
    assert UsageCounter.objects.get().call_seconds == 182_000
    fired = sorted(
        int(value)
        for value in UsageAlert.objects.filter(metric="call_seconds").values_list(
            "value", flat=True
        )
    )
    assert fired == [50, 75, 90, 100]
    named = [
        threshold["value"]
        for notice in Notification.objects.filter(kind="usage_alert", data__metric="call_seconds")
        for threshold in notice.data["thresholds"]
    ]
    assert sorted(named, key=int) == ["50", "75", "90", "100"]
