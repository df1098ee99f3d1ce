import datetime as dt
import re
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from djmoney.money import Money

from billing.invoicing import pricing as pricing
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.invoicing.selectors import invoice_pdf_render
from billing.subscriptions import periods
from tests.factories import MembershipFactory, OrganizationFactory, renewed_invoice
from tests.helpers import pdf_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def invoice(now):
    return renewed_invoice()


def test_the_pdf_shows_number_customer_every_line_taxes_and_total(invoice):
    text = pdf_text(invoice_pdf_render(invoice=invoice))

    assert "INV-2026-000002" in text
    assert "Acme Dental" in text
    assert "350 Fifth Avenue" in text
    assert "Tax ID US 98-7654321" in text
    assert "AI Employees Inc." in text
    for line in invoice.lines.all():
        assert line.description in text
        assert str(line.amount) in text
    assert "Sales tax 8.875% of $196.21 $17.41" in text
    assert "Telecom regulatory fee 2.5% of $17.11 $0.43" in text
    assert "Credit from your balance ($0.00 left for later invoices) -$25.00" in text
    assert "Total $189.05" in text
    assert "Amount due $189.05" in text
    assert "Page 1 of 1" in text


def test_a_long_invoice_spans_pages_numbered_in_the_footer(now):
    invoice = renewed_invoice(extra_numbers=36)  # 42 phone numbers

    text = pdf_text(invoice_pdf_render(invoice=invoice))

    assert "Page 1 of 2" in text
    assert "Page 2 of 2" in text
    assert text.count("DESCRIPTION PERIOD QTY UNIT PRICE AMOUNT") == 2  # on each page
    assert f"Total {invoice.total}" in text


def test_the_invoice_page_and_the_pdf_render_the_same_document(client, invoice):
    admin = MembershipFactory(organization=invoice.organization).user
    client.force_login(admin)
    page = client.get(
        reverse("billing:invoice", args=[invoice.organization.slug, invoice.number])
    ).content.decode()
    pdf_html = render_to_string(
        "billing/invoice_pdf.html", invoicing_selectors.invoice_document(invoice=invoice)
    )

    def document(html):
        return re.search(r"<article class=\"invoice-doc\".*?</article>", html, re.S).group()

    assert document(page) == document(pdf_html)


def test_the_pdf_refers_to_nothing_outside_itself(invoice):
    """weasyprint renders without network access: no stylesheet, font or image to fetch."""
    html = render_to_string(
        "billing/invoice_pdf.html", invoicing_selectors.invoice_document(invoice=invoice)
    )

    assert not re.search(r"(href|src)=|url\(|@import", html)


def test_the_invoice_email_goes_to_the_billing_contacts_with_the_pdf(
    now, mailoutbox, email_invoice
):
    organization = OrganizationFactory(
        name="Acme Dental", billing_emails="ap@acme.example.com, cfo@acme.example.com"
    )
    invoice = renewed_invoice(organization=organization)
    mailoutbox.clear()

    email_invoice(invoice)

    [email] = mailoutbox
    assert email.to == ["ap@acme.example.com", "cfo@acme.example.com"]
    assert "INV-2026-000002" in email.subject
    [(filename, content, mimetype)] = email.attachments
    assert (filename, mimetype) == ("INV-2026-000002.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    assert "INV-2026-000002" in pdf_text(content)
    invoice.refresh_from_db()
    assert invoice.pdf  # kept: downloads serve the same file


def visible_text(html: str) -> str:
    """The words of a page, tags dropped and whitespace collapsed, as a reader sees them."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_an_invoice_whose_credits_exceed_its_charges_says_where_the_money_went(now, client):
    # Given an invoice of a $120.00 adjustment and a $200.00 proration credit
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    admin = MembershipFactory(organization=organization).user
    invoice = invoicing_services.invoice_issue(
        organization=organization,
        subscription=None,
        kind="plan_change",
        period=periods.Period(now, now + dt.timedelta(days=30)),
        lines=[
            pricing.LineDraft("adjustment", "Setup", Money(Decimal("120.00"), "USD")),
            pricing.LineDraft("proration", "Unused time", Money(Decimal("-200.00"), "USD")),
        ],
        now=now,
    )

    # Then the $80.00 goes to the credit balance, and the PDF and the page both say so
    client.force_login(admin)
    page = client.get(reverse("billing:invoice", args=["acme", invoice.number]))
    for text in (
        pdf_text(invoice_pdf_render(invoice=invoice)),
        visible_text(page.content.decode()),
    ):
        assert "Carried to your credit balance for your next invoices $80.00" in text
        assert "Total $0.00" in text
        assert (
            "Nothing to pay: the credits exceed the charges, so $80.00 was added to your " in text
        )
        assert "Amount due" not in text
