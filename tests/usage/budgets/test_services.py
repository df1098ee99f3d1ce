"""Budgets: setting one, and its alerts through the notification center, once per
threshold per usage month."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.errors import BillingError
from billing.models import Notification
from tests.factories import (
    EmployeeFactory,
    PlanFactory,
    SubscriptionFactory,
    TaxRateFactory,
    UserFactory,
    record_call,
)
from usage.budgets.selectors import budget_changes
from usage.budgets.services import budget_alerts_if_needed, budget_set, budgets_replace
from usage.models import Budget, BudgetChange

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def practice(now, budget=None):
    """$100 a month, every second of calls at $0.004; subscribed on 1 Mar."""
    subscription = SubscriptionFactory(
        plan=PlanFactory(price=Money(100, "USD"), included_call_seconds=0),
        start=MARCH,
        now=now,
    )
    organization = subscription.organization
    if budget is not None:
        budget_set(organization=organization, amount=Decimal(budget), now=now)
    return organization, EmployeeFactory(organization=organization)


def notices(organization):
    return [
        (notice.dedup_key.rsplit(":", 1)[1], notice.data["thresholds"], notice.title)
        for notice in Notification.objects.filter(
            organization=organization, kind="budget_alert"
        ).order_by("created_at", "pk")
    ]


def test_a_budget_is_set_changed_and_removed(now):
    organization, _ = practice(now)
    admin = UserFactory()

    budget_set(organization=organization, amount=Decimal("500"), actor=admin, now=now)
    budget_set(organization=organization, amount=Decimal("650.50"), actor=admin, now=now)
    assert str(Budget.objects.get()) == "Organization: $650.50 a month"

    budget_set(organization=organization, amount=None, now=now)
    assert not Budget.objects.exists()


def test_each_change_is_recorded_with_who_when_and_from_what(now):
    # Given an administrator who sets, changes, re-saves and removes budgets over two days
    organization, _ = practice(now)
    EmployeeFactory(organization=organization, cost_center="Sales")
    admin = UserFactory(username="dana")
    later = now + dt.timedelta(days=1)

    budgets_replace(
        organization=organization, amount=Decimal("500"), cost_centers={}, actor=admin, now=now
    )
    budgets_replace(
        organization=organization,
        amount=Decimal("650.50"),
        cost_centers={"Sales": Decimal("40")},
        actor=admin,
        now=later,
    )
    budgets_replace(
        organization=organization,
        amount=Decimal("650.50"),
        cost_centers={"Sales": Decimal("40")},
        actor=admin,
        now=later,
    )
    budgets_replace(organization=organization, amount=None, cost_centers={}, now=later)

    # Then every change is recorded, newest first; saving the same amounts records nothing
    assert [
        (
            change.cost_center,
            change.previous_amount,
            change.new_amount,
            change.changed_by and change.changed_by.username,
            change.changed_at,
        )
        for change in budget_changes(organization=organization)
    ] == [
        ("", Decimal("650.50"), None, None, later),
        ("Sales", Decimal("40.00"), None, None, later),
        ("Sales", None, Decimal("40.00"), "dana", later),
        ("", Decimal("500.00"), Decimal("650.50"), "dana", later),
        ("", None, Decimal("500.00"), "dana", now),
    ]
    # and a change is never rewritten nor deleted
    change = BudgetChange.objects.first()
    with pytest.raises(BillingError):
        change.save()
    with pytest.raises(BillingError):
        change.delete()


@pytest.mark.parametrize("amount", ["0", "-10"])
def test_a_budget_is_more_than_zero(now, amount):
    organization, _ = practice(now)

    with pytest.raises(BillingError) as refused:
        budget_set(organization=organization, amount=Decimal(amount), now=now)

    assert (refused.value.code, refused.value.details) == (
        "budget_invalid",
        {"field": "monthly_budget"},
    )
    assert not Budget.objects.exists()


def test_crossing_80_percent_and_the_forecast_at_once_sends_one_notice_once(now, committed):
    # Given a $200 budget and $160 spent by the 16th ($100 fee + 15,000 s): 80%, and at this
    # pace about $220 by the month's end
    organization, employee = practice(now, budget="200")
    record_call(employee=employee, seconds=15_000, connected_at=now - dt.timedelta(hours=5))

    # When the job runs, twice
    with committed():
        assert budget_alerts_if_needed(now=now) == 1
    with committed():
        assert budget_alerts_if_needed(now=now) == 0

    # Then one notice tells both, and is not repeated
    assert notices(organization) == [
        ("80", ["80", "forecast"], "Budget: 80% of your monthly budget spent"),
    ]
    notice = Notification.objects.get()
    assert notice.data["spent"] == "160.00" and notice.data["budget"] == "200.00"
    assert "You have spent $160.00 of your monthly budget of $200.00 (80%)" in notice.summary
    assert "over the budget" in notice.summary and "16 days left" in notice.summary


def test_each_threshold_alerts_once_a_month_as_it_is_crossed(now, committed):
    # Given a $178 budget: $140 spent (79%), at this pace about $180 by the end
    organization, employee = practice(now, budget="178")
    record_call(employee=employee, seconds=10_000, connected_at=now - dt.timedelta(hours=5))

    # When the job runs as spending goes on
    with committed():
        budget_alerts_if_needed(now=now)
    record_call(employee=employee, seconds=2_000, connected_at=now - dt.timedelta(hours=2))
    with committed():
        budget_alerts_if_needed(now=now)
    record_call(employee=employee, seconds=8_000, connected_at=now - dt.timedelta(hours=1))
    with committed():
        budget_alerts_if_needed(now=now)
        budget_alerts_if_needed(now=now)

    # Then the forecast alerts first, then 80%, then 100%, each once
    assert [(key, thresholds) for key, thresholds, _ in notices(organization)] == [
        ("forecast", ["forecast"]),
        ("80", ["80"]),
        ("100", ["100"]),
    ]


def test_next_month_alerts_again(now, committed):
    organization, employee = practice(now, budget="120")
    record_call(employee=employee, seconds=10_000, connected_at=now - dt.timedelta(hours=5))
    with committed():
        budget_alerts_if_needed(now=now)

    april = dt.datetime(2026, 4, 10, tzinfo=dt.UTC)
    record_call(employee=employee, seconds=10_000, connected_at=april - dt.timedelta(hours=5))
    with committed():
        budget_alerts_if_needed(now=april)

    assert [key for key, *_ in notices(organization)] == ["100", "100"]
    assert Notification.objects.values("dedup_key").distinct().count() == 2


def test_no_budget_no_alert(now, committed):
    organization, employee = practice(now)
    record_call(employee=employee, seconds=50_000, connected_at=now - dt.timedelta(hours=5))

    with committed():
        assert budget_alerts_if_needed(now=now) == 0
    assert notices(organization) == []


def test_a_cost_center_budget_alerts_on_its_share_of_the_usage_charges(now, committed):
    # Given Sales made 3/4 of the month's 15,000 s ($60 of usage, $66 with a 10% tax) and
    # has a $40 budget
    TaxRateFactory(percentage=Decimal("10"))
    organization, support = practice(now)
    sales = EmployeeFactory(organization=organization, cost_center="Sales")
    record_call(employee=sales, seconds=11_250, connected_at=now - dt.timedelta(hours=5))
    record_call(employee=support, seconds=3_750, connected_at=now - dt.timedelta(hours=4))
    budget_set(organization=organization, amount=Decimal("40"), cost_center="Sales", now=now)

    # When the job runs, then Sales is alerted at 100% ($49.50 of $40), once
    with committed():
        assert budget_alerts_if_needed(now=now) == 1
    with committed():
        assert budget_alerts_if_needed(now=now) == 0
    notice = Notification.objects.get()
    assert notice.title == "Budget: 100% of the Sales monthly budget spent"
    assert (notice.data["budget_of"], notice.data["spent"]) == ("cost_center:Sales", "49.50")


def test_a_budget_for_a_cost_center_no_employee_has_is_refused(now):
    organization, _ = practice(now)

    with pytest.raises(BillingError) as refused:
        budget_set(organization=organization, amount=Decimal("40"), cost_center="Nobody", now=now)

    assert refused.value.code == "cost_center_not_found"
    assert not Budget.objects.exists()
