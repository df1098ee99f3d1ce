import datetime as dt
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS
from tests.factories import (
    PASSWORD,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    renewed_invoice,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def renewal():
    """Acme Dental (New York) subscribed on 16 Feb 2026 and renewed on 16 Mar 2026; Alice is
    its administrator."""
    organization = OrganizationFactory(
        name="Acme Dental",
        slug="acme-dental",
        timezone="America/New_York",
        address_line1="350 Fifth Avenue",
        city="New York",
        region="NY",
        postal_code="10118",
        tax_id="US 98-7654321",
    )
    midnight_in_new_york = dt.datetime(2026, 2, 16, 5, tzinfo=dt.UTC)
    invoice = renewed_invoice(organization=organization, start=midnight_in_new_york)
    MembershipFactory(
        organization=organization, user=UserFactory(username="alice", first_name="Alice")
    )
    return invoice


def sign_in(page, username):
    page.goto("/billing/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def first_page_as_png(pdf: Path, name: str) -> Path:
    """Poppler's picture of the PDF's first page, as the customer's viewer shows it."""
    prefix = ARTIFACTS / name
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdf, prefix],
        check=True,
    )
    return prefix.with_suffix(".png")


def test_admin_opens_the_invoice_list_an_invoice_and_downloads_its_pdf(page, screenshot, renewal):
    sign_in(page, "alice")

    page.get_by_role("navigation", name="Billing sections").get_by_role(
        "link", name="Invoices"
    ).click()
    rows = page.locator("table.invoice-list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("INV-2026-000002")
    expect(rows.first).to_contain_text("16 Mar – 15 Apr 2026")
    expect(rows.first).to_contain_text(str(renewal.total))
    expect(rows.first).to_contain_text("Open")
    expect(rows.last).to_contain_text("INV-2026-000001")
    screenshot("invoice-list")

    page.get_by_role("link", name="View invoice INV-2026-000002").click()
    document = page.get_by_role("article", name="Invoice INV-2026-000002")
    expect(document).to_contain_text("Acme Dental")
    expect(document).to_contain_text("Call overage")
    expect(document).to_contain_text("Sales tax 8.875%")
    expect(document).to_contain_text(f"Amount due {renewal.total}")
    screenshot("invoice-detail")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == "INV-2026-000002.pdf"
    pdf = ARTIFACTS / "invoice.pdf"
    download.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert first_page_as_png(pdf, "invoice-pdf").stat().st_size > 10_000
