"""Demo payment methods and payment history for `seed_demo`: the past invoices paid when
they would have been, so the demo starts in good standing and shows what a payment history
looks like. Each card and each payment is a transaction of its own, as it would have been: a
person adds a card, the task queue charges later (one transaction may not lock the
organization for a card, then an invoice's collection: see the lock order in
billing/locks.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from billing.models import Invoice, Organization
from payments import gateways, services

# (card number, years until it expires, expiry month): the default, then a backup.
DEMO_CARDS = [("4242424242424242", 3, 8), ("5555555555554444", 2, 11)]
# Organizations paying by invoice transfer the money this many days before the due date.
TRANSFER_DAYS_BEFORE_DUE = 3


def seed_payments_demo(*, now: dt.datetime, say=print) -> None:
    for organization in Organization.objects.order_by("name"):
        first = organization.subscriptions.order_by("pk").first()
        if first is None:
            continue
        if organization.payment_terms == Organization.PaymentTerms.AUTOMATIC:
            if not organization.payment_methods.exists():
                say(f"{organization.name}: sandbox cards…")
                for number, years, month in DEMO_CARDS:
                    attached = gateways.sandbox_card_attach(number=number)
                    services.payment_method_add(
                        organization=organization,
                        processor="sandbox",
                        # As the card form does: the sandbox takes the expiry as typed.
                        attached=dataclasses.replace(
                            attached, exp_month=month, exp_year=now.year + years
                        ),
                        billing_name=organization.name,
                        billing_country=organization.country,
                        now=first.anchor,  # on file since the organization subscribed
                    )
            for invoice in _open_invoices(organization):
                services.invoice_collect(invoice=invoice, now=invoice.issued_at)
        else:
            # Pays by bank transfer a few days before each due date; what is not due yet waits.
            for invoice in _open_invoices(organization):
                received_at = max(
                    invoice.due_at - dt.timedelta(days=TRANSFER_DAYS_BEFORE_DUE), invoice.issued_at
                )
                if received_at > now:
                    break
                services.invoice_record_bank_transfer(
                    invoice=invoice,
                    reference=f"TRANSFER-{invoice.number}",
                    received_at=received_at,
                    now=received_at,
                )


def _open_invoices(organization: Organization) -> list[Invoice]:
    return list(
        organization.invoices.filter(status=Invoice.Status.OPEN).order_by("issued_at", "pk")
    )
