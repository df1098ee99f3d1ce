"""Spend caps refuse calls before they start: the organization's overage spend, an AI
employee's and a cost center's call time this usage month."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from tests.factories import EmployeeFactory, PlanFactory, SubscriptionFactory, record_call
from usage import selectors
from usage.caps.services import spend_caps_replace
from usage.models import Call

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def authorize(employee, now):
    answer = selectors.call_authorize(
        organization_slug=employee.organization.slug, employee_id=employee.pk, now=now
    )
    return answer.allowed, answer.reason, answer.remaining_seconds


def team(now, *, cost_centers=("Support",), **plan):
    """A subscribed organization with one AI employee per cost center given."""
    subscription = SubscriptionFactory(plan=PlanFactory(**plan), start=MARCH, now=now)
    return [
        EmployeeFactory(organization=subscription.organization, cost_center=name)
        for name in cost_centers
    ]


def caps(organization, *, overage_spend=None, employees=None, cost_centers=None, now):
    return spend_caps_replace(
        organization=organization,
        overage_spend=overage_spend,
        employees=employees or {},
        cost_centers=cost_centers or {},
        now=now,
    )


def test_the_overage_spend_cap_refuses_calls_once_reached(now):
    # Given 600 s included, then $0.004/s, and the organization's own cap of $1.20 (300 s)
    (employee,) = team(now, included_call_seconds=600)
    caps(employee.organization, overage_spend=Decimal("1.20"), now=now)
    record_call(employee=employee, seconds=800, connected_at=now - dt.timedelta(hours=2))
    assert authorize(employee, now) == (True, "ok", 100)

    # When the calls use the last 100 s of it
    record_call(employee=employee, seconds=100, connected_at=now - dt.timedelta(hours=1))

    # Then the next call is refused, naming the organization's cap
    assert authorize(employee, now) == (False, "spend_cap_reached", 0)


def test_the_lower_of_the_plan_cap_and_the_own_cap_applies(now):
    # Given the plan caps overage at $1.20 and the organization at $0.40 (100 s)
    (employee,) = team(now, included_call_seconds=600, overage_cap=Money(Decimal("1.20"), "USD"))
    caps(employee.organization, overage_spend=Decimal("0.40"), now=now)

    # When 700 s are used, then the organization's cap refuses
    record_call(employee=employee, seconds=700, connected_at=now - dt.timedelta(hours=1))
    assert authorize(employee, now) == (False, "spend_cap_reached", 0)


def test_an_employee_cap_refuses_that_employee_only(now):
    # Given two AI employees, one capped at 10 minutes a month
    capped, free = team(now, cost_centers=("Sales", "Support"))
    caps(capped.organization, employees={capped.pk: 600}, now=now)
    record_call(employee=capped, seconds=450, connected_at=now - dt.timedelta(hours=2))
    assert authorize(capped, now) == (True, "ok", 150)

    # When the capped one reaches 600 s
    record_call(employee=capped, seconds=150, connected_at=now - dt.timedelta(hours=1))

    # Then it is refused and the other one is not
    assert authorize(capped, now) == (False, "employee_cap_reached", 0)
    assert authorize(free, now) == (True, "ok", None)


def test_a_cost_center_cap_counts_every_employee_in_it(now):
    # Given two AI employees in Sales capped together at 1,000 s, one in Support
    first, second, support = team(now, cost_centers=("Sales", "Sales", "Support"))
    caps(first.organization, cost_centers={"Sales": 1_000}, now=now)

    # When each Sales employee talks for 500 s
    record_call(employee=first, seconds=500, connected_at=now - dt.timedelta(hours=2))
    record_call(employee=second, seconds=500, connected_at=now - dt.timedelta(hours=1))

    # Then Sales is refused and Support is not
    assert authorize(first, now) == (False, "cost_center_cap_reached", 0)
    assert authorize(second, now) == (False, "cost_center_cap_reached", 0)
    assert authorize(support, now) == (True, "ok", None)


def test_remaining_seconds_are_the_nearest_limit(now):
    # Given a block plan with 1,000 s left, an employee cap with 300 s left
    (employee,) = team(now, included_call_seconds=2_000, overage_policy="block")
    caps(employee.organization, employees={employee.pk: 1_300}, now=now)
    record_call(employee=employee, seconds=1_000, connected_at=now - dt.timedelta(hours=1))

    assert authorize(employee, now) == (True, "ok", 300)


def test_last_month_does_not_count_toward_this_month_cap(now):
    # Given an employee capped at 600 s who used 600 s in February
    subscription = SubscriptionFactory(
        plan=PlanFactory(), start=dt.datetime(2026, 2, 1, tzinfo=dt.UTC), now=now
    )
    employee = EmployeeFactory(organization=subscription.organization)
    record_call(
        employee=employee, seconds=600, connected_at=dt.datetime(2026, 2, 20, tzinfo=dt.UTC)
    )
    caps(employee.organization, employees={employee.pk: 600}, now=now)

    # Then in March it may call again
    assert authorize(employee, now) == (True, "ok", 600)


def test_a_call_allowed_before_the_cap_is_recorded_in_full_past_it(now):
    # Given an employee with 100 s left under its cap
    (employee,) = team(now)
    caps(employee.organization, employees={employee.pk: 600}, now=now)
    record_call(employee=employee, seconds=500, connected_at=now - dt.timedelta(hours=2))
    assert authorize(employee, now)[0]

    # When the allowed call lasts 400 s
    record_call(employee=employee, seconds=400, connected_at=now - dt.timedelta(hours=1))

    # Then all of it is recorded, and only the next call is refused
    assert sum(Call.objects.values_list("billable_seconds", flat=True)) == 900
    assert authorize(employee, now) == (False, "employee_cap_reached", 0)


def test_raising_a_cap_applies_to_the_next_authorization(now):
    # Given an employee refused at its cap
    (employee,) = team(now)
    caps(employee.organization, employees={employee.pk: 600}, now=now)
    record_call(employee=employee, seconds=600, connected_at=now - dt.timedelta(hours=1))
    assert authorize(employee, now)[1] == "employee_cap_reached"

    # When an administrator raises it, then the next call is allowed; removed, no limit
    caps(employee.organization, employees={employee.pk: 1_200}, now=now)
    assert authorize(employee, now) == (True, "ok", 600)
    caps(employee.organization, now=now)
    assert authorize(employee, now) == (True, "ok", None)


def test_retagging_an_employee_keeps_its_calls_in_the_cost_center_they_were_made_for(now):
    # Given a Sales employee who used 800 s, then moved to Support
    (employee,) = team(now, cost_centers=("Sales",))
    record_call(employee=employee, seconds=800, connected_at=now - dt.timedelta(hours=2))
    employee.cost_center = "Support"
    employee.save()
    EmployeeFactory(organization=employee.organization, cost_center="Sales")

    # When both teams are capped at 1,000 s
    caps(employee.organization, cost_centers={"Sales": 1_000, "Support": 1_000}, now=now)

    # Then Support has all its 1,000 s left, and the employee cap counts all its calls
    assert authorize(employee, now) == (True, "ok", 1_000)
    caps(employee.organization, employees={employee.pk: 900}, now=now)
    assert authorize(employee, now) == (True, "ok", 100)


def test_caps_keep_authorization_to_one_query(now, django_assert_num_queries):
    # Given every kind of cap set
    (employee,) = team(now, included_call_seconds=600, overage_cap=Money(Decimal("5"), "USD"))
    caps(
        employee.organization,
        overage_spend=Decimal("2"),
        employees={employee.pk: 6_000},
        cost_centers={"Support": 6_000},
        now=now,
    )
    record_call(employee=employee, seconds=700, connected_at=now - dt.timedelta(hours=1))

    # Then authorizing is still one query
    with django_assert_num_queries(1):
        assert authorize(employee, now) == (True, "ok", 400)


def test_caps_count_the_new_month_before_renewal_has_opened_it(now):
    # Given an employee capped at 600 s who used it up in March, and 100 s in April already
    (employee,) = team(now)
    caps(employee.organization, employees={employee.pk: 600}, now=now)
    record_call(
        employee=employee, seconds=600, connected_at=dt.datetime(2026, 3, 20, tzinfo=dt.UTC)
    )
    record_call(
        employee=employee, seconds=100, connected_at=dt.datetime(2026, 4, 1, 0, 1, tzinfo=dt.UTC)
    )

    # When asked in April before the renewal ran, then April's use counts
    assert authorize(employee, dt.datetime(2026, 4, 1, 0, 5, tzinfo=dt.UTC)) == (True, "ok", 500)
