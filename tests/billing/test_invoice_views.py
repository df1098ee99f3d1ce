import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from django.urls import reverse
from djmoney.money import Money

from billing.invoicing import pricing as pricing
from billing.invoicing import services as invoicing_services
from billing.models import Invoice, InvoiceLine
from billing.subscriptions import periods
from tests.factories import (
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    renewed_invoice,
)
from tests.helpers import pdf_text, people_of, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Rendered PDFs are stored on the invoice: keep them out of the project's var/media."""
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def acme(now):
    """Acme Dental subscribed on 16 Feb 2026 and renewed on 16 Mar 2026 (invoices 1 and 2),
    with an admin and a member; Rival Corp has its own admin and invoice; support is staff."""
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme", address_line1="350 Fifth Avenue", tax_id="US 98-7654321"
    )
    renewed_invoice(organization=organization)
    rival = OrganizationFactory(name="Rival Corp", slug="rival")
    SubscriptionFactory(organization=rival, plan=PlanFactory(), now=now)
    people_of(organization, rival=rival)
    return organization


@pytest.fixture
def renewal(acme):
    """The invoice of the renewal: fee, overage, numbers, discount, two taxes, credit."""
    return acme.invoices.get(number="INV-2026-000002")


def url_of(page, invoice):
    if page == "billing:invoices":
        return reverse(page, args=[invoice.organization.slug])
    return reverse(page, args=[invoice.organization.slug, invoice.number])


def pay(invoice, at):
    """Settle `invoice` the way a successful charge does: only its settlement fields change."""
    invoice.status = Invoice.Status.PAID
    invoice.paid_at = at
    invoice.payment_method_description = "Visa •••• 4242"
    invoice.payment_reference = "ch_3PqRsT2eZvKYlo2C"
    invoice.save(
        update_fields=["status", "paid_at", "payment_method_description", "payment_reference"]
    )


# --- access -------------------------------------------------------------------------------

PAGES = ["billing:invoices", "billing:invoice", "billing:invoice_pdf"]
ACCESS = {"member": 403, "rival_admin": 404, "admin": 200, "support": 200}


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, renewal, page):
    url = url_of(page, renewal)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(
    ("page", "username", "status"),
    [(page, username, status) for page in PAGES for username, status in ACCESS.items()],
)
def test_access_matrix(client, renewal, page, username, status):
    response = signed_in(client, username).get(url_of(page, renewal))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content
        assert b"INV-2026-000002" not in response.content


@pytest.mark.parametrize("page", PAGES[1:])
def test_members_are_told_to_ask_an_administrator(client, renewal, page):
    response = signed_in(client, "member").get(url_of(page, renewal))

    page_text = response.content.decode()
    assert response.status_code == 403
    assert "Only administrators can see this page" in page_text
    assert "mailto:admin@example.com" in page_text
    assert "$189.05" not in page_text


@pytest.mark.parametrize("page", PAGES[1:])
def test_another_organizations_invoice_number_is_404(client, acme, page):
    # Given Rival's invoice, when Acme's admin asks for it under Acme's address
    rivals = Invoice.objects.get(organization__slug="rival")
    url = reverse(page, args=[acme.slug, rivals.number])

    response = signed_in(client, "admin").get(url)

    # Then it does not exist for them
    assert response.status_code == 404
    assert b"Rival" not in response.content


# --- the list -----------------------------------------------------------------------------


def test_list_shows_invoices_newest_first_with_period_total_and_status(client, acme):
    response = signed_in(client, "admin").get(reverse("billing:invoices", args=[acme.slug]))

    rows = response.context["rows"]
    assert [row.invoice.number for row in rows] == ["INV-2026-000002", "INV-2026-000001"]
    assert [row.period_label for row in rows] == ["16 Mar – 15 Apr 2026", "16 Feb – 15 Mar 2026"]
    page = response.content.decode()
    assert page.index("INV-2026-000002") < page.index("INV-2026-000001")
    assert "$189.05" in page  # the renewal, after discount, taxes and credit
    assert "$199.00" in page  # the first month
    assert "Open" in page
    assert reverse("billing:invoice", args=[acme.slug, "INV-2026-000002"]) in page
    assert reverse("billing:invoice_pdf", args=[acme.slug, "INV-2026-000001"]) in page


def test_list_shows_the_credit_balance_left_for_the_next_invoices(client, acme, now):
    # Given the welcome credit was spent on the renewal, and support granted goodwill since
    invoicing_services.balance_credit_grant(
        organization=acme,
        kind="goodwill",
        amount=Money(Decimal("25.00"), "USD"),
        description="Sorry for the outage",
        now=now,
    )

    page = signed_in(client, "admin").get(reverse("billing:invoices", args=[acme.slug]))

    assert "Credit balance: $25.00</strong>, applied to your next invoices" in page.content.decode()


def test_invoices_are_reached_from_the_navigation_and_the_overview(client, acme):
    overview = signed_in(client, "admin").get(reverse("billing:overview", args=[acme.slug]))

    # the tab, and the overview's latest invoices
    url = reverse("billing:invoices", args=[acme.slug])
    assert overview.content.decode().count(f'href="{url}"') == 2


