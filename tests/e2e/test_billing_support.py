"""An administrator disputes two calls from a call overage line; billing support approves one
of them in the admin; the administrator sees the credit note and the answer."""

import re

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from billing.models import BillingRequest
from tests.billing.support_helpers import overage_month
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def month():
    """Acme Dental's invoice charging 150 s of call overage, from four calls; Alice is its
    administrator."""
    month = overage_month(organization=OrganizationFactory(name="Acme Dental", slug="acme-dental"))
    MembershipFactory(
        organization=month.organization, user=UserFactory(username="alice", first_name="Alice")
    )
    return month


def current_code(device: TOTPDevice) -> str:
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_two_calls_disputed_one_approved_and_the_customer_sees_the_credit_note(
    browser, live_server, page, screenshot, month
):
    invoice = month.invoice
    # Alice opens the invoice, drills down to the calls and disputes the two short ones
    page.goto("/billing/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/billing/acme-dental/invoices/{invoice.number}/")
    expect(page.get_by_role("link", name="Question this charge").first).to_be_visible()
    page.get_by_role("link", name="See the calls").click()
    expect(page.get_by_role("heading", name="4 calls")).to_be_visible()
    page.get_by_label("acme-dental-call-3").check()
    page.get_by_label("acme-dental-call-4").check()
    page.get_by_label("Reason").select_option("spam")
    page.get_by_label("Your message").fill("Both were robocalls: nobody spoke.")
    screenshot("support-calls-chosen")
    page.get_by_role("button", name="Dispute chosen calls").click()

    expect(page.locator(".messages")).to_contain_text(
        "50 s of calls, $0.20, sent to billing support"
    )
    request = BillingRequest.objects.get()
    expect(page.locator(f"#request-{request.pk}")).to_contain_text("Waiting for billing support")

    # Billing support approves one of the two calls, to the balance
    support = UserFactory(username="support", is_staff=True, is_superuser=True)
    device = TOTPDevice.objects.create(user=support, name="Authenticator app", confirmed=True)
    staff = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    admin = staff.new_page()
    admin.set_default_timeout(10_000)
    admin.goto("/admin/")
    admin.get_by_label("Username").fill("support")
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.get_by_role("textbox", name="Code").fill(current_code(device))
    admin.get_by_role("button", name="Verify").click()
    admin.goto("/admin/billing/billingrequest/")
    expect(admin.locator("#result_list")).to_contain_text("$0.20")
    admin.get_by_role("link", name=request.subject).click()
    admin.get_by_role("link", name="Approve…").click()
    admin.get_by_label("Amount").fill("0.12")
    admin.get_by_label(re.compile("Credit the customer's balance")).check()
    admin.get_by_label("Reason").fill("One of the two was a robocall; the other was answered.")
    admin.get_by_role("button", name="Approve and issue the credit note").click()
    expect(admin.locator(".messagelist")).to_contain_text("Approved: credit note CN-")
    staff.close()

    # Alice sees the answer and the credit note
    page.reload()
    answer = page.locator(f"#request-{request.pk}")
    expect(answer).to_contain_text("Approved: credit note issued")
    expect(answer).to_contain_text("One of the two was a robocall; the other was answered.")
    request.refresh_from_db()
    expect(answer).to_contain_text(f"Credit note {request.credit_note.number} for $0.12")
    screenshot("support-request-approved")
    page.goto(f"/billing/acme-dental/invoices/{invoice.number}/")
    expect(page.locator("body")).to_contain_text(request.credit_note.number)
