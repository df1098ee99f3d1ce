"""Scenarios: the last three usage months grown by a percent of calls or by more AI
employees, costed on the current plan and on every plan offered."""

import datetime as dt
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse
from djmoney.money import Money

from billing.catalog import services as catalog_services
from billing.lifecycle import renewals
from billing.models import Plan
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
    sign_in,
)
from usage.budgets.selectors import scenario_costs
from usage.plan_fit.selectors import Scenario

pytestmark = pytest.mark.django_db

MAR_16 = dt.datetime(2026, 3, 16, tzinfo=dt.UTC)


@pytest.fixture
def organization(now):
    """On Professional ($199, 180,000 s included, then $0.004/s) with one AI employee, whose
    last three usage months closed with 150,000 s of calls each."""
    catalog_services.catalog_load()
    start = MAR_16 - relativedelta(months=3)
    subscription = SubscriptionFactory(
        plan=Plan.objects.get(code="professional-monthly"), start=start, now=start
    )
    organization = subscription.organization
    employee = EmployeeFactory(organization=organization, created_at=start)
    for month in range(3):
        month_start = start + relativedelta(months=month)
        for call in range(5):
            record_call(
                employee=employee,
                seconds=30_000,
                connected_at=month_start + dt.timedelta(days=1 + call),
            )
        renewals.renew_subscriptions_if_needed(now=month_start + relativedelta(months=1))
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    return organization


def per_month(fit):
    return {cost.plan.code: cost.per_month for cost in fit.costs}


def usd(amount):
    return Money(Decimal(amount), "USD")


@pytest.mark.parametrize(
    ("seconds", "active", "scenario", "grown"),
    [
        (150_000, 1, Scenario(Decimal(50)), 225_000),
        (150_000, 1, Scenario(Decimal(-100)), 0),
        (150_000, 2, Scenario(more_employees=1), 225_000),
        (150_000, 2, Scenario(Decimal(10), more_employees=2), 330_000),
        (150_000, 0, Scenario(more_employees=3), 150_000),  # no one to take the average of
        (1, 1, Scenario(Decimal("50")), 2),  # half a second rounds up
    ],
)
def test_a_scenario_grows_each_months_call_time(seconds, active, scenario, grown):
    assert scenario.call_seconds(seconds, active) == grown


def test_without_growth_the_months_cost_what_they_did(organization):
    fit = scenario_costs(organization=organization, scenario=Scenario())

    assert fit.current.per_month == usd("199.00")
    assert per_month(fit)["professional-monthly"] == usd("199.00")


def test_calls_up_half_cost_the_overage_on_the_current_plan_and_fit_a_bigger_one(organization):
    # When calls grow by 50%: 225,000 s a month
    fit = scenario_costs(organization=organization, scenario=Scenario(Decimal(50)))

    # Then Professional costs its fee and 45,000 s of overage; Business holds it all
    assert fit.current.per_month == usd("379.00")
    costs = {cost.plan.code: cost for cost in fit.costs}
    assert costs["business-monthly"].fits and not costs["professional-monthly"].fits
    assert costs["business-monthly"].versus_current == usd("420.00")
    assert costs["starter-monthly"].refused_seconds == 3 * (225_000 - 18_000)


def test_one_more_employee_doubles_the_calls_of_the_only_one(organization):
    fit = scenario_costs(organization=organization, scenario=Scenario(more_employees=1))

    # 300,000 s: 120,000 s over at $0.004
    assert fit.current.per_month == usd("679.00")


def admin_page(client, organization, **params):
    sign_in(client, UserFactory._meta.model.objects.get(username="admin"))
    return client.get(reverse("usage:budgets", args=[organization.slug]), params)


def test_the_scenario_form_shows_each_plans_cost_a_month(client, organization):
    page = admin_page(client, organization, calls_percent="50", more_employees="")

    assert page.status_code == 200
    assert 'class="scenario-current">$379.00<' in page.text
    assert 'data-plan="business-monthly"' in page.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"calls_percent": "-150"}, "Calls grow by (%)"),
        ({"calls_percent": "lots"}, "Calls grow by (%)"),
        ({"calls_percent": "5000"}, "Calls grow by (%)"),
        ({"calls_percent": "0", "more_employees": "-1"}, "More AI employees"),
        ({"calls_percent": "0", "more_employees": "2.5"}, "More AI employees"),
    ],
)
def test_bad_scenario_input_is_refused_naming_the_field(client, organization, params, field):
    page = admin_page(client, organization, **params)

    assert page.status_code == 400
    assert f'<p class="error">{field}: ' in page.text
    assert "scenario-costs" not in page.text


def test_before_any_month_closed_there_is_nothing_to_grow(client, now):
    subscription = SubscriptionFactory(start=now - dt.timedelta(days=3), now=now)
    MembershipFactory(organization=subscription.organization, user=UserFactory(username="admin"))

    page = admin_page(client, subscription.organization, calls_percent="10")

    assert "No usage month has closed yet" in page.text
