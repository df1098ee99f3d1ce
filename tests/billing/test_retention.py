import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django_q.models import Schedule

from billing import tasks
from billing.lifecycle import services as lifecycle_services
from billing.models import BalanceEntry, InvoiceLine, Subscription
from billing.subscriptions import services as subscription_services
from payments import services as payment_services
from payments.models import PaymentAttempt
from tests.factories import (
    EmployeeFactory,
    PlanFactory,
    SubscriptionFactory,
    card,
    record_call,
    renewed_invoice,
)
from usage import services as usage_services
from usage.metering import services as metering
from usage.models import AIEmployee, Call, PhoneNumber, UsageCounter, UsageReport

pytestmark = pytest.mark.django_db

MAR_20 = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)


def days_after(moment, days):
    return moment + dt.timedelta(days=days)


def cancel(subscription, at=MAR_20):
    return subscription_services.subscription_set_status(
        subscription=subscription, status="canceled", reason="Closing the account", now=at
    )


def usage_rows(organization):
    return {
        model.__name__: model.objects.filter(organization=organization).count()
        for model in (Call, UsageCounter, UsageReport, PhoneNumber, AIEmployee)
    }


def billing_rows(organization):
    return {
        "invoices": organization.invoices.count(),
        "invoice lines": InvoiceLine.objects.filter(invoice__organization=organization).count(),
        "balance entries": BalanceEntry.objects.filter(organization=organization).count(),
        "payment attempts": PaymentAttempt.objects.filter(
            invoice__organization=organization
        ).count(),
    }


def customer():
    """An organization subscribed on 16 Feb 2026 and renewed on 16 Mar with calls, numbers,
    an AI employee, a storage report, credits applied and the renewal paid by card; it
    canceled on 20 Mar 2026."""
    invoice = renewed_invoice()
    organization = invoice.organization
    metering.usage_report_record(
        organization=organization,
        kind=UsageReport.Kind.STORAGE,
        report_id="storage-1",
        quantity=2 * 1024**3,
        measured_at=MAR_20,
        now=MAR_20,
    )
    card(organization, now=MAR_20)
    payment_services.invoice_collect(invoice=invoice, now=MAR_20)
    cancel(invoice.subscription)
    return organization


def purge(at):
    return lifecycle_services.usage_data_purge_if_needed(now=at)


def subscription_of(organization):
    return Subscription.objects.filter(organization=organization).latest("created_at")


