"""The budget and forecast page: administrators set the budget, staff look, members and
outsiders do not see it; bad input is refused naming the field."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from djmoney.money import Money

from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    TaxRateFactory,
    UserFactory,
    record_call,
    sign_in,
)
from usage.models import Budget

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization(now):
    subscription = SubscriptionFactory(
        plan=PlanFactory(price=Money(100, "USD"), included_call_seconds=0),
        start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        now=now,
    )
    organization = subscription.organization
    employee = EmployeeFactory(organization=organization)
    record_call(employee=employee, seconds=15_000, connected_at=now - dt.timedelta(hours=5))
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(organization=organization, user=UserFactory(username="member"), role="member")
    return organization


def url(organization):
    return reverse("usage:budgets", args=[organization.slug])


def posted(**values):
    """What the page posts: the organization's budget, and its one cost center's."""
    return {"monthly_budget": "", "cost_center_0": "", "cost_center_0_name": "Support"} | values


def user(username):
    return UserFactory._meta.model.objects.get(username=username)


def test_an_administrator_sets_a_budget_and_sees_spend_forecast_and_days_left(client, organization):
    # Given $100 of fee and $60 of overage so far, and a 10% tax on both
    TaxRateFactory(percentage=Decimal("10"))
    sign_in(client, user("admin"))

    response = client.post(url(organization), posted(monthly_budget="200"))

    # Then the spend is what the month costs once invoiced, taxes in
    assert response.status_code == 302
    page = client.get(url(organization)).text
    assert "The budgets are saved" in page
    assert "$176.00 of $200.00 (88%)" in page
    assert '<td class="fees">$110.00</td>' in page
    assert '<td class="overage">$66.00</td>' in page
    assert "less your discount, with taxes" in page
    assert "At this pace the month ends over the budget" in page
    assert "Usage month 1 Mar – 31 Mar 2026" in page
    assert "<dt>Days left</dt><dd>16</dd>" in page
    assert "likely between" in page


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "greater than or equal to 0.01"),
        ("-3", "greater than or equal to 0.01"),
        ("abc", "Enter a number"),
        ("1.001", "no more than 2 decimal places"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, organization, value, message):
    sign_in(client, user("admin"))

    response = client.post(url(organization), posted(monthly_budget=value))

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["monthly_budget"])
    assert "Monthly budget: " in response.text
    assert not Budget.objects.exists()


def test_an_empty_budget_removes_it(client, organization):
    sign_in(client, user("admin"))
    client.post(url(organization), posted(monthly_budget="200", cost_center_0="50"))

    client.post(url(organization), posted())

    assert not Budget.objects.exists()


@pytest.mark.parametrize(
    ("username", "status"), [("member", 403), ("rival", 404), ("support", 200), ("admin", 200)]
)
def test_who_sees_the_budget_page(client, organization, username, status):
    MembershipFactory(user=UserFactory(username="rival"))
    StaffFactory(username="support")
    sign_in(client, user(username))

    response = client.get(url(organization))

    assert response.status_code == status
    if status == 200:
        assert ("Save budgets" in response.text) == (username == "admin")


def test_support_staff_cannot_set_a_budget(client, organization):
    StaffFactory(username="support")
    sign_in(client, user("support"))

    response = client.post(url(organization), posted(monthly_budget="200"))

    assert response.status_code == 403
    assert not Budget.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, organization):
    assert "/accounts/login/" in client.get(url(organization))["Location"]


def test_a_cost_center_budget_shows_its_share_of_the_usage_charges(client, organization):
    # Given Support made every call of the month: $60 of the $160 is usage
    sign_in(client, user("admin"))

    response = client.post(url(organization), posted(cost_center_0="50"))

    assert response.status_code == 302
    assert str(Budget.objects.get()) == "Support: $50.00 a month"
    page = client.get(url(organization)).text
    assert "$60.00 (120%)" in page


def test_a_cost_center_that_no_longer_exists_is_refused(client, organization):
    sign_in(client, user("admin"))

    response = client.post(url(organization), posted(cost_center_0="50", cost_center_0_name="Gone"))

    assert response.status_code == 400
    assert "cost center &#x27;Gone&#x27;" in response.text
    assert not Budget.objects.exists()


def test_the_page_lists_who_changed_the_budgets_and_when(client, organization, now):
    # Given the administrator set a $200 budget, then raised it to $250
    admin = user("admin")
    admin.first_name, admin.last_name = "Dana", "Reyes"
    admin.save()
    sign_in(client, admin)
    client.post(url(organization), posted(monthly_budget="200"))
    client.post(url(organization), posted(monthly_budget="250"))

    # When anyone who may read the page opens it
    page = client.get(url(organization)).text

    # Then both changes are listed, newest first, with who and when
    history = page[page.index('class="data reflow budget-changes"') :]
    raised = history.index("200.00 USD</td>")
    assert history.index("no budget</td>") > raised
    assert history.count("Dana Reyes") == 2
    assert f"{now:%-d %b %Y, %H:%M}" in history
