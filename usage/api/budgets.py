"""Budgets: the monthly budgets of the organization and its cost centers, the spend so far
and its forecast."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from billing.errors import BillingError, ErrorCode
from billing.models import Organization
from billing.subscriptions.selectors import subscription_live
from usage.api import lookups
from usage.api.answers import answers
from usage.api.caps import CostCenter, money_text
from usage.api.inputs import Input, PathText
from usage.budgets import selectors as budget_selectors
from usage.budgets import services as budget_services

router = Router(tags=["budgets"])


BudgetAmount = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]


class CostCenterBudgetIn(Input):
    cost_center: CostCenter
    monthly_budget: BudgetAmount


class BudgetIn(Input):
    monthly_budget: BudgetAmount | None = Field(
        description="Money a usage month, in the organization's currency; null: none."
    )
    cost_centers: list[CostCenterBudgetIn] = Field(
        default_factory=list,
        description="Every cost center with a budget; the others have none.",
    )

    @field_validator("cost_centers")
    @classmethod
    def _cost_centers_once(cls, budgets: list[CostCenterBudgetIn]) -> list[CostCenterBudgetIn]:
        if len({budget.cost_center for budget in budgets}) < len(budgets):
            raise PydanticCustomError("repeated", "Each cost center appears at most once.")
        return budgets


class CostCenterBudgetOut(Schema):
    cost_center: str
    monthly_budget: str | None
    call_seconds: int = Field(description="This usage month, by its AI employees.")
    spent: str = Field(
        description="Its share of the call seconds times the overage so far (call and "
        "storage, discounted and taxed like the organization's; the fees are the "
        "organization's)."
    )
    percent: int | None
    forecast: str
    forecast_low: str
    forecast_high: str
    forecast_exceeds_budget: bool


class BudgetOut(Schema):
    currency: str
    period_start: dt.datetime
    period_end: dt.datetime
    is_trial: bool = Field(description="A free trial: nothing of it is charged.")
    monthly_budget: str | None
    spent: str = Field(
        description="What this usage month costs once invoiced, so far: the plan's fee for "
        "the month and the phone numbers' fees, the call and storage overage, less the "
        "discount, with taxes, before credits from the balance."
    )
    percent: int | None = Field(description="Of the budget spent; null without a budget.")
    forecast: str = Field(description="The month's spend at this pace.")
    forecast_low: str = Field(description="The band: four months in five end within it.")
    forecast_high: str
    forecast_exceeds_budget: bool
    weighted: bool = Field(
        description="The pace is weighed by the organization's day-of-week pattern of the "
        "earlier months; false: the plain pace."
    )
    days_left: int
    cost_centers: list[CostCenterBudgetOut]


def _budget_out(organization: Organization) -> BudgetOut:
    state = budget_selectors.budget_state(organization=organization, now=timezone.now())
    if state is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    forecast = state.forecast
    return BudgetOut(
        currency=forecast.total.currency.code,
        period_start=forecast.spend.period.start,
        period_end=forecast.spend.period.end,
        is_trial=forecast.spend.is_trial,
        monthly_budget=money_text(state.budget.amount) if state.budget else None,
        spent=str(forecast.spend.total.amount),
        percent=state.percent,
        forecast=str(forecast.total.amount),
        forecast_low=str(forecast.low.amount),
        forecast_high=str(forecast.high.amount),
        forecast_exceeds_budget=state.forecast_exceeds,
        weighted=forecast.weighted,
        days_left=forecast.days_left,
        cost_centers=[
            CostCenterBudgetOut(
                cost_center=item.cost_center,
                monthly_budget=money_text(item.budget.amount) if item.budget else None,
                call_seconds=item.call_seconds,
                spent=str(item.spent.amount),
                percent=item.percent,
                forecast=str(item.forecast.amount),
                forecast_low=str(item.low.amount),
                forecast_high=str(item.high.amount),
                forecast_exceeds_budget=item.forecast_exceeds,
            )
            for item in budget_selectors.cost_center_budgets(
                organization=organization, forecast=forecast
            )
        ],
    )


BUDGET_LOOKUP = (ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.NO_SUBSCRIPTION)


@router.get(
    "orgs/{org}/budgets",
    **answers({200: BudgetOut}, refusals=BUDGET_LOOKUP, body=False),
    summary="The monthly budget, the spend so far and the forecast",
)
def get_budgets(request, org: PathText):
    """Budget alerts (`budget_alert` notices and webhook events) fire once a usage month at
    each of `BUDGET_ALERT_PERCENTS` (80% and 100%) spent, and when the forecast passes it."""
    return _budget_out(lookups.organization(org))


@router.put(
    "orgs/{org}/budgets",
    **answers(
        {200: BudgetOut},
        refusals=(*BUDGET_LOOKUP, ErrorCode.BUDGET_INVALID, ErrorCode.COST_CENTER_NOT_FOUND),
    ),
    summary="Set the monthly budgets",
)
def put_budgets(request, org: PathText, payload: BudgetIn):
    """Replaces every budget: the organization's, and its cost centers' (left out: none).
    Each change is recorded with this token and when (the budgets page lists them)."""
    organization = lookups.organization(org)
    if subscription_live(organization=organization) is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    budget_services.budgets_replace(
        organization=organization,
        amount=payload.monthly_budget,
        cost_centers={item.cost_center: item.monthly_budget for item in payload.cost_centers},
        token=request.auth,
    )
    return _budget_out(organization)
