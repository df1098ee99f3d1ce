"""Demo payment methods and payment history for `seed_demo`: paid past invoices, so the
demo starts in good standing and shows what a payment history looks like."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from billing.models import Invoice, Organization
from payments import services
from payments.gateways.sandbox import SandboxGateway

DEMO_CARDS = ["4242424242424242", "5555555555554444"]  # the default, then a backup


@transaction.atomic
def seed_payments_demo(*, now: dt.datetime, say=print) -> None:
    for organization in Organization.objects.order_by("name"):
        if organization.payment_terms == Organization.PaymentTerms.AUTOMATIC:
            if not organization.payment_methods.exists():
                say(f"{organization.name}: sandbox cards…")
                for number in DEMO_CARDS:
                    services.payment_method_add(
                        organization=organization,
                        processor="sandbox",
                        attached=SandboxGateway.attach_card(number=number),
                        billing_name=organization.name,
                        billing_country=organization.country,
                        now=now,
                    )
            for invoice in _open_invoices(organization):
                services.invoice_collect(invoice=invoice, now=invoice.issued_at)
        else:
            # Pays by bank transfer: everything but the newest invoice has been paid.
            for invoice in _open_invoices(organization)[:-1]:
                services.invoice_record_bank_transfer(
                    invoice=invoice,
                    reference=f"TRANSFER-{invoice.number}",
                    received_at=invoice.due_at - dt.timedelta(days=3),
                    now=invoice.due_at - dt.timedelta(days=3),
                )


def _open_invoices(organization: Organization) -> list[Invoice]:
    return list(
        organization.invoices.filter(status=Invoice.Status.OPEN).order_by("issued_at", "pk")
    )
