import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.errors import BillingError
from billing.subscriptions import services as subscription_services
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    record_call,
)
from tests.helpers import utc
from usage import selectors, services
from usage.metering import services as metering
from usage.models import Call, UsageCounter

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(now):
    """Professional-like plan, subscribed on 1 Mar 2026: usage month 1 Mar – 31 Mar."""
    return SubscriptionFactory(start=utc(2026, 3, 1), now=now)


@pytest.fixture
def employee(subscription):
    return EmployeeFactory(organization=subscription.organization)


def counter(subscription):
    return UsageCounter.objects.get(organization=subscription.organization)


class TestCallsRecord:
    def test_ten_two_minute_calls_use_1200_seconds(self, subscription, employee, now):
        for n in range(10):
            record_call(
                employee=employee, seconds=120, connected_at=now - dt.timedelta(hours=n + 1)
            )

        assert counter(subscription).call_seconds == 1_200
        assert counter(subscription).calls == 10

    def test_ten_five_minute_calls_use_3000_seconds_two_and_a_half_times_more(
        self, subscription, employee, now
    ):
        for n in range(10):
            record_call(
                employee=employee, seconds=300, connected_at=now - dt.timedelta(hours=n + 1)
            )

        assert counter(subscription).call_seconds == 3_000

    def test_both_directions_count_equally(self, subscription, employee, now):
        record_call(
            employee=employee,
            seconds=60,
            connected_at=now - dt.timedelta(hours=2),
            direction="inbound",
        )
        record_call(
            employee=employee,
            seconds=60,
            connected_at=now - dt.timedelta(hours=1),
            direction="outbound",
        )

        assert counter(subscription).call_seconds == 120

    def test_a_started_second_is_billed_as_a_whole_second(self, subscription, employee, now):
        connected = now - dt.timedelta(minutes=5)
        report = metering.CallReport(
            "c-1",
            subscription.organization.slug,
            employee.pk,
            "inbound",
            connected,
            connected + dt.timedelta(seconds=61, milliseconds=200),
        )

        metering.calls_record(reports=[report], now=now)

        assert Call.objects.get().billable_seconds == 62

    def test_a_repeated_report_changes_nothing_and_says_so(self, subscription, employee, now):
        first = record_call(
            employee=employee, seconds=90, connected_at=now - dt.timedelta(hours=1), call_id="abc"
        )
        again = record_call(
            employee=employee, seconds=90, connected_at=now - dt.timedelta(hours=1), call_id="abc"
        )

        assert (first.recorded, first.duplicates) == (["abc"], [])
        assert (again.recorded, again.duplicates) == ([], ["abc"])
        assert Call.objects.count() == 1
        assert counter(subscription).call_seconds == 90

    def test_calls_count_in_the_usage_month_they_connected_in(self, subscription, employee):
        # Connected in the last second of March, ended in April: a March call.
        record_call(employee=employee, seconds=100, connected_at=utc(2026, 3, 31, 23, 59, 59))
        record_call(employee=employee, seconds=30, connected_at=utc(2026, 4, 1))

        assert list(
            UsageCounter.objects.order_by("period_start").values_list(
                "period_start", "call_seconds"
            )
        ) == [
            (utc(2026, 3, 1), 100),
            (utc(2026, 4, 1), 30),
        ]

    def test_allowances_reset_each_usage_month_and_do_not_roll_over(self, employee, subscription):
        record_call(employee=employee, seconds=500, connected_at=utc(2026, 3, 5))
        april = utc(2026, 4, 2)

        record_call(employee=employee, seconds=40, connected_at=april)

        march_counter, april_counter = UsageCounter.objects.order_by("period_start")
        assert (march_counter.call_seconds, april_counter.call_seconds) == (500, 40)
        assert april_counter.period_end == utc(2026, 5, 1)

    def test_a_bad_call_in_a_batch_rejects_the_whole_batch_and_writes_nothing(
        self, subscription, employee, now
    ):
        connected = now - dt.timedelta(hours=1)
        good = metering.CallReport(
            "ok-1",
            subscription.organization.slug,
            employee.pk,
            "inbound",
            connected,
            connected + dt.timedelta(seconds=30),
        )
        bad = metering.CallReport(
            "bad-1",
            subscription.organization.slug,
            employee.pk,
            "inbound",
            connected,
            connected - dt.timedelta(seconds=30),
        )

        with pytest.raises(metering.ReportRejected) as rejected:
            metering.calls_record(reports=[good, bad], now=now)

        assert [(p.index, p.field, p.code) for p in rejected.value.problems] == [
            (1, "ended_at", "before_connect")
        ]
        assert Call.objects.count() == 0
        assert UsageCounter.objects.count() == 0

    @pytest.mark.parametrize(
        ("change", "field", "code"),
        [
            ({"employee_id": 999_999}, "employee_id", "unknown_employee"),
            ({"direction": "sideways"}, "direction", "invalid"),
            ({"organization": "nobody"}, "organization", "no_subscription"),
            ({"call_id": ""}, "call_id", "invalid"),
            ({"ended_at": utc(2026, 3, 16, 9) + dt.timedelta(hours=25)}, "ended_at", "too_long"),
            (
                {"connected_at": utc(2026, 3, 16, 12), "ended_at": utc(2026, 3, 16, 12, 5)},
                "ended_at",
                "in_future",
            ),
            (
                {"connected_at": utc(2026, 2, 27), "ended_at": utc(2026, 2, 27, 0, 1)},
                "connected_at",
                "before_subscription",
            ),
        ],
    )
    def test_refuses_what_cannot_be_a_real_call(
        self, subscription, employee, now, change, field, code
    ):
        values = {
            "call_id": "c-1",
            "organization": subscription.organization.slug,
            "employee_id": employee.pk,
            "direction": "inbound",
            "connected_at": utc(2026, 3, 16, 9),
            "ended_at": utc(2026, 3, 16, 9, 1),
        } | change

        with pytest.raises(metering.ReportRejected) as rejected:
            metering.calls_record(reports=[metering.CallReport(**values)], now=now)

        assert (rejected.value.problems[0].field, rejected.value.problems[0].code) == (field, code)

    def test_an_employee_of_another_organization_is_unknown(self, subscription, now):
        stranger = EmployeeFactory(organization=SubscriptionFactory(now=now).organization)
        report = metering.CallReport(
            "c-1",
            subscription.organization.slug,
            stranger.pk,
            "inbound",
            now - dt.timedelta(minutes=2),
            now - dt.timedelta(minutes=1),
        )

        with pytest.raises(metering.ReportRejected) as rejected:
            metering.calls_record(reports=[report], now=now)

        assert rejected.value.problems[0].code == "unknown_employee"

    def test_the_same_call_id_twice_in_one_batch_is_refused(self, subscription, employee, now):
        connected = now - dt.timedelta(hours=1)
        report = metering.CallReport(
            "twice",
            subscription.organization.slug,
            employee.pk,
            "inbound",
            connected,
            connected + dt.timedelta(seconds=5),
        )

        with pytest.raises(metering.ReportRejected) as rejected:
            metering.calls_record(reports=[report, report], now=now)

        assert rejected.value.problems[0].code == "repeated_in_batch"


