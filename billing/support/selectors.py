"""Reads of billing requests: an organization's list and one request with its conversation,
the staff queue, what an invoice under dispute holds back, and the response target."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from billing.catalog import selectors as catalog_selectors
from billing.models import BillingRequest, BillingRequestMessage, Organization

PRIORITY_SUPPORT = "priority_support"


def response_hours(*, organization: Organization, now: dt.datetime) -> int:
    """The organization's response target in business hours: shorter with priority support
    (in its plan, or on trial)."""
    if catalog_selectors.organization_has_feature(
        organization=organization, code=PRIORITY_SUPPORT, now=now
    ):
        return settings.BILLING_SUPPORT_PRIORITY_RESPONSE_HOURS
    return settings.BILLING_SUPPORT_RESPONSE_HOURS


def response_time_label(hours: int) -> str:
    """ "1 business day", "4 business hours"."""
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} business day{'s' if days != 1 else ''}"
    return f"{hours} business hour{'s' if hours != 1 else ''}"


def billing_requests_for(*, organization: Organization) -> QuerySet[BillingRequest]:
    """The organization's requests, newest first, each with what the customer sees of its
    conversation (never the internal notes) and its calls."""
    customer_visible = BillingRequestMessage.objects.exclude(
        kind=BillingRequestMessage.Kind.INTERNAL
    ).select_related("author")
    return (
        BillingRequest.objects.filter(organization=organization)
        .select_related("invoice", "line", "credit_note")
        .prefetch_related(
            Prefetch("messages", queryset=customer_visible, to_attr="conversation"),
            "disputed_calls",
        )
    )


def billing_request_for(*, organization: Organization, request_id: int) -> BillingRequest | None:
    return billing_requests_for(organization=organization).filter(pk=request_id).first()


def open_dispute_on_invoice() -> Exists:
    """Whether the invoice of the outer query (`pk`) has a dispute still open: an annotation,
    so a list of invoices learns it in its own query."""
    return Exists(
        BillingRequest.objects.filter(
            invoice=OuterRef("pk"),
            kind=BillingRequest.Kind.DISPUTE,
            status__in=BillingRequest.OPEN_STATUSES,
        )
    )


def invoices_under_dispute() -> QuerySet[BillingRequest]:
    """The ids of invoices with a dispute still open, as a subquery."""
    return BillingRequest.objects.filter(
        kind=BillingRequest.Kind.DISPUTE, status__in=BillingRequest.OPEN_STATUSES
    ).values("invoice_id")


def invoice_payment_on_hold(*, invoice_id: int, on_hold: bool | None = None) -> bool:
    """Whether collecting the invoice waits for a dispute's decision (a setting, on by
    default). `on_hold` is the annotation of `open_dispute_on_invoice` when the caller read it
    with the invoice."""
    if not settings.BILLING_DISPUTE_PAUSES_DUNNING:
        return False
    if on_hold is not None:
        return on_hold
    return BillingRequest.objects.filter(
        invoice_id=invoice_id,
        kind=BillingRequest.Kind.DISPUTE,
        status__in=BillingRequest.OPEN_STATUSES,
    ).exists()


def billing_requests_to_escalate(*, now: dt.datetime) -> QuerySet[BillingRequest]:
    """Requests still waiting for a first answer past their target, not yet escalated."""
    return BillingRequest.objects.filter(
        status=BillingRequest.Status.OPEN,
        first_response_at__isnull=True,
        escalated_at__isnull=True,
        respond_by__lte=now,
    )