def test_list_runs_a_constant_number_of_queries(client, acme, now, django_assert_max_num_queries):
    # Given 30 more invoices
    for month in range(30):
        start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=31 * month)
        invoicing_services.invoice_issue(
            organization=acme,
            subscription=None,
            kind=Invoice.Kind.SUBSCRIPTION,
            period=periods.Period(start, start + dt.timedelta(days=31)),
            lines=[pricing.LineDraft(InvoiceLine.Kind.ADDON, "Premium support", Money(49, "USD"))],
            now=now,
        )
    client = signed_in(client, "admin")

    with django_assert_max_num_queries(8):
        response = client.get(reverse("billing:invoices", args=[acme.slug]))

    assert len(response.context["rows"]) == 32


# --- the invoice page ---------------------------------------------------------------------


def test_invoice_page_shows_the_document_lines_taxes_credits_and_totals(client, renewal):
    response = signed_in(client, "admin").get(url_of("billing:invoice", renewal))

    page = response.content.decode()
    for line in renewal.lines.all():
        assert line.description in page
    assert "Acme Dental" in page
    assert "350 Fifth Avenue" in page
    assert "Tax ID US 98-7654321" in page
    assert "AI Employees Inc." in page  # the seller
    assert "$0.004" in page  # the overage rate, not rounded to $0.00
    assert "Subtotal after discount" in page
    assert "$196.21" in page
    assert "Sales tax 8.875% of $196.21" in page
    assert "$17.41" in page
    assert "Telecom regulatory fee 2.5% of $17.11" in page
    assert "-$25.00" in page  # the credit
    assert "Amount due $189.05" in page
    assert "Paid" not in page


def test_invoice_page_shows_payment_method_date_and_confirmation_once_paid(client, renewal, now):
    pay(renewal, at=now + dt.timedelta(days=2))

    page = signed_in(client, "admin").get(url_of("billing:invoice", renewal)).content.decode()

    assert "Payment date" in page
    assert "18 Mar 2026" in page
    assert "Visa •••• 4242" in page
    assert "Confirmation number" in page
    assert "ch_3PqRsT2eZvKYlo2C" in page
    assert "Amount due" not in page


def test_a_void_invoice_is_stamped_with_its_reason(client, renewal):
    invoicing_services.invoice_void(invoice=renewal, reason="Billed twice by mistake")

    page = signed_in(client, "admin").get(url_of("billing:invoice", renewal)).content.decode()

    assert ">VOID<" in page
    assert "Billed twice by mistake" in page
    assert "Amount due" not in page


def test_credit_notes_issued_against_the_invoice_are_listed(client, renewal):
    credit_note = invoicing_services.credit_note_issue(
        invoice=renewal, amount=Money(Decimal("10.00"), "USD"), reason="Outage on 20 Mar"
    )

    page = signed_in(client, "admin").get(url_of("billing:invoice", renewal)).content.decode()

    assert credit_note.number in page
    assert "Outage on 20 Mar" in page
    assert "$10.00" in page


# --- the PDF ------------------------------------------------------------------------------


def test_pdf_download_is_a_pdf_attachment_named_after_the_invoice(client, renewal):
    response = signed_in(client, "admin").get(url_of("billing:invoice_pdf", renewal))

    assert response.content.startswith(b"%PDF")
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="INV-2026-000002.pdf"'


def test_pdf_is_rendered_once_and_then_served_from_the_invoice(client, renewal):
    client = signed_in(client, "admin")
    first = client.get(url_of("billing:invoice_pdf", renewal))
    renewal.refresh_from_db()
    assert re.fullmatch(r"invoices/INV-2026-000002-[0-9a-f]{16}\.pdf", renewal.pdf.name)

    with mock.patch("weasyprint.HTML") as weasyprint_html:
        second = client.get(url_of("billing:invoice_pdf", renewal))

    weasyprint_html.assert_not_called()
    assert second.content == first.content


def downloaded_pdf_text(client, invoice):
    return pdf_text(client.get(url_of("billing:invoice_pdf", invoice)).content)


def test_a_stored_pdf_is_rendered_again_once_the_invoice_is_paid(client, renewal, now):
    client = signed_in(client, "admin")
    assert "Amount due" in downloaded_pdf_text(client, renewal)
    renewal.refresh_from_db()
    unpaid_file = renewal.pdf.path

    invoicing_services.invoice_mark_paid(
        invoice=renewal, paid_at=now, reference="ch_123", method_description="Visa •••• 4242"
    )
    text = downloaded_pdf_text(client, renewal)

    assert "Amount due" not in text
    assert "Paid · thank you." in text
    assert "Confirmation number ch_123" in text
    renewal.refresh_from_db()
    assert renewal.pdf.path != unpaid_file
    assert not Path(unpaid_file).exists()


def test_a_stored_pdf_is_rendered_again_once_a_credit_note_is_issued(client, renewal):
    client = signed_in(client, "admin")
    assert "Outage on 20 Mar" not in downloaded_pdf_text(client, renewal)

    credit_note = invoicing_services.credit_note_issue(
        invoice=renewal, amount=Money(Decimal("10.00"), "USD"), reason="Outage on 20 Mar"
    )
    text = downloaded_pdf_text(client, renewal)

    assert credit_note.number in text
    assert "Outage on 20 Mar" in text


def test_a_stored_pdf_of_an_open_invoice_shows_bank_details_once_the_customer_pays_by_invoice(
    client, acme, renewal
):
    client = signed_in(client, "admin")
    assert renewal.status == Invoice.Status.OPEN
    assert "Pay by bank transfer" not in downloaded_pdf_text(client, renewal)

    acme.payment_terms = "invoice"
    acme.save(update_fields=["payment_terms"])
    text = downloaded_pdf_text(client, renewal)

    assert "Pay by bank transfer" in text
    assert "Payment reference INV-2026-000002" in text
