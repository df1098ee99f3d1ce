import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta
from playwright.sync_api import expect

from billing.catalog import services as catalog_services
from billing.models import Plan
from tests.e2e.test_billing_pages import sign_in
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from usage import services as usage_services

pytestmark = pytest.mark.django_db(transaction=True)

# Seconds each AI employee talks on a given day: different days, different loads.
DAILY_SECONDS = {"Ava": 2_400, "Max": 1_500, "Zoe": 900}


@pytest.fixture
def acme():
    """Acme Dental on Professional since a month and ten days ago, so the current usage month
    is about ten days old and the one before it is complete; calls on every day of both."""
    catalog_services.catalog_load()
    now = dt.datetime.now(dt.UTC)
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme-dental", timezone="America/New_York"
    )
    subscription = SubscriptionFactory(
        organization=organization,
        plan=Plan.objects.get(code="professional-monthly"),
        start=now - relativedelta(months=1, days=10),
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="alice", first_name="Alice")
    )
    employees = [
        EmployeeFactory(organization=organization, name="Ava", cost_center="Front desk"),
        EmployeeFactory(organization=organization, name="Max", cost_center="Billing"),
        EmployeeFactory(organization=organization, name="Zoe", cost_center="After hours"),
    ]
    day, last_call = subscription.anchor, now - dt.timedelta(hours=2)
    while day + dt.timedelta(hours=14) < last_call:
        for employee in employees:
            seconds = DAILY_SECONDS[employee.name] * (1 + day.day % 3) // 2
            connected_at = min(day + dt.timedelta(hours=14), last_call)
            record_call(employee=employee, seconds=seconds, connected_at=connected_at)
        day += dt.timedelta(days=1)
    PhoneNumberRateFactory()
    usage_services.phone_number_provision(
        organization=organization,
        number="+14155550100",
        number_type="local",
        country="US",
        employee=employees[0],
    )
    return organization


def test_admin_reads_usage_with_its_charts_and_looks_at_an_earlier_month(page, screenshot, acme):
    sign_in(page, "alice")

    page.get_by_role("navigation", name="Billing sections").get_by_role(
        "link", name="Usage", exact=True
    ).click()

    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    stats = page.get_by_role("region", name="Call time", exact=True)
    expect(stats).to_contain_text("Call time left")
    expect(stats).to_contain_text("min left of 3,000 included")
    expect(stats).to_contain_text("Projected at period end")
    expect(page.locator("figure.chart svg")).to_have_count(4)
    for chart in ("by-day", "by-week", "by-employee", "by-cost-center"):
        bars = page.locator(f"svg[aria-labelledby='{chart}-title'] rect.bar")
        expect(bars.first).to_be_visible()
        assert bars.first.bounding_box()["height"] > 2
    expect(page.locator("svg[aria-labelledby='by-employee-title'] rect.bar")).to_have_count(3)
    expect(page.get_by_role("row", name="Front desk")).to_be_visible()
    expect(page.locator(".allowances")).to_contain_text("3 of 15 AI employees active")
    assert screenshot("usage-dashboard").stat().st_size > 30_000

    current_total = page.locator(".stat .value").nth(1).inner_text()
    page.locator(".period-picker summary").click()
    page.get_by_role("navigation", name="Usage periods").get_by_role("link").nth(1).click()

    expect(page.get_by_text("You are looking at an earlier usage month")).to_be_visible()
    expect(page.get_by_role("region", name="Call time", exact=True)).to_contain_text("Left unused")
    assert page.locator(".stat .value").nth(1).inner_text() != current_total
    expect(page.locator("svg[aria-labelledby='by-day-title'] rect.bar").first).to_be_visible()
    screenshot("usage-dashboard-earlier-period")


def test_admin_deactivates_and_reactivates_an_employee_then_provisions_and_releases_a_number(
    page, screenshot, acme
):
    sign_in(page, "alice")

    page.get_by_role("link", name="AI employees", exact=True).click()
    expect(page.locator(".lede")).to_contain_text("3 of 15 AI employees active")
    page.get_by_role("button", name="Deactivate Ava").click()
    expect(page.locator(".messages")).to_contain_text("Ava is deactivated")
    expect(page.locator(".lede")).to_contain_text("2 of 15 AI employees active")
    screenshot("usage-employees")
    page.get_by_role("button", name="Reactivate Ava").click()
    expect(page.locator(".messages")).to_contain_text("Ava is active again.")
    expect(page.locator(".lede")).to_contain_text("3 of 15 AI employees active")

    page.get_by_role("link", name="Phone numbers", exact=True).click()
    page.get_by_label("Number", exact=True).fill("+14155550123")
    page.get_by_label("Type").select_option("local")
    page.get_by_label("Country").fill("US")
    page.get_by_label("Region").fill("CA")
    page.get_by_label("Answered by").select_option(label="Max")
    page.get_by_role("button", name="Provision number").click()
    expect(page.locator(".messages")).to_contain_text("+14155550123 is provisioned")
    new_number = page.get_by_role("row").filter(has_text="+14155550123")
    expect(new_number.get_by_role("combobox")).to_have_value(str(acme.employees.get(name="Max").pk))
    expect(new_number).to_contain_text("Cannot be reclaimed")
    screenshot("usage-phone-numbers")

    new_number.get_by_role("link", name="Release…").click()
    expect(page.get_by_text("A released number cannot be reclaimed.")).to_be_visible()
    expect(page.get_by_text("There is no refund for the partial month")).to_be_visible()
    screenshot("usage-release-confirmation")
    page.get_by_role("button", name="Release +14155550123 permanently").click()

    expect(page.locator(".messages")).to_contain_text("+14155550123 is released")
    released = page.get_by_role("row").filter(has_text="+14155550123")
    expect(released).to_contain_text("Released")
    expect(released.get_by_role("link", name="Release…")).to_have_count(0)
    screenshot("usage-phone-numbers-released")
