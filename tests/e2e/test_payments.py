import re

import pytest
from playwright.sync_api import expect

from billing.catalog import services as catalog_services
from billing.models import Plan
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
    declined_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def past_due_invoice():
    """Acme Dental's first invoice was charged to 4000 0000 0000 0341 and declined."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme-dental", timezone="America/New_York"
    )
    SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="professional-monthly")
    )
    MembershipFactory(
        organization=organization, user=UserFactory(username="alice", first_name="Alice")
    )
    return declined_invoice(organization)


def sign_in(page, username):
    page.goto("/billing/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_admin_adds_a_card_in_the_sandbox_makes_it_default_and_pays_a_past_due_invoice(
    page, screenshot, past_due_invoice
):
    sign_in(page, "alice")

    banner = page.locator(".payment-banner")
    expect(banner).to_contain_text(f"Payment failed for invoice {past_due_invoice.number}")
    expect(banner).to_contain_text("The card was declined by its bank.")
    expect(banner).to_contain_text("We will try again on")
    expect(banner.get_by_role("link", name="Update payment method")).to_be_visible()
    screenshot("past-due-banner")

    page.get_by_role("navigation", name="Billing sections").get_by_role(
        "link", name="Payment methods", exact=True
    ).click()
    expect(page.get_by_role("heading", name="Sandbox: no real card is charged")).to_be_visible()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry month").select_option("12")
    page.get_by_label("Expiry year").fill("2030")
    page.get_by_label("Security code (CVC)").fill("123")
    page.get_by_label("Cardholder name").fill("Alice Example")
    page.get_by_label("Postal code").fill("10118")
    page.get_by_role("button", name="Add card").click()

    expect(page.locator(".messages")).to_contain_text(
        "Visa •••• 4242 is added as a backup payment method."
    )
    expect(page.get_by_label("Card number")).to_have_value("")
    page.get_by_role("button", name="Make Visa •••• 4242 the default").click()
    expect(page.locator(".messages")).to_contain_text("Visa •••• 4242 is now the default")
    methods = page.locator("table.methods tbody tr")
    expect(methods.first).to_contain_text("Visa •••• 4242")
    expect(methods.first).to_contain_text("Default")
    expect(methods.nth(1)).to_contain_text("Visa •••• 0341")
    expect(page.locator("table.payment-history")).to_contain_text("Failed")
    screenshot("payment-methods")

    banner.get_by_role("button", name=re.compile(r"^Pay now")).click()

    expect(page).to_have_url(re.compile(rf"/invoices/{past_due_invoice.number}/$"))
    expect(page.locator(".messages")).to_contain_text(
        f"Invoice {past_due_invoice.number} is paid: $199.00 from Visa •••• 4242."
    )
    expect(page.locator(".inv-status")).to_have_text("Paid")
    expect(page.locator(".payment-banner")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"^Pay now"))).to_have_count(0)
    screenshot("invoice-paid")

    page.get_by_role("navigation", name="Billing sections").get_by_role(
        "link", name="Payment methods", exact=True
    ).click()
    history = page.locator("table.payment-history tbody tr")
    expect(history.first).to_contain_text("Succeeded")
    expect(history.first).to_contain_text("Visa •••• 4242")
