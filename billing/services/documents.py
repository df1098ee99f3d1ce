"""Invoice documents: the PDF, rendered from the same template as the invoice page."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.template.loader import render_to_string

from billing import selectors
from billing.models import Invoice


def invoice_pdf_render(*, invoice: Invoice) -> bytes:
    """The invoice as PDF bytes (weasyprint), from `billing/invoice_pdf.html`."""
    from weasyprint import HTML  # loads Pango: kept out of web processes that never render

    html = render_to_string("billing/invoice_pdf.html", selectors.invoice_document(invoice=invoice))
    return HTML(string=html).write_pdf()


def invoice_pdf_if_needed(*, invoice: Invoice) -> bytes:
    """The cached PDF of a finalized invoice, rendered and stored the first time."""
    if invoice.pdf:
        with invoice.pdf.open("rb") as stored:
            return stored.read()
    content = invoice_pdf_render(invoice=invoice)
    invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(content), save=False)
    invoice.save(update_fields=["pdf"])
    return content