class TestEmployees:
    def test_at_the_quota_creation_is_refused_naming_the_limit_and_the_ways_out(self, now):
        organization = SubscriptionFactory(
            plan=PlanFactory(max_active_employees=3), now=now
        ).organization
        for name in ("Ava", "Ben", "Cleo"):
            services.employee_create(organization=organization, name=name, now=now)

        with pytest.raises(BillingError) as refused:
            services.employee_create(organization=organization, name="Dan", now=now)

        assert refused.value.code == "employee_quota_reached"
        assert refused.value.details == {
            "limit": 3,
            "active": 3,
            "ways_out": ["upgrade", "deactivate"],
        }
        assert organization.employees.count() == 3

    def test_deactivating_frees_the_quota_and_keeps_the_employee(self, now):
        organization = SubscriptionFactory(
            plan=PlanFactory(max_active_employees=1), now=now
        ).organization
        ava = services.employee_create(organization=organization, name="Ava", now=now)

        services.employee_deactivate(employee=ava, now=now)
        ben = services.employee_create(organization=organization, name="Ben", now=now)

        ava.refresh_from_db()
        assert (ava.is_active, ava.deactivated_at, ava.name) == (False, now, "Ava")
        assert ben.is_active

    def test_reactivating_is_checked_like_a_creation(self, now):
        organization = SubscriptionFactory(
            plan=PlanFactory(max_active_employees=1), now=now
        ).organization
        ava = services.employee_create(organization=organization, name="Ava", now=now)
        services.employee_deactivate(employee=ava, now=now)
        services.employee_create(organization=organization, name="Ben", now=now)

        with pytest.raises(BillingError) as refused:
            services.employee_reactivate(employee=ava)

        assert refused.value.code == "employee_quota_reached"

    def test_unlimited_plans_have_no_quota(self, now):
        organization = SubscriptionFactory(
            plan=PlanFactory(max_active_employees=None), now=now
        ).organization

        for n in range(20):
            services.employee_create(organization=organization, name=f"Agent {n}", now=now)

        assert organization.employees.count() == 20

    def test_no_employees_while_suspended(self, now):
        subscription = SubscriptionFactory(now=now)
        subscription_services.subscription_set_status(
            subscription=subscription, status="past_due", reason="Declined", now=now
        )
        subscription_services.subscription_set_status(
            subscription=subscription, status="suspended", reason="Retries failed", now=now
        )

        with pytest.raises(BillingError) as refused:
            services.employee_create(organization=subscription.organization, name="Ava", now=now)

        assert refused.value.code == "subscription_suspended"


