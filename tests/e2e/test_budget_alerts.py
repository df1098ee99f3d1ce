"""In the browser: an administrator sets a team's budget, usage pushes its forecast over it,
the hourly budget job alerts, and the bell, the notices and the billing page show it; at
desktop width and on a phone (390 px)."""

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from billing.notifications.services import notifications_mark_read
from tests.e2e.test_billing_pages import sign_in
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from usage.budgets.services import budget_alerts_if_needed

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def acme():
    """Acme Dental on Professional (3,000 minutes a month, then $0.004 a second) since ten
    days ago: Ava at the front desk and Ben in the back office made 500 minutes each."""
    now = dt.datetime.now(dt.UTC)
    organization = OrganizationFactory(name="Acme Dental", slug="acme-dental")
    SubscriptionFactory(organization=organization, start=now - dt.timedelta(days=10), now=now)
    alice = UserFactory(username="alice", first_name="Alice")
    MembershipFactory(organization=organization, user=alice)
    ava = EmployeeFactory(organization=organization, name="Ava", cost_center="Front desk")
    ben = EmployeeFactory(organization=organization, name="Ben", cost_center="Back office")
    for employee in (ava, ben):
        record_call(employee=employee, seconds=30_000, connected_at=now - dt.timedelta(days=2))
    notifications_mark_read(organization=organization, user=alice)
    return ava


def fits(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_a_team_budget_forecast_over_alerts_and_shows_on_the_billing_page(
    page, screenshot, acme, viewport
):
    if viewport:
        page.set_viewport_size(viewport)
    name = "phone" if viewport else "desktop"
    sign_in(page, "alice")

    # The administrator gives the front desk a budget of $100 a month
    page.goto("/billing/acme-dental/budgets/")
    page.get_by_label("Budget of Front desk").fill("100")
    page.get_by_role("button", name="Save budgets").click()
    expect(page.get_by_text("The budgets are saved")).to_be_visible()
    changes = page.locator("table.budget-changes")
    expect(changes).to_contain_text("Front desk")
    expect(changes).to_contain_text("100.00 USD")
    expect(changes).to_contain_text("Alice")
    fits(page)
    screenshot(f"budget-alert-set-{name}")

    # Usage pushes the forecast over it: the front desk calls 130,000 s more, 10,000 s past
    # the month's allowance by day ten ($40.00 of overage so far, 160/190 of it theirs)
    for days_ago in (3, 2):
        record_call(
            employee=acme,
            seconds=65_000,
            connected_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago),
        )

    # The hourly budget job runs
    assert budget_alerts_if_needed(now=dt.datetime.now(dt.UTC)) == 1

    # The billing page shows the team over budget at this pace, and the bell rings
    page.goto("/billing/acme-dental/")
    panel = page.locator("section.budgets-panel")
    front_desk = panel.locator('[data-budget-of="cost_center:Front desk"]')
    expect(front_desk).to_contain_text("$33.68 / $100.00 (33%)")
    expect(front_desk).to_contain_text("Over budget")
    expect(panel.get_by_role("link", name="Budgets and forecast")).to_be_visible()
    bell = page.get_by_role("link", name=re.compile(r"Notifications: \d+ unread"))
    expect(bell).to_be_visible()
    fits(page)
    screenshot(f"budget-alert-overview-{name}")

    # The notice says which budget and what the forecast is
    bell.click()
    notice = page.locator(".notice-item", has_text="Budget: the forecast passes")
    expect(notice).to_contain_text("the Front desk monthly budget")
    expect(notice).to_contain_text("$33.68 of the Front desk monthly budget of $100.00 (33%)")
    fits(page)
    screenshot(f"budget-alert-notice-{name}")
