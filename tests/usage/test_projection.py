"""Projected overage: the month's pace, weighed by the organization's own hours of the week,
projects when the included call time runs out; the alert fires once per month."""

import datetime as dt
import re

import pytest
import time_machine

from billing.lifecycle import renewals
from billing.models import Notification
from tests.factories import EmployeeFactory, SubscriptionFactory
from usage.alerts.projection import projected_overage_alerts_if_needed
from usage.metering import services as metering
from usage.models import UsageAlert

pytestmark = pytest.mark.django_db

FEB = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)  # Monday


def report(employee, calls, now):
    metering.calls_record(
        reports=[
            metering.CallReport(
                f"{employee.pk}-{start.isoformat()}",
                employee.organization.slug,
                employee.pk,
                "outbound",
                start,
                start + dt.timedelta(seconds=seconds),
            )
            for start, seconds in calls
        ],
        now=now,
    )


def office_hours_february(employee):
    """An hour-long call every weekday hour from 9:00 to 17:00 in February."""
    days = [FEB + dt.timedelta(days=n) for n in range(28)]
    calls = [
        (day.replace(hour=hour), 3_000)
        for day in days
        if day.isoweekday() <= 5
        for hour in range(9, 17)
    ]
    with time_machine.travel(dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC), tick=False):
        report(employee, calls, now=dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC))


def renewed_on_the_first_of_march():
    march = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with time_machine.travel(march, tick=False):
        renewals.renew_subscriptions_if_needed(now=march)


def march_so_far(employee, seconds=85_000):
    """`seconds` of calls in March's office hours up to now (Monday 16 Mar, 10:00)."""
    calls = [
        (dt.datetime(2026, 3, day, 10, tzinfo=dt.UTC), seconds // 10)
        for day in range(2, 14)
        if dt.date(2026, 3, day).isoweekday() <= 5
    ]
    report(employee, calls, now=NOW)


def subscribed():
    subscription = SubscriptionFactory(start=FEB, now=FEB, organization__name="Acme Dental")
    return subscription, EmployeeFactory(organization=subscription.organization)


def test_an_office_week_projects_the_run_out_day_and_alerts_once(committed, mailoutbox):
    # Given a February of calls in weekday office hours, and 85,000 of March's 180,000 s used
    # by Monday 16 Mar, 10:00: at a plain pace that would last the month
    _, employee = subscribed()
    office_hours_february(employee)
    renewed_on_the_first_of_march()
    with time_machine.travel(NOW, tick=False):
        march_so_far(employee)

        # When the job runs, twice
        with committed():
            first = projected_overage_alerts_if_needed(now=NOW)
        with committed():
            again = projected_overage_alerts_if_needed(now=NOW + dt.timedelta(hours=1))

    # Then office hours alone use it up before the month ends, and it alerted once
    assert (first, again) == (1, 0)
    [alert] = UsageAlert.objects.filter(unit="projected")
    [notice] = Notification.objects.filter(kind="projected_overage")
    assert notice.title == "At this pace your call time runs out on 31 Mar"
    # 95,000 s left at 1,049 s per office hour: 79 hours to 27 Mar, the rest on 30 and 31 Mar
    assert re.search(
        r"weighed by the hours of the week you usually call in, the included call time runs "
        r"out around 12:3\d on 31 Mar 2026; the usage period runs until the end of 31 Mar "
        r"2026\. Projected use for the period: 3,078 minutes\.",
        notice.summary,
    )
    assert "Money at stake: overage so far $0.00; projected by the end of the period $" in (
        notice.summary
    )
    assert alert.period_start == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_without_history_the_plain_pace_lasts_the_month(committed):
    _, employee = subscribed()
    renewed_on_the_first_of_march()
    with time_machine.travel(NOW, tick=False):
        march_so_far(employee)

        with committed():
            assert projected_overage_alerts_if_needed(now=NOW) == 0

    assert not UsageAlert.objects.filter(unit="projected").exists()