class TestPhoneNumbers:
    @pytest.fixture
    def organization(self, subscription):
        PhoneNumberRateFactory()
        PhoneNumberRateFactory(region="CA", regulatory_fee=Money(Decimal("0.75"), "USD"))
        PhoneNumberRateFactory(number_type="toll_free", monthly_price=Money(Decimal("4.00"), "USD"))
        return subscription.organization

    def test_monthly_fee_is_type_price_plus_regulatory_fee_plus_vanity_surcharge(
        self, organization, now
    ):
        plain = services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            region="NY",
            now=now,
        )
        californian = services.phone_number_provision(
            organization=organization,
            number="+14155550100",
            number_type="local",
            country="US",
            region="CA",
            now=now,
        )
        vanity = services.phone_number_provision(
            organization=organization,
            number="+18005550100",
            number_type="toll_free",
            country="US",
            vanity=True,
            now=now,
        )

        assert plain.monthly_fee == Money(Decimal("1.75"), "USD")
        assert californian.monthly_fee == Money(Decimal("2.25"), "USD")
        assert vanity.monthly_fee == Money(Decimal("9.25"), "USD")

    def test_the_plan_limit_is_enforced(self, now):
        organization = SubscriptionFactory(
            plan=PlanFactory(max_phone_numbers=1, free_phone_numbers=0), now=now
        ).organization
        PhoneNumberRateFactory()
        services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=now,
        )

        with pytest.raises(BillingError) as refused:
            services.phone_number_provision(
                organization=organization,
                number="+12125550101",
                number_type="local",
                country="US",
                now=now,
            )

        assert refused.value.code == "phone_number_limit_reached"

    def test_a_released_number_can_never_be_provisioned_again_by_that_org(self, organization, now):
        number = services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=now,
        )
        services.phone_number_release(phone_number=number, now=now)

        with pytest.raises(BillingError) as refused:
            services.phone_number_provision(
                organization=organization,
                number="+12125550100",
                number_type="local",
                country="US",
                now=now,
            )

        assert refused.value.code == "number_released"

    def test_a_number_held_by_another_org_is_unavailable(self, organization, now):
        services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=now,
        )
        other = SubscriptionFactory(now=now).organization

        with pytest.raises(BillingError) as refused:
            services.phone_number_provision(
                organization=other,
                number="+12125550100",
                number_type="local",
                country="US",
                now=now,
            )

        assert refused.value.code == "number_unavailable"

    def test_a_place_without_a_rate_is_refused(self, organization, now):
        with pytest.raises(BillingError) as refused:
            services.phone_number_provision(
                organization=organization,
                number="+33155550100",
                number_type="local",
                country="FR",
                now=now,
            )

        assert refused.value.code == "no_rate"

    def test_assigning_to_an_employee_of_another_org_is_refused(self, organization, now):
        number = services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=now,
        )

        with pytest.raises(BillingError) as refused:
            services.phone_number_assign(phone_number=number, employee=EmployeeFactory())

        assert refused.value.code == "unknown_employee"

    def test_a_number_provisioned_at_the_exact_middle_of_a_30_day_period_pays_half_its_fee(
        self, now
    ):
        # Subscribed 1 Apr: the usage month 1 Apr – 30 Apr has 30 days; its middle is 16 Apr 00:00.
        subscription = SubscriptionFactory(
            plan=PlanFactory(free_phone_numbers=0), start=utc(2026, 4, 1), now=utc(2026, 4, 1)
        )
        PhoneNumberRateFactory(
            monthly_price=Money(Decimal("3.00"), "USD"), regulatory_fee=Money(0, "USD")
        )
        number = services.phone_number_provision(
            organization=subscription.organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=utc(2026, 4, 16),
        )
        services.phone_number_release(phone_number=number, now=utc(2026, 4, 17))  # a day later

        fees = selectors.number_fees_for_period(
            organization=subscription.organization,
            plan=subscription.plan,
            period=subscription.usage_period,
        )

        [fee] = fees
        assert fee.amount == Money(Decimal("1.50"), "USD")  # no refund for the day after release
        assert fee.is_prorated
        assert fee.charged.start == utc(2026, 4, 16)

    def test_released_numbers_stop_costing_from_the_next_month(self, now):
        subscription = SubscriptionFactory(
            plan=PlanFactory(free_phone_numbers=0), start=utc(2026, 4, 1), now=utc(2026, 4, 1)
        )
        PhoneNumberRateFactory()
        number = services.phone_number_provision(
            organization=subscription.organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=utc(2026, 4, 1),
        )
        services.phone_number_release(phone_number=number, now=utc(2026, 4, 20))
        may = subscription.usage_period_at(utc(2026, 5, 2))

        april_fees = selectors.number_fees_for_period(
            organization=subscription.organization,
            plan=subscription.plan,
            period=subscription.usage_period,
        )
        may_fees = selectors.number_fees_for_period(
            organization=subscription.organization, plan=subscription.plan, period=may
        )

        assert [fee.amount for fee in april_fees] == [Money(Decimal("1.75"), "USD")]
        assert may_fees == []

    def test_the_plans_free_numbers_are_the_earliest_and_each_number_is_listed(self, now):
        subscription = SubscriptionFactory(
            plan=PlanFactory(free_phone_numbers=1), start=utc(2026, 4, 1), now=utc(2026, 4, 1)
        )
        PhoneNumberRateFactory()
        for n in range(3):
            services.phone_number_provision(
                organization=subscription.organization,
                number=f"+1212555010{n}",
                number_type="local",
                country="US",
                now=utc(2026, 4, 1),
            )

        fees = selectors.number_fees_for_period(
            organization=subscription.organization,
            plan=subscription.plan,
            period=subscription.usage_period,
        )

        assert [(fee.phone_number.number, fee.is_free, fee.amount.amount) for fee in fees] == [
            ("+12125550100", True, Decimal("0.00")),
            ("+12125550101", False, Decimal("1.75")),
            ("+12125550102", False, Decimal("1.75")),
        ]

    @pytest.mark.parametrize(
        ("employee_changes", "code"),
        [
            ({"is_active": False}, "employee_inactive"),
            ({"inbound_capable": False}, "employee_outbound_only"),
        ],
    )
    def test_only_an_active_employee_that_answers_calls_gets_a_number(
        self, organization, now, employee_changes, code
    ):
        employee = EmployeeFactory(organization=organization, **employee_changes)

        with pytest.raises(BillingError) as refused:
            services.phone_number_provision(
                organization=organization,
                number="+12125550100",
                number_type="local",
                country="US",
                employee=employee,
                now=now,
            )

        assert refused.value.code == code

    def test_provisioning_a_number_already_held_says_so(self, organization, now):
        services.phone_number_provision(
            organization=organization,
            number="+12125550100",
            number_type="local",
            country="US",
            now=now,
        )

        with pytest.raises(BillingError) as refused:
            services.phone_number_provision(
                organization=organization,
                number="+12125550100",
                number_type="local",
                country="US",
                now=now,
            )

        assert refused.value.code == "number_already_held"


