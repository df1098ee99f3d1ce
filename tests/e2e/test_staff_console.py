"""Finance staff in the browser: the dunning board, from it an organization's 360 page, the
revenue metrics with their definitions and the organizations behind a figure; nothing
refused by the Content-Security-Policy."""

import datetime as dt
import re

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from tests.e2e.test_content_security_policy import current_code
from tests.factories import PASSWORD, StaffFactory, SubscriptionFactory, declined_invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme():
    """Acme Dental, its first invoice declined on its only card: in dunning."""
    now = dt.datetime.now(dt.UTC)
    organization = SubscriptionFactory(
        organization__name="Acme Dental", organization__slug="acme-dental", now=now
    ).organization
    return declined_invoice(organization, now=now)


def test_finance_follows_the_dunning_board_to_the_360_page_and_reads_the_revenue(
    page, csp_violations, screenshot, acme
):
    finance = StaffFactory(username="fiona", roles=["Finance"])
    device = TOTPDevice.objects.create(user=finance, name="Authenticator app", confirmed=True)
    page.goto("/admin/")
    page.get_by_label("Username").fill("fiona")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("textbox", name="Code").fill(current_code(device))
    page.get_by_role("button", name="Verify").click()

    page.goto("/admin/payments/collection/")
    page.get_by_role("link", name="Dunning board").click()
    # Charged when it subscribed (no card yet), then on the declining card.
    expect(page.get_by_role("heading", name=re.compile(r"^Retry \d of 4"))).to_be_visible()
    expect(page.get_by_role("cell", name=acme.number)).to_be_visible()
    screenshot("dunning-board")

    page.get_by_role("link", name="Acme Dental").click()
    expect(page.locator("#status-360")).to_contain_text("Past due")
    expect(page.get_by_role("link", name="Void…")).to_be_visible()
    expect(page.get_by_role("link", name="Retry…")).to_be_visible()
    screenshot("organization-360")

    page.goto("/admin/billing/invoice/")
    page.get_by_role("link", name="Revenue metrics").click()
    expect(page.get_by_role("heading", name="USD", exact=True)).to_be_visible()
    expect(page.get_by_text("MRR (monthly recurring revenue)")).to_be_visible()
    expect(page.get_by_role("heading", name="USD: the last 12 months")).to_be_visible()
    screenshot("revenue-metrics")

    page.get_by_role("link", name="Dunning recovery rate").click()
    row = page.get_by_role("row", name=re.compile("Acme Dental"))
    expect(row).to_contain_text(str(acme.total))
    screenshot("revenue-dunning-recovery-organizations")
    row.get_by_role("link", name="Acme Dental").click()
    expect(page.locator("#status-360")).to_contain_text("Past due")

    page.goto("/admin/billing/invoice/revenue/organizations/?figure=profit")
    expect(page.locator(".errornote")).to_have_text(
        "Figure: profit is not a figure of the revenue page."
    )
    screenshot("revenue-organizations-wrong-figure")
    assert csp_violations == []
