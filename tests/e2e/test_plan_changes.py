import datetime as dt

import pytest
from playwright.sync_api import expect

from billing.catalog import services as catalog_services
from billing.lifecycle import services as lifecycle_services
from billing.models import Plan, Subscription
from billing.subscriptions import services as subscription_services
from tests.e2e.test_billing_pages import sign_in
from tests.factories import EmployeeFactory, MembershipFactory, OrganizationFactory, UserFactory
from usage.models import AIEmployee

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme():
    """Acme Dental on Starter since fifteen days ago, with two AI employees."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(
        name="Acme Dental",
        slug="acme-dental",
        timezone="America/New_York",
        billing_emails="ap@acme-dental.example.com",
    )
    subscription_services.subscription_create(
        organization=organization,
        plan=Plan.objects.get(code="starter-monthly"),
        start=dt.datetime.now(dt.UTC) - dt.timedelta(days=15),
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="alice", first_name="Alice")
    )
    for name in ("Ava", "Max"):
        EmployeeFactory(organization=organization, name=name)
    return organization


def test_admin_upgrades_from_the_plans_page_then_cancels_and_sees_the_end_date(
    page, screenshot, acme
):
    sign_in(page, "alice")

    # The admin compares plans and upgrades to Professional
    page.get_by_role("link", name="Plans", exact=True).click()
    expect(page.locator("th.current")).not_to_contain_text("Upgrade")
    screenshot("plan-change-plans")
    page.get_by_role("link", name="Upgrade to Professional (Monthly)").click()

    expect(page.get_by_role("heading", name="Upgrade to Professional (Monthly)")).to_be_visible()
    proration = page.locator("table.proration")
    expect(proration).to_contain_text("Unused time on Starter (monthly)")
    expect(proration).to_contain_text("Remaining time on Professional (monthly)")
    expect(proration).to_contain_text("Net")
    expect(page.get_by_text("your billing date stays")).to_be_visible()
    expect(page.locator("table.plan-allowances")).to_contain_text("180,000 s (3,000 min)")
    screenshot("plan-change-preview")

    page.get_by_role("button", name="Confirm the upgrade").click()

    expect(page.locator(".messages")).to_contain_text("You are now on Professional")
    summary = page.get_by_role("region", name="Subscription summary")
    expect(summary.locator(".plan-name")).to_have_text("Professional")
    expect(summary).to_contain_text("$199.00")
    screenshot("plan-change-after-upgrade")
    page.get_by_role("navigation", name="Billing sections").get_by_role(
        "link", name="Usage", exact=True
    ).click()
    expect(page.locator(".allowances")).to_contain_text("2 of 15 AI employees active")
    page.get_by_role("link", name="Overview", exact=True).click()

    # Then cancels, with a reason
    page.get_by_role("link", name="Cancel subscription").click()
    expect(
        page.get_by_role("heading", name="Cancel your Professional subscription?")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Download all your data")).to_be_visible()
    page.get_by_label("Too expensive").check()
    page.get_by_label("Anything you would like to add? (optional)").fill("Budget cut this year")
    screenshot("cancellation-form")
    page.get_by_role("button", name="Cancel my subscription").click()

    subscription = Subscription.objects.get(organization=acme)
    last_day = subscription.billing_period.last_day(subscription.tzinfo)
    ends_on = f"{last_day.day} {last_day:%b %Y}"
    expect(page.locator(".messages")).to_contain_text(
        f"Your subscription is canceled and ends on {ends_on}. "
        "A confirmation was e-mailed to ap@acme-dental.example.com."
    )
    expect(page.get_by_label("Cancellation")).to_contain_text(
        f"Your subscription ends on {ends_on}."
    )
    expect(page.get_by_role("button", name="Keep my subscription")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel subscription")).to_have_count(0)
    assert subscription.cancel_reason == "Too expensive: Budget cut this year"
    screenshot("after-cancellation")


def test_admin_downgrades_choosing_who_goes_then_keeps_the_current_plan(page, screenshot, acme):
    # Given Professional with five AI employees (Starter allows three)
    subscription = Subscription.objects.get(organization=acme)
    lifecycle_services.subscription_plan_change(
        subscription=subscription, plan=Plan.objects.get(code="professional-monthly")
    )
    for name in ("Cy", "Dee", "Eve"):
        EmployeeFactory(organization=acme, name=name)
    sign_in(page, "alice")
    page.get_by_role("link", name="Plans", exact=True).click()
    page.get_by_role("link", name="Downgrade to Starter (Monthly)").click()
    expect(page.get_by_text("Choose at least 2.")).to_be_visible()

    # When the admin ticks one, the page says what is missing and keeps the tick
    page.get_by_label("Ava").check()
    page.get_by_role("button", name="Schedule the downgrade").click()
    expect(page.locator(".messages")).to_contain_text("Choose 1 more AI employee to deactivate")
    expect(page.get_by_label("Ava")).to_be_checked()
    screenshot("plan-change-downgrade-choices")

    # When they tick a second one, the downgrade is scheduled and the overview says so
    page.get_by_label("Max").check()
    page.get_by_role("button", name="Schedule the downgrade").click()
    panel = page.get_by_label("Scheduled plan change")
    expect(panel).to_contain_text("Your plan changes to Starter (Monthly)")
    expect(panel).to_contain_text("AI employees that will be deactivated: Ava, Max.")
    screenshot("plan-change-scheduled")

    # And the admin can keep the current plan after all
    panel.get_by_role("button", name="Keep my current plan").click()
    expect(page.locator(".messages")).to_contain_text("You keep Professional")
    expect(page.get_by_label("Scheduled plan change")).to_have_count(0)
    assert AIEmployee.objects.filter(organization=acme, is_active=True).count() == 5