class TestUsageReports:
    def test_api_calls_add_up_and_a_repeated_report_is_ignored(self, subscription, now):
        organization = subscription.organization

        assert metering.usage_report_record(
            organization=organization,
            kind="api_calls",
            report_id="r1",
            quantity=700,
            measured_at=now,
            now=now,
        )
        assert metering.usage_report_record(
            organization=organization,
            kind="api_calls",
            report_id="r2",
            quantity=300,
            measured_at=now,
            now=now,
        )
        assert not metering.usage_report_record(
            organization=organization,
            kind="api_calls",
            report_id="r2",
            quantity=300,
            measured_at=now,
            now=now,
        )

        assert counter(subscription).api_calls == 1_000

    def test_storage_keeps_the_latest_level_and_the_peak(self, subscription, now):
        organization = subscription.organization
        for report_id, quantity, hours_ago in (("a", 5_000, 3), ("b", 9_000, 2), ("c", 7_000, 1)):
            metering.usage_report_record(
                organization=organization,
                kind="storage",
                report_id=report_id,
                quantity=quantity,
                measured_at=now - dt.timedelta(hours=hours_ago),
                now=now,
            )
        # A late report measured before the latest one does not replace the level.
        metering.usage_report_record(
            organization=organization,
            kind="storage",
            report_id="late",
            quantity=1,
            measured_at=now - dt.timedelta(hours=5),
            now=now,
        )

        assert (counter(subscription).storage_bytes, counter(subscription).storage_peak_bytes) == (
            7_000,
            9_000,
        )


