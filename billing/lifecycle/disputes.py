"""The decision on a billing request that may give money back through the processor: the
approved amount is refunded to the charge that paid the invoice (the refund's credit note
documents it), or credited to the customer's balance, as staff choose. billing.support
records the decision; the refund belongs to the payments app, reached from here."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing import locks
from billing.errors import BillingError, ErrorCode
from billing.models import BillingRequest, Invoice
from billing.support import services as support_services
from payments import services as payment_services
from payments.models import PaymentAttempt


@transaction.atomic
def billing_request_resolve(
    *,
    request: BillingRequest,
    amount: Money,
    reason: str,
    refund: bool,
    actor,
    now: dt.datetime | None = None,
) -> BillingRequest:
    """Approve all or part of what a request questions. `refund`: back to the card or bank
    account that paid the invoice (it must be paid by one); otherwise to the balance."""
    now = now or timezone.now()
    if not reason.strip():
        raise BillingError(ErrorCode.REASON_REQUIRED, "Say why the request is approved.")
    request = locks.billing_request_lock().select_related("invoice").get(pk=request.pk)
    support_services.billing_request_approval_check(request=request, amount=amount)
    if not refund:
        return support_services.billing_request_approve(
            request=request, amount=amount, reason=reason, actor=actor, now=now
        )
    charge = (
        PaymentAttempt.objects.filter(
            invoice_id=request.invoice_id,
            status=PaymentAttempt.Status.SUCCEEDED,
            payment_method__isnull=False,
            invoice__status=Invoice.Status.PAID,
        )
        .order_by("-completed_at", "-pk")
        .first()
    )
    if charge is None:
        raise BillingError(
            ErrorCode.NOT_REFUNDABLE,
            f"{request.invoice} was not paid by card or bank charge: credit the balance instead.",
        )
    refunded = payment_services.payment_refund(
        attempt=charge,
        amount=amount,
        reason=f"Billing request #{request.pk}: {reason.strip()}",
        actor=actor,
        now=now,
    )
    return support_services.billing_request_approve(
        request=request,
        amount=amount,
        reason=reason,
        actor=actor,
        now=now,
        credit_note=refunded.credit_note,
    )
