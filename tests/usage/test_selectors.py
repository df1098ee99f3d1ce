import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.subscriptions import services as subscription_services
from tests.factories import EmployeeFactory, PlanFactory, SubscriptionFactory, record_call
from tests.helpers import utc
from usage import selectors, services
from usage.metering import services as metering

pytestmark = pytest.mark.django_db


def authorize(employee, now):
    """The decision (the alert state that comes with it: tests/usage/test_alerts.py)."""
    answer = selectors.call_authorize(
        organization_slug=employee.organization.slug, employee_id=employee.pk, now=now
    )
    return selectors.CallAuthorization(answer.allowed, answer.reason, answer.remaining_seconds)


def subscribed_employee(now, **plan):
    subscription = SubscriptionFactory(plan=PlanFactory(**plan), start=utc(2026, 3, 1), now=now)
    return EmployeeFactory(organization=subscription.organization)


class TestCallAuthorize:
    def test_allows_and_reports_the_remaining_balance_on_a_block_plan(self, now):
        employee = subscribed_employee(now, included_call_seconds=18_000, overage_policy="block")
        record_call(employee=employee, seconds=1_200, connected_at=now - dt.timedelta(hours=1))

        assert authorize(employee, now) == selectors.CallAuthorization(True, "ok", 16_800)

    def test_refuses_once_the_balance_is_gone_on_a_block_plan(self, now):
        employee = subscribed_employee(now, included_call_seconds=600, overage_policy="block")
        record_call(employee=employee, seconds=600, connected_at=now - dt.timedelta(hours=1))

        assert authorize(employee, now) == selectors.CallAuthorization(
            False, "balance_exhausted", 0
        )

    def test_a_charge_plan_without_cap_keeps_allowing_past_the_allowance(self, now):
        employee = subscribed_employee(now, included_call_seconds=600, overage_policy="charge")
        record_call(employee=employee, seconds=5_000, connected_at=now - dt.timedelta(hours=2))

        assert authorize(employee, now) == selectors.CallAuthorization(True, "ok", None)

    def test_the_overage_cap_stops_calls_when_reached(self, now):
        # $0.004/s with a $2.00 cap: 500 overage seconds reach the cap.
        employee = subscribed_employee(
            now,
            included_call_seconds=600,
            overage_policy="charge",
            overage_rate_per_second=Money(Decimal("0.004"), "USD"),
            overage_cap=Money(Decimal("2.00"), "USD"),
        )
        record_call(employee=employee, seconds=1_000, connected_at=now - dt.timedelta(hours=2))
        assert authorize(employee, now) == selectors.CallAuthorization(True, "ok", 100)

        record_call(employee=employee, seconds=100, connected_at=now - dt.timedelta(hours=1))

        assert authorize(employee, now) == selectors.CallAuthorization(
            False, "overage_cap_reached", 0
        )

    def test_unlimited_allowance_has_no_remaining_limit(self, now):
        employee = subscribed_employee(now, included_call_seconds=None)

        assert authorize(employee, now) == selectors.CallAuthorization(True, "ok", None)

    def test_refuses_an_inactive_employee(self, now):
        employee = subscribed_employee(now)
        services.employee_deactivate(employee=employee, now=now)

        assert authorize(employee, now).reason == "employee_inactive"

    def test_refuses_an_employee_of_another_organization(self, now):
        employee = subscribed_employee(now)
        stranger = subscribed_employee(now)

        result = selectors.call_authorize(
            organization_slug=employee.organization.slug, employee_id=stranger.pk, now=now
        )

        assert result.reason == "employee_not_found"

    @pytest.mark.parametrize(
        ("path", "reason"),
        [(["suspended"], "subscription_suspended"), (["canceled"], "no_subscription")],
    )
    def test_refuses_when_suspended_or_canceled(self, now, path, reason):
        employee = subscribed_employee(now)
        subscription = employee.organization.subscriptions.get()
        if path == ["suspended"]:
            subscription_services.subscription_set_status(
                subscription=subscription, status="past_due", reason="Declined", now=now
            )
        subscription_services.subscription_set_status(
            subscription=subscription, status=path[0], reason="x", now=now
        )

        assert authorize(employee, now) == selectors.CallAuthorization(False, reason, 0)

    def test_past_due_keeps_service_on_during_retries(self, now):
        employee = subscribed_employee(now)
        subscription_services.subscription_set_status(
            subscription=employee.organization.subscriptions.get(),
            status="past_due",
            reason="Declined",
            now=now,
        )

        assert authorize(employee, now).allowed

    def test_runs_one_query(self, now, django_assert_num_queries):
        employee = subscribed_employee(now)

        with django_assert_num_queries(1):
            authorize(employee, now)

    def test_counts_the_new_month_before_renewal_has_opened_it(self, now):
        employee = subscribed_employee(now, included_call_seconds=600, overage_policy="block")
        record_call(employee=employee, seconds=600, connected_at=utc(2026, 3, 20))  # March used up
        april = utc(2026, 4, 1, 0, 5)
        record_call(employee=employee, seconds=100, connected_at=utc(2026, 4, 1, 0, 1))

        assert authorize(employee, april) == selectors.CallAuthorization(True, "ok", 500)


