import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from billing.lifecycle import renewals
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from usage import services as usage_services
from usage.costs import selectors

pytestmark = pytest.mark.django_db

JANUARY = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def usd(amount):
    return Money(Decimal(amount), "USD")


def calls(employee, seconds, day):
    for n, offset in enumerate(range(0, seconds, 6 * 3600)):
        record_call(
            employee=employee,
            seconds=min(6 * 3600, seconds - offset),
            connected_at=day + dt.timedelta(minutes=n),
        )


@pytest.fixture
def acme(now):
    """Professional ($199, 180,000 s) since 1 Jan: Ava (Sales) 100,000 s in January, 200,000 s
    in February (20,000 s over: $80.00); Ben (Support) created 10 Feb, deactivated 20 Feb; a
    number since 5 Feb. Renewed on 1 Feb and 1 Mar; now 16 Mar."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    subscription = SubscriptionFactory(
        organization=organization, plan=PlanFactory(), start=JANUARY, now=JANUARY
    )
    ava = EmployeeFactory(
        organization=organization, name="Ava", cost_center="Sales", created_at=JANUARY
    )
    calls(ava, 100_000, dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    calls(ava, 200_000, dt.datetime(2026, 2, 5, tzinfo=dt.UTC))
    ben = EmployeeFactory(
        organization=organization,
        name="Ben",
        cost_center="Support",
        created_at=dt.datetime(2026, 2, 10, tzinfo=dt.UTC),
    )
    usage_services.employee_deactivate(employee=ben, now=dt.datetime(2026, 2, 20, tzinfo=dt.UTC))
    PhoneNumberRateFactory()
    usage_services.phone_number_provision(
        organization=organization,
        number="+12125550100",
        number_type="local",
        country="US",
        now=dt.datetime(2026, 2, 5, tzinfo=dt.UTC),
    )
    renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    return organization


class TestHistory:
    def test_trends_month_over_month(self, acme, now):
        history = selectors.cost_history(organization=acme, now=now)

        assert [
            (
                trend.month,
                trend.call_seconds,
                trend.call_seconds_change,
                trend.cost,
                trend.cost_change,
                trend.active_employees,
                trend.phone_numbers,
            )
            for trend in history.trends
        ] == [
            (dt.date(2026, 1, 1), 100_000, None, usd("199.00"), None, 1, 0),
            (dt.date(2026, 2, 1), 200_000, Decimal("100"), usd("279.00"), Decimal("40"), 1, 1),
            (dt.date(2026, 3, 1), 0, Decimal("-100"), None, None, 1, 1),
        ]

    def test_each_cost_center_per_month(self, acme, now):
        history = selectors.cost_history(organization=acme, now=now)

        assert [(center.name, center.costs) for center in history.cost_centers] == [
            ("Sales", [usd("199.00"), usd("279.00"), None]),
        ]

    def test_the_page_shows_the_table_and_the_charts(self, client, acme):
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))

        response = client.get(reverse("usage:costs_history", args=[acme.slug]))

        page = response.content.decode()
        assert response.status_code == 200
        assert page.count("chart chart-columns") == 2  # cost and call time
        assert "<script" not in page
        assert "+100%" in page and "+40%" in page
        assert "1 of 15" in page  # active AI employees against the quota

    def test_the_page_runs_a_constant_number_of_queries(
        self, client, acme, django_assert_max_num_queries
    ):
        for n in range(30):
            EmployeeFactory(organization=acme, name=f"Extra {n}", cost_center=f"Team {n}")
        client.force_login(UserFactory._meta.model.objects.get(username="admin"))

        # session, user, access, organizations, the bell; subscription, counters, shares,
        # employees, numbers
        with django_assert_max_num_queries(10):
            client.get(reverse("usage:costs_history", args=[acme.slug]))