class TestPurge:
    def test_nothing_is_deleted_59_days_after_the_subscription_ended(self):
        organization = customer()
        before = usage_rows(organization)

        purged = purge(days_after(MAR_20, 59))

        assert purged == 0
        assert usage_rows(organization) == before
        assert all(before.values())
        assert subscription_of(organization).data_purged_at is None

    def test_after_60_days_usage_data_and_employees_go_and_billing_records_stay(self):
        # Given a customer that left, and another one still subscribed
        organization = customer()
        billed = billing_rows(organization)
        other = SubscriptionFactory(now=MAR_20).organization
        record_call(employee=EmployeeFactory(organization=other), seconds=60, connected_at=MAR_20)
        others_before = usage_rows(other)

        # When the job runs 60 days after the end
        purged = purge(days_after(MAR_20, 60))

        # Then the customer's usage data and AI employees are gone, what it was billed stays
        assert purged == 1
        assert usage_rows(organization) == {
            "Call": 0,
            "UsageCounter": 0,
            "UsageReport": 0,
            "PhoneNumber": 0,
            "AIEmployee": 0,
        }
        assert billing_rows(organization) == billed
        assert billed["payment attempts"] == 1
        assert organization.invoices.get(number="INV-2026-000002").status == "paid"
        # And the other customer keeps everything
        assert usage_rows(other) == others_before

    def test_the_subscription_records_when_the_data_was_purged(self):
        organization = customer()

        purge(days_after(MAR_20, 60))

        subscription = subscription_of(organization)
        assert subscription.data_purged_at == days_after(MAR_20, 60)
        latest = subscription.history.latest()
        assert latest.history_date == days_after(MAR_20, 60)
        assert latest.history_change_reason == ("Usage data and AI employees deleted after 60 days")

    def test_running_twice_changes_nothing_the_second_time(self):
        organization = customer()
        purge(days_after(MAR_20, 60))

        purged = purge(days_after(MAR_20, 61))

        assert purged == 0
        assert subscription_of(organization).data_purged_at == days_after(MAR_20, 60)

    def test_an_organization_that_resubscribed_within_the_window_keeps_its_data(self):
        # Given a customer that came back 30 days after it left
        organization = customer()
        before = usage_rows(organization)
        SubscriptionFactory(organization=organization, now=days_after(MAR_20, 30))

        # When the job runs long after the old subscription's retention period
        purged = purge(days_after(MAR_20, 200))

        # Then it finds its AI employees, numbers and calls where it left them
        assert purged == 0
        assert usage_rows(organization) == before

    def test_a_resubscription_made_while_the_purge_runs_keeps_the_data(self):
        # Given a customer that subscribes again just after the job found it due
        organization = customer()
        before = usage_rows(organization)
        delete = usage_services.organization_usage_data_delete

        def resubscribe_then_delete(*, organization_id):
            SubscriptionFactory(organization=organization, now=days_after(MAR_20, 60))
            return delete(organization_id=organization_id)

        with mock.patch.object(
            usage_services, "organization_usage_data_delete", resubscribe_then_delete
        ):
            purged = purge(days_after(MAR_20, 60))

        # Then nothing is deleted and the old subscription is not marked purged
        assert purged == 0
        assert usage_rows(organization) == before
        assert (
            Subscription.objects.filter(
                organization=organization, data_purged_at__isnull=False
            ).count()
            == 0
        )

    def test_an_organization_that_left_twice_is_purged_60_days_after_the_last_end(self):
        # Given a customer that left, came back 10 days later, and left again 10 days after
        organization = customer()
        first = subscription_of(organization)
        second = SubscriptionFactory(organization=organization, now=days_after(MAR_20, 10))
        cancel(second, at=days_after(MAR_20, 20))

        # Then 60 days after the first end nothing goes, 60 days after the second all does
        assert purge(days_after(MAR_20, 60)) == 0
        assert Call.objects.filter(organization=organization).exists()
        assert purge(days_after(MAR_20, 80)) == 1
        assert not Call.objects.filter(organization=organization).exists()
        first.refresh_from_db()
        second.refresh_from_db()
        assert first.data_purged_at == second.data_purged_at == days_after(MAR_20, 80)

    def test_the_retention_period_is_a_setting(self, settings):
        settings.DATA_RETENTION_DAYS = 30
        organization = customer()

        assert purge(days_after(MAR_20, 29)) == 0
        assert purge(days_after(MAR_20, 30)) == 1
        assert not AIEmployee.objects.filter(organization=organization).exists()

    def test_one_organization_failing_is_logged_and_the_others_are_purged(self, caplog):
        # Given two customers that left, the first of which cannot be purged right now
        failing, purgeable = customer(), customer()
        delete = usage_services.organization_usage_data_delete

        def fail_for_the_first(*, organization_id):
            if organization_id == failing.pk:
                raise RuntimeError("database hiccup")
            return delete(organization_id=organization_id)

        with (
            mock.patch.object(usage_services, "organization_usage_data_delete", fail_for_the_first),
            caplog.at_level(logging.ERROR),
        ):
            purged = purge(days_after(MAR_20, 60))

        # Then the other is purged, the failure is logged, and the next run retries it
        assert purged == 1
        assert not Call.objects.filter(organization=purgeable).exists()
        assert Call.objects.filter(organization=failing).exists()
        assert subscription_of(failing).data_purged_at is None
        assert f"Purging the data of organization {failing.pk} failed" in caplog.text
        assert purge(days_after(MAR_20, 61)) == 1
        assert not Call.objects.filter(organization=failing).exists()

    def test_the_hourly_task_purges_as_of_now(self):
        organization = customer()

        with time_machine.travel(days_after(MAR_20, 60), tick=False):
            purged = tasks.usage_data_purge()

        assert purged == 1
        assert not AIEmployee.objects.filter(organization=organization).exists()
        schedule = Schedule.objects.get(name="Purge data after retention")
        assert (schedule.func, schedule.schedule_type) == ("billing.tasks.usage_data_purge", "H")


def test_deleting_usage_data_reports_how_many_rows_of_each_kind_went():
    organization = customer()
    calls = Call.objects.filter(organization=organization).count()

    deleted = usage_services.organization_usage_data_delete(organization_id=organization.pk)

    assert deleted == {
        "calls": calls,
        "usage_counters": 2,  # February–March, March–April
        "usage_reports": 1,
        "phone_numbers": 6,
        "ai_employees": 1,
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_purging_at_once_purge_each_organization_once():
    organizations = []
    for _ in range(6):
        subscription = SubscriptionFactory(plan=PlanFactory(), now=MAR_20)
        record_call(
            employee=EmployeeFactory(organization=subscription.organization),
            seconds=60,
            connected_at=MAR_20,
        )
        cancel(subscription, at=days_after(MAR_20, 1))
        organizations.append(subscription.organization)
    barrier = threading.Barrier(2)

    def work(_):
        try:
            barrier.wait(timeout=10)
            return purge(days_after(MAR_20, 61))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        purged = list(pool.map(work, range(2)))

    assert sum(purged) == 6
    for organization in organizations:
        assert not any(usage_rows(organization).values())
        assert subscription_of(organization).data_purged_at == days_after(MAR_20, 61)
