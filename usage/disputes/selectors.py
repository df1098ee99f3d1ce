"""Reads of the calls behind an invoice's call overage line: the line an organization
questions, and its usage month's calls, narrowed by the filters a person chooses."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from billing.errors import BillingError, ErrorCode
from billing.models import Invoice, InvoiceLine, Organization
from usage.models import Call


@dataclass(frozen=True)
class CallFilters:
    """What the drill-down from a call overage line narrows the month's calls by."""

    employee_id: int | None = None
    number: str = ""  # a phone number the AI employee answers
    direction: str = ""
    min_seconds: int | None = None
    max_seconds: int | None = None


def call_line_for(*, organization: Organization, number: str, line_id: int) -> InvoiceLine:
    """The organization's issued invoice's call overage line; another organization's
    invoice is not found."""
    invoice = (
        Invoice.objects.filter(organization=organization, number=number)
        .exclude(status=Invoice.Status.DRAFT)
        .first()
    )
    if invoice is None:
        raise BillingError(
            ErrorCode.INVOICE_NOT_FOUND, f"{organization} has no invoice {number}.", field="number"
        )
    line = invoice.lines.filter(pk=line_id).first()
    if line is None:
        raise BillingError(ErrorCode.LINE_NOT_FOUND, field="line")
    if line.kind != InvoiceLine.Kind.OVERAGE_CALLS or line.period_start is None:
        raise BillingError(ErrorCode.NOT_A_CALL_LINE, field="line")
    return line


def line_calls(*, line: InvoiceLine, filters: CallFilters = CallFilters()) -> QuerySet[Call]:
    """The calls of the line's usage month (the month they count in), oldest first: one
    indexed range of (organization, usage month)."""
    calls = Call.objects.filter(
        organization_id=line.invoice.organization_id, usage_period_start=line.period_start
    )
    if filters.employee_id is not None:
        calls = calls.filter(employee_id=filters.employee_id)
    if filters.number:
        calls = calls.filter(employee__phone_numbers__number=filters.number)
    if filters.direction:
        calls = calls.filter(direction=filters.direction)
    if filters.min_seconds is not None:
        calls = calls.filter(billable_seconds__gte=filters.min_seconds)
    if filters.max_seconds is not None:
        calls = calls.filter(billable_seconds__lte=filters.max_seconds)
    return calls.select_related("employee").order_by("connected_at", "pk")
