"""With the Content-Security-Policy on, Chromium refuses nothing on the billing pages, the
sign-in and two-factor pages, or the support admin."""

import datetime as dt

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from billing.models import Subscription
from tests.factories import (
    PASSWORD,
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    card,
    record_call,
    renewed_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme():
    """Acme Dental with an invoice of every kind of line, a card, an AI employee with calls,
    and Alice, its administrator."""
    organization = OrganizationFactory(name="Acme Dental", slug="acme-dental")
    invoice = renewed_invoice(organization=organization)
    card(organization)
    employee = EmployeeFactory(organization=organization, name="Ava")
    record_call(employee=employee, seconds=120, connected_at=dt.datetime.now(dt.UTC))
    MembershipFactory(
        organization=organization, user=UserFactory(username="alice", first_name="Alice")
    )
    return invoice


def current_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def sign_in(page, username):
    page.goto("/billing/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_no_violation_on_the_billing_pages(page, csp_violations, screenshot, acme):
    sign_in(page, "alice")
    expect(page.get_by_role("region", name="Subscription summary")).to_be_visible()
    slug = acme.organization.slug

    for path in (
        f"/billing/{slug}/",
        f"/billing/{slug}/plans/",
        f"/billing/{slug}/invoices/",
        f"/billing/{slug}/invoices/{acme.number}/",
        f"/billing/{slug}/usage/",
        f"/billing/{slug}/employees/",
        f"/billing/{slug}/phone-numbers/",
        f"/billing/{slug}/payment-methods/",
        f"/billing/{slug}/cancel/",
        "/accounts/security/",
        "/accounts/two-factor/setup/",
    ):
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("load")

    expect(page.locator("svg.qr-code")).to_be_visible()
    screenshot("two-factor-setup")
    assert csp_violations == []


def test_the_usage_meters_are_drawn_without_inline_styles(page, csp_violations, acme):
    sign_in(page, "alice")

    page.goto(f"/billing/{acme.organization.slug}/employees/")  # 1 of 15 AI employees

    bar = page.locator("svg.meter rect").first
    assert float(bar.get_attribute("width")) > 0
    assert bar.bounding_box()["width"] > 0
    assert csp_violations == []


def test_no_violation_in_the_admin_after_the_second_factor(page, csp_violations, screenshot, acme):
    support = UserFactory(username="support", is_staff=True, is_superuser=True)
    device = TOTPDevice.objects.create(user=support, name="Authenticator app", confirmed=True)
    page.goto("/admin/")
    page.get_by_label("Username").fill("support")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("textbox", name="Code").fill(current_code(device))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Support")).to_be_visible()
    subscription = Subscription.objects.get(organization=acme.organization)

    for path in (
        "/admin/",
        "/admin/billing/organization/",
        f"/admin/billing/organization/{acme.organization.pk}/change/",
        "/admin/billing/subscription/",
        f"/admin/billing/subscription/{subscription.pk}/change/",
        "/admin/billing/invoice/",
        f"/admin/billing/invoice/{acme.pk}/change/",
        "/admin/billing/plan/",
        "/admin/usage/call/?employee=Ava",
        "/admin/usage/servicetoken/add/",
        "/admin/axes/accessattempt/",
        "/admin/otp_totp/totpdevice/",
    ):
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("load")

    screenshot("admin-with-csp")
    assert csp_violations == []
