"""Invoices: the calls behind a call overage line, a page at a time."""

from __future__ import annotations

import datetime as dt

from django.core.paginator import Paginator
from ninja import Field, Query, Router, Schema

from billing.errors import ErrorCode
from usage.api import lookups
from usage.api.answers import answers
from usage.api.inputs import E164, Direction, Id, PathText
from usage.disputes import selectors as dispute_selectors

router = Router(tags=["invoices"])

MAX_PAGE_SIZE = 500


class LineCallsQuery(Schema):
    employee_id: Id | None = Field(None, description="Only this AI employee's calls.")
    phone_number: E164 | None = Field(
        None, description="Only calls of the AI employee answering this number."
    )
    direction: Direction | None = None
    min_seconds: int | None = Field(None, ge=0, description="At least this many seconds.")
    max_seconds: int | None = Field(None, ge=0, description="At most this many seconds.")
    page: int = Field(1, ge=1, le=10**9)
    page_size: int = Field(100, ge=1, le=MAX_PAGE_SIZE)


class LineCallOut(Schema):
    call_id: str
    employee_id: int
    employee: str
    direction: Direction
    connected_at: dt.datetime
    ended_at: dt.datetime
    billable_seconds: int


class LineCallsOut(Schema):
    invoice_number: str
    line_id: int
    period_start: dt.datetime
    period_end: dt.datetime
    rate_per_second: str = Field(description="The invoice's own per-second overage rate.")
    currency: str
    count: int = Field(description="Calls matching the filters, on every page.")
    page: int
    pages: int
    calls: list[LineCallOut]


@router.get(
    "orgs/{org}/invoices/{number}/lines/{line_id}/calls",
    **answers(
        {200: LineCallsOut},
        refusals=(
            ErrorCode.ORGANIZATION_NOT_FOUND,
            ErrorCode.INVOICE_NOT_FOUND,
            ErrorCode.LINE_NOT_FOUND,
            ErrorCode.NOT_A_CALL_LINE,
        ),
        body=False,
    ),
    summary="The calls behind a call overage line",
)
def list_line_calls(
    request, org: PathText, number: PathText, line_id: Id, filters: Query[LineCallsQuery]
):
    """The calls of the usage month a call overage line charges, oldest first, a page at a
    time: what the organization's billing page shows when it questions the line."""
    line = dispute_selectors.call_line_for(
        organization=lookups.organization(org), number=number, line_id=line_id
    )
    calls = dispute_selectors.line_calls(
        line=line,
        filters=dispute_selectors.CallFilters(
            employee_id=filters.employee_id,
            number=filters.phone_number or "",
            direction=filters.direction or "",
            min_seconds=filters.min_seconds,
            max_seconds=filters.max_seconds,
        ),
    )
    paginator = Paginator(calls, filters.page_size)
    return LineCallsOut(
        invoice_number=line.invoice.number,
        line_id=line.pk,
        period_start=line.period_start,
        period_end=line.period_end,
        rate_per_second=f"{line.unit_price.amount:f}",
        currency=str(line.amount.currency),
        count=paginator.count,
        page=filters.page,
        pages=paginator.num_pages,
        calls=[
            LineCallOut(
                call_id=call.platform_call_id,
                employee_id=call.employee_id,
                employee=call.employee.name,
                direction=call.direction,
                connected_at=call.connected_at,
                ended_at=call.ended_at,
                billable_seconds=call.billable_seconds,
            )
            for call in paginator.page(filters.page).object_list
        ]
        if filters.page <= paginator.num_pages
        else [],
    )
