"""Invoice PDFs (weasyprint): rendering time per page, for a one-page and a multi-page invoice,
and a download of the one-page invoice once its PDF is stored. Each in wall-clock time and
in this process's CPU time (`_cpu_`: steadier on a busy machine).

The floor is weasyprint rendering a minimal one-line HTML document in the same run: what any
PDF costs before our template, fonts and tables add to it. The goal for the one-page
invoice is three times the floor. Beside it, the one-page invoice's text alone (each piece a
paragraph of its own, no table, no stylesheet): what its words cost whatever the layout.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from decimal import Decimal

from django.db import transaction
from django.test import override_settings
from django.utils.html import escape
from djmoney.money import Money

from bench.common import Report, best_median_ms, progress
from billing.invoicing import pricing as pricing
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.invoicing.selectors import invoice_pdf_render
from billing.models import Invoice, InvoiceLine, Organization, TaxRate
from billing.subscriptions import periods

MARCH = periods.Period(
    dt.datetime(2026, 3, 16, tzinfo=dt.UTC), dt.datetime(2026, 4, 16, tzinfo=dt.UTC)
)
FEBRUARY = periods.Period(dt.datetime(2026, 2, 16, tzinfo=dt.UTC), MARCH.start)
MINIMAL_HTML = "<!doctype html><title>Floor</title><p>Invoice INV-2026-000001</p>"
# A render takes tens of milliseconds: fewer calls than the page benchmarks make still give
# stable medians.
ROUNDS = {"warmup": 2, "rounds": 3, "calls": 5}


def run(report: Report) -> None:
    # weasyprint logs each step of each render at INFO: writing those would be timed too.
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    from weasyprint import HTML

    progress("issuing a one-page and a multi-page invoice")
    one_page = issue_invoice(slug="one-page", phone_numbers=5)
    multi_page = issue_invoice(slug="multi-page", phone_numbers=80)

    def floor() -> bytes:
        return HTML(string=MINIMAL_HTML).write_pdf()

    progress("timing the floor: a minimal one-line document")
    floor_ms = best_median_ms(floor, **ROUNDS)
    floor_cpu_ms = best_median_ms(floor, clock=time.process_time, **ROUNDS)
    for name, invoice in (("one_page", one_page), ("multi_page", multi_page)):
        pages = page_count(invoice)
        progress(f"timing the {name.replace('_', '-')} invoice: {pages} page(s)")

        def render(invoice: Invoice = invoice) -> bytes:
            return invoice_pdf_render(invoice=invoice)

        # The goal, for a one-page invoice: at most three times the floor.
        with_goal = name == "one_page"
        report.add(
            f"pdf_{name}_ms_per_page",
            best_median_ms(render, **ROUNDS) / pages,
            "ms",
            floor=floor_ms,
            goal=3.0 * floor_ms if with_goal else None,
        )
        report.add(
            f"pdf_{name}_cpu_ms_per_page",
            best_median_ms(render, clock=time.process_time, **ROUNDS) / pages,
            "ms",
            floor=floor_cpu_ms,
            goal=3.0 * floor_cpu_ms if with_goal else None,
        )

    progress("timing the one-page invoice's text alone")
    text_only = text_only_html(invoicing_selectors.invoice_pdf_html(invoice=one_page))

    def render_text_only() -> bytes:
        return HTML(string=text_only).write_pdf()

    report.add(
        "pdf_one_page_text_only_cpu_ms",
        best_median_ms(render_text_only, clock=time.process_time, **ROUNDS),
        "ms",
        floor=floor_cpu_ms,
    )

    # Downloads after the first serve the stored PDF while it still shows what the invoice
    # shows: its HTML is made again to know that, the PDF is not.
    progress("timing the one-page invoice's download once its PDF is stored")
    with tempfile.TemporaryDirectory() as media, override_settings(MEDIA_ROOT=media):
        invoicing_services.invoice_pdf_if_needed(invoice=one_page)

        def download() -> bytes:
            return invoicing_services.invoice_pdf_if_needed(invoice=one_page)

        report.add(
            "pdf_one_page_stored_ms",
            best_median_ms(download, **ROUNDS),
            "ms",
            floor=floor_ms,
            goal=3.0 * floor_ms,
        )
        report.add(
            "pdf_one_page_stored_cpu_ms",
            best_median_ms(download, clock=time.process_time, **ROUNDS),
            "ms",
            floor=floor_cpu_ms,
            goal=3.0 * floor_cpu_ms,
        )


def text_only_html(html: str) -> str:
    """The text of the invoice's HTML, each piece a paragraph of its own, like the floor's."""
    import tinyhtml5  # weasyprint's HTML parser

    body = tinyhtml5.parse(html, namespace_html_elements=False).find("body")
    pieces = (piece.strip() for piece in body.itertext())
    paragraphs = "".join(f"<p>{escape(piece)}</p>" for piece in pieces if piece)
    return f"<!doctype html><title>Text only</title>{paragraphs}"


def page_count(invoice: Invoice) -> int:
    return len(invoicing_selectors.invoice_pdf_layout(invoice=invoice).pages)


@transaction.atomic
def issue_invoice(*, slug: str, phone_numbers: int) -> Invoice:
    """An invoice as a renewal issues it: the month's fee, call overage, one line per phone
    number (three free), a sales tax and a regulatory fee."""
    organization = Organization.objects.create(
        name=f"Benchmark {slug}",
        slug=slug,
        billing_emails=f"billing@{slug}.example.com",
        address_line1="350 Fifth Avenue",
        city="New York",
        region="NY",
        postal_code="10118",
        country="US",
        tax_id="US 98-7654321",
    )
    TaxRate.objects.get_or_create(
        name="Sales tax",
        country="US",
        defaults={"percentage": Decimal("8.875"), "applies_to": list(InvoiceLine.CHARGES)},
    )
    TaxRate.objects.get_or_create(
        name="Telecom regulatory fee",
        country="US",
        defaults={
            "percentage": Decimal("2.5"),
            "applies_to": [InvoiceLine.Kind.PHONE_NUMBER, InvoiceLine.Kind.OVERAGE_CALLS],
        },
    )
    lines = [
        pricing.LineDraft(
            InvoiceLine.Kind.SUBSCRIPTION,
            "Professional plan (monthly), 16 Mar – 15 Apr 2026",
            Money(Decimal("199.00"), "USD"),
            period=MARCH,
        ),
        pricing.LineDraft(
            InvoiceLine.Kind.OVERAGE_CALLS,
            "Call overage 16 Feb – 15 Mar 2026: 182,400 s used of 180,000 s included, "
            "2,400 s over at $0.004/s",
            Money(Decimal("0.004"), "USD"),
            quantity=2_400,
            period=FEBRUARY,
        ),
    ]
    lines += [
        pricing.LineDraft(
            InvoiceLine.Kind.PHONE_NUMBER,
            f"Phone number +1415555{n:04d} (local)"
            + (", included in your plan" if n < 3 else "")
            + ", 16 Feb – 15 Mar 2026",
            Money(Decimal("0.00") if n < 3 else Decimal("1.75"), "USD"),
            period=FEBRUARY,
        )
        for n in range(phone_numbers)
    ]
    return invoicing_services.invoice_issue(
        organization=organization,
        subscription=None,
        kind=Invoice.Kind.SUBSCRIPTION,
        period=MARCH,
        lines=lines,
        now=MARCH.start,
    )
