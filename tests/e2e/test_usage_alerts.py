"""In the browser: an administrator sets a custom threshold, usage crosses it, and the bell
shows the alert; at desktop width and on a phone (390 px)."""

import datetime as dt

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

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def acme():
    """Acme Dental on Professional (3,000 minutes a month) since ten days ago, 500 used."""
    now = dt.datetime.now(dt.UTC)
    organization = OrganizationFactory(name="Acme Dental", slug="acme-dental")
    SubscriptionFactory(organization=organization, start=now - dt.timedelta(days=10), now=now)
    alice = UserFactory(username="alice", first_name="Alice")
    MembershipFactory(organization=organization, user=alice)
    employee = EmployeeFactory(organization=organization, name="Ava")
    record_call(employee=employee, seconds=30_000, connected_at=now - dt.timedelta(days=2))
    # The notices of subscribing (the first invoice and its payment) were read
    notifications_mark_read(organization=organization, user=alice)
    return employee


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_a_custom_threshold_crossed_rings_the_bell(page, screenshot, acme, viewport):
    if viewport:
        page.set_viewport_size(viewport)
    name = "phone" if viewport else "desktop"
    sign_in(page, "alice")

    # The administrator adds an alert at 1,000 minutes of call time
    page.goto("/billing/acme-dental/usage/alerts/")
    page.get_by_label("Resource").select_option("call_seconds")
    page.get_by_label("Alert at").select_option("absolute")
    page.get_by_label("Value").fill("1000")
    page.get_by_role("button", name="Add threshold").click()
    expect(page.get_by_text("The threshold is added")).to_be_visible()
    call_time = page.locator('[data-metric="call_seconds"]')
    expect(call_time.get_by_role("rowheader", name="1,000 minutes")).to_be_visible()
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    screenshot(f"usage-alerts-threshold-{name}")

    # Usage crosses it: a long call is reported
    now = dt.datetime.now(dt.UTC)
    record_call(employee=acme, seconds=40_000, connected_at=now - dt.timedelta(hours=12))

    # The bell shows it on the next page, and the notice says what happened
    page.goto("/billing/acme-dental/")
    bell = page.get_by_role("link", name="Notifications: 1 unread")
    expect(bell).to_be_visible()
    screenshot(f"usage-alerts-bell-{name}")
    bell.click()
    notice = page.locator(".notice-item").first
    expect(notice).to_contain_text("Call time: 38% of your allowance used")
    expect(notice).to_contain_text("This crosses your alert threshold at 1,000 minutes.")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    screenshot(f"usage-alerts-notice-{name}")

    page.get_by_role("button", name="Mark read").click()
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()

    # Where notices go fits the screen too
    page.goto("/billing/acme-dental/notifications/settings/")
    expect(page.get_by_role("heading", name="What you receive")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    screenshot(f"notification-settings-{name}")