class TestUsageMonthsWhereMidnightIsSkipped:
    """Beirut skipped midnight on 30 Mar 2025: the day, and the subscription, began at 01:00.
    Every later month still begins at midnight, so use just after it counts in the new month."""

    def test_calls_and_storage_just_after_midnight_count_in_the_new_month(self):
        start = utc(2025, 3, 30, 7)  # 10:00 in Beirut
        organization = OrganizationFactory(timezone="Asia/Beirut")
        subscription = SubscriptionFactory(organization=organization, start=start, now=start)
        employee = EmployeeFactory(organization=organization, created_at=start)
        half_past_midnight = dt.datetime(2025, 4, 30, 0, 30, tzinfo=organization.tzinfo)
        record_call(employee=employee, seconds=60, connected_at=half_past_midnight)
        metering.usage_report_record(
            organization=organization,
            kind="storage",
            report_id="s1",
            quantity=5_000,
            measured_at=half_past_midnight,
            now=half_past_midnight,
        )

        april = subscription.usage_period_at(half_past_midnight)
        assert april.start == dt.datetime(2025, 4, 30, tzinfo=organization.tzinfo)
        counter = UsageCounter.objects.get(organization=organization)
        assert counter.period_start == april.start
        assert (counter.call_seconds, counter.storage_bytes) == (60, 5_000)
