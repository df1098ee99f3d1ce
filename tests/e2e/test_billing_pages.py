import pytest
from playwright.sync_api import expect

from billing.catalog import services as catalog_services
from billing.models import Membership, Plan
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
    card,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme():
    catalog_services.catalog_load()
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme-dental", timezone="America/New_York"
    )
    card(organization)  # the first invoice is charged to it as soon as it is issued
    SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="professional-monthly")
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="alice", first_name="Alice")
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="bob"), role=Membership.Role.MEMBER
    )
    return organization


def sign_in(page, username):
    page.goto("/billing/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_admin_signs_in_sees_the_summary_and_compares_plans(page, screenshot, acme):
    sign_in(page, "alice")

    summary = page.get_by_role("region", name="Subscription summary")
    expect(summary).to_contain_text("Professional")
    expect(summary).to_contain_text("Active")
    expect(summary).to_contain_text("Next renewal")
    expect(summary).to_contain_text("$199.00")
    assert screenshot("billing-overview").stat().st_size > 10_000

    page.get_by_role("link", name="Plans", exact=True).click()
    table = page.locator("table.compare")
    expect(table).to_contain_text("Starter")
    expect(table).to_contain_text("Business")
    expect(page.locator("th.current")).to_contain_text("Professional")
    expect(page.locator("th.current")).to_contain_text("Current plan")
    screenshot("plans-monthly")

    page.get_by_role("link", name="Annual").click()
    expect(table).to_contain_text("Save $88.20 a year (15%)")
    screenshot("plans-annual")


def test_member_sees_plan_and_status_and_whom_to_ask(page, screenshot, acme):
    sign_in(page, "bob")

    expect(page.get_by_role("region", name="Subscription summary")).to_contain_text("Professional")
    expect(page.get_by_text("ask", exact=False).first).to_be_visible()
    expect(page.get_by_role("link", name="Alice")).to_have_attribute(
        "href", "mailto:alice@example.com"
    )
    expect(page.get_by_role("link", name="Plans", exact=True)).to_have_count(0)
    screenshot("billing-overview-member")
