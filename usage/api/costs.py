"""Cost control: the next invoice as it stands, and a usage month's costs by cost center
and AI employee."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from billing.errors import BillingError, ErrorCode
from usage.api import lookups
from usage.api.answers import answers
from usage.api.inputs import PathText
from usage.costs import selectors as cost_selectors

router = Router(tags=["costs"])


class UpcomingLineOut(Schema):
    kind: str = Field(
        description="The invoice line's kind: `subscription`, `proration`, "
        "`overage_calls`, `overage_storage`, `phone_number`, `discount`, `tax`, `credit`, "
        "`carried`, ..."
    )
    description: str
    so_far: str | None = Field(
        description="The amount as usage stands now; null when the line is only projected."
    )
    projected: str | None = Field(
        description="The amount with the month's calls projected at their pace to its end "
        "(the overage cap applied); null when the line is there only so far."
    )


class UpcomingTotalsOut(Schema):
    subtotal: str = Field(description="The charges after the discount, before tax.")
    tax_total: str
    credit_applied: str = Field(description="Paid from the organization's credit balance.")
    total: str = Field(description="What will be owed.")


def _totals_out(preview) -> UpcomingTotalsOut:
    return UpcomingTotalsOut(
        subtotal=str(preview.subtotal.amount),
        tax_total=str(preview.tax_total.amount),
        credit_applied=str(preview.credit_applied.amount),
        total=str(preview.total.amount),
    )


class UpcomingInvoiceOut(Schema):
    kind: Literal["subscription", "usage", "final"] = Field(
        description="`subscription`: the next period's fee in advance with the usage month in "
        "arrears; `usage`: an annual plan's usage month; `final`: the last usage of a "
        "subscription set to end."
    )
    period_start: dt.datetime
    period_end: dt.datetime
    issued_at: dt.datetime = Field(description="When renewal issues it.")
    currency: str
    lines: list[UpcomingLineOut]
    so_far: UpcomingTotalsOut
    projected: UpcomingTotalsOut


@router.get(
    "orgs/{org}/upcoming-invoice",
    **answers(
        {200: UpcomingInvoiceOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.NO_SUBSCRIPTION),
        body=False,
    ),
    summary="The next invoice, so far and projected",
)
def get_upcoming_invoice(request, org: PathText):
    """The organization's next invoice as it stands now, line by line, priced exactly as
    renewal will issue it. 409 `no_subscription` without a live subscription, or when it
    ends without another invoice."""
    upcoming = cost_selectors.upcoming_invoice(
        organization=lookups.organization(org), now=timezone.now()
    )
    if upcoming is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    return UpcomingInvoiceOut(
        kind=upcoming.kind,
        period_start=upcoming.period.start,
        period_end=upcoming.period.end,
        issued_at=upcoming.issued_at,
        currency=upcoming.subscription.organization.currency,
        lines=[
            UpcomingLineOut(
                kind=row.kind,
                description=row.description,
                so_far=str(row.so_far.amount) if row.so_far is not None else None,
                projected=str(row.projected.amount) if row.projected is not None else None,
            )
            for row in upcoming.rows
        ],
        so_far=_totals_out(upcoming.so_far),
        projected=_totals_out(upcoming.projected),
    )


class CostShareOut(Schema):
    cost_center: str = Field(description="Empty for what has no cost center.")
    ai_employee_id: int | None = Field(
        description="Null for what went to the cost center itself (or to no one)."
    )
    ai_employee: str = Field(description="The AI employee's name when the month was invoiced.")
    call_seconds: int
    usage: str = Field(description="Call and storage overage, by share of call time.")
    phone_numbers: str = Field(description="Fees of the numbers assigned to the AI employee.")
    plan_fee: str = Field(description="The plan's fee and prorations, by the organization's rule.")
    adjustments: str = Field(
        description="Its part of the discount, taxes and credits, in proportion to its charges."
    )
    total: str


class CostsOut(Schema):
    month: str = Field(description="YYYY-MM: the local month the usage month starts in.")
    invoiced: bool = Field(
        description="False while the month is not invoiced: its split is made when it is."
    )
    invoice: str | None = Field(description="The number of the invoice that closed the month.")
    invoice_total: str | None = Field(description="What the shares add up to, to the cent.")
    currency: str
    shares: list[CostShareOut]


def _month(value: str) -> str:
    try:
        cost_selectors.month_parse(value)
    except ValueError as error:
        raise PydanticCustomError("invalid_month", str(error)) from None
    return value


Month = Annotated[PathText, AfterValidator(_month)]


@router.get(
    "orgs/{org}/costs",
    **answers({200: CostsOut}, refusals=(ErrorCode.ORGANIZATION_NOT_FOUND,), body=False),
    summary="Costs by cost center and AI employee, for one usage month",
)
def get_costs(request, org: PathText, month: Month):
    """The invoice that closed the usage month starting in `month` (YYYY-MM), split among
    cost centers and AI employees as frozen when it was issued. A month not invoiced (yet)
    answers `invoiced: false` and no shares; a malformed month 422 naming `month`."""
    organization = lookups.organization(org)
    result = cost_selectors.cost_month(
        organization=organization, month=cost_selectors.month_parse(month)
    )
    return CostsOut(
        month=f"{result.month:%Y-%m}",
        invoiced=result.invoice is not None,
        invoice=result.invoice.number if result.invoice else None,
        invoice_total=str(result.invoice.total.amount) if result.invoice else None,
        currency=organization.currency,
        shares=[
            CostShareOut(
                cost_center=share.cost_center,
                ai_employee_id=share.employee_id,
                ai_employee=share.employee_name,
                call_seconds=share.call_seconds,
                usage=str(share.usage.amount),
                phone_numbers=str(share.numbers.amount),
                plan_fee=str(share.fixed.amount),
                adjustments=str(share.adjustments.amount),
                total=str(share.total.amount),
            )
            for share in result.shares
        ],
    )