class TestUsageSummary:
    def test_projects_use_and_overage_cost_at_the_current_rate(self):
        # Half-way through a 30-day April at 120,000 s used: 240,000 s projected.
        subscription = SubscriptionFactory(start=utc(2026, 4, 1), now=utc(2026, 4, 1))
        employee = EmployeeFactory(organization=subscription.organization)
        record_call(employee=employee, seconds=60_000, connected_at=utc(2026, 4, 3))
        record_call(employee=employee, seconds=60_000, connected_at=utc(2026, 4, 10))

        summary = selectors.usage_summary(subscription=subscription, now=utc(2026, 4, 16))

        assert summary.call_seconds.used == 120_000
        assert summary.remaining_seconds is None  # a charge plan without cap never refuses
        assert summary.projected_seconds == 240_000
        assert summary.projected_overage_seconds == 60_000
        assert summary.projected_overage_cost == Money(
            Decimal("240.00"), "USD"
        )  # 60,000 s × $0.004

    def test_remaining_seconds_in_minutes_and_when_calls_would_pause(self):
        # 9,000 s in the first 10 days of April: at 900 s a day the other 9,000 last 10 days.
        subscription = SubscriptionFactory(
            plan=PlanFactory(included_call_seconds=18_000, overage_policy="block"),
            start=utc(2026, 4, 1),
            now=utc(2026, 4, 1),
        )
        employee = EmployeeFactory(organization=subscription.organization)
        record_call(employee=employee, seconds=9_000, connected_at=utc(2026, 4, 2))

        summary = selectors.usage_summary(subscription=subscription, now=utc(2026, 4, 11))

        assert (summary.remaining_seconds, summary.remaining_minutes) == (9_000, Decimal("150.0"))
        assert summary.projected_exhaustion == utc(2026, 4, 21)

    def test_no_pause_is_projected_when_the_allowance_lasts_the_month(self):
        subscription = SubscriptionFactory(
            plan=PlanFactory(included_call_seconds=18_000, overage_policy="block"),
            start=utc(2026, 4, 1),
            now=utc(2026, 4, 1),
        )
        employee = EmployeeFactory(organization=subscription.organization)
        record_call(employee=employee, seconds=1_000, connected_at=utc(2026, 4, 2))

        summary = selectors.usage_summary(subscription=subscription, now=utc(2026, 4, 11))

        assert summary.projected_exhaustion is None

    def test_allowances_for_employees_numbers_storage_and_api_calls(self, now):
        subscription = SubscriptionFactory(plan=PlanFactory(max_active_employees=5), now=now)
        for _ in range(3):
            EmployeeFactory(organization=subscription.organization)
        EmployeeFactory(organization=subscription.organization, is_active=False)
        metering.usage_report_record(
            organization=subscription.organization,
            kind="api_calls",
            report_id="r",
            quantity=42,
            measured_at=now,
            now=now,
        )

        summary = selectors.usage_summary(subscription=subscription, now=now)

        assert (summary.employees.used, summary.employees.limit) == (3, 5)
        assert summary.api_calls.used == 42
        assert summary.storage_bytes.limit == 50 * 1024**3
