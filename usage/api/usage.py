"""Usage: storage and API usage reports, the usage of this month and its alert thresholds."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.utils import timezone
from ninja import Field, Router, Schema
from ninja.responses import Status
from pydantic import AwareDatetime

from billing.errors import BillingError, ErrorCode
from billing.subscriptions.selectors import subscription_live
from usage import selectors
from usage.alerts import selectors as alert_selectors
from usage.api import lookups
from usage.api.answers import (
    REPORT_REFUSALS,
    answers,
)
from usage.api.inputs import CallId, Input, PathText
from usage.metering import services as metering
from usage.models import UsageReport

router = Router(tags=["usage"])


class StorageIn(Input):
    report_id: CallId
    bytes: int = Field(
        ge=0,
        le=10**18,
        description="Bytes stored now. Allowances and overage count GiB of 2^30 bytes.",
    )
    measured_at: AwareDatetime


class ApiUsageIn(Input):
    report_id: CallId
    count: int = Field(ge=0, le=10**12)
    measured_at: AwareDatetime


class ReportOut(Schema):
    recorded: bool = Field(description="False when this report id had already been recorded.")


@router.post(
    "orgs/{org}/storage",
    **answers({200: ReportOut, 201: ReportOut}, refusals=REPORT_REFUSALS),
    summary="Report stored bytes",
)
def report_storage(request, org: PathText, payload: StorageIn):
    return _record(org, UsageReport.Kind.STORAGE, payload, quantity=payload.bytes)


@router.post(
    "orgs/{org}/api-usage",
    **answers({200: ReportOut, 201: ReportOut}, refusals=REPORT_REFUSALS),
    summary="Report API calls",
)
def report_api_usage(request, org: PathText, payload: ApiUsageIn):
    return _record(org, UsageReport.Kind.API_CALLS, payload, quantity=payload.count)


def _record(org: str, kind: str, payload: StorageIn | ApiUsageIn, *, quantity: int) -> Status:
    """201 for a report recorded now, 200 for a repeat of one already recorded."""
    recorded = metering.usage_report_record(
        organization=lookups.organization(org),
        kind=kind,
        report_id=payload.report_id,
        quantity=quantity,
        measured_at=payload.measured_at,
    )
    return Status(201 if recorded else 200, {"recorded": recorded})


class AllowanceOut(Schema):
    used: int
    limit: int | None


class UsageOut(Schema):
    period_start: dt.datetime
    period_end: dt.datetime
    is_trial: bool = Field(
        description="The free trial: its usage is recorded and shown, and never charged."
    )
    plan: str
    call_seconds: AllowanceOut
    remaining_seconds: int | None
    overage_seconds: int
    overage_cost: str
    projected_seconds: int
    projected_overage_cost: str
    currency: str
    calls: int
    employees: AllowanceOut
    phone_numbers: AllowanceOut
    storage_bytes: AllowanceOut = Field(
        description="Bytes stored now; the limit is the plan's GiB × 2^30 bytes."
    )
    api_calls: AllowanceOut


@router.get(
    "orgs/{org}/usage",
    **answers(
        {200: UsageOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.NO_SUBSCRIPTION),
        body=False,
    ),
    summary="Usage this month",
)
def get_usage(request, org: PathText):
    organization = lookups.organization(org)
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    summary = selectors.usage_summary(subscription=subscription, now=timezone.now())
    return UsageOut(
        period_start=summary.period.start,
        period_end=summary.period.end,
        is_trial=summary.is_trial,
        plan=str(summary.plan),
        call_seconds=vars(summary.call_seconds),
        remaining_seconds=summary.remaining_seconds,
        overage_seconds=summary.overage_seconds,
        overage_cost=str(summary.overage_cost.amount),
        projected_seconds=summary.projected_seconds,
        projected_overage_cost=str(summary.projected_overage_cost.amount),
        currency=summary.plan.currency,
        calls=summary.calls,
        employees=vars(summary.employees),
        phone_numbers=vars(summary.phone_numbers),
        storage_bytes=vars(summary.storage_bytes),
        api_calls=vars(summary.api_calls),
    )


class ThresholdOut(Schema):
    unit: Literal["percent", "absolute"] = Field(
        description="`percent` of the limit, or an `absolute` amount: minutes of call time, "
        "GiB of storage, money of overage in `currency`, a count otherwise."
    )
    value: str = Field(description="A decimal, as text.")
    is_default: bool = Field(description="One of the default percents every plan starts with.")
    enabled: bool
    level: str | None = Field(
        description="Where it is crossed, in the metric's base unit (seconds, bytes, money, "
        "a count); null for a percent of an unlimited allowance."
    )
    crossed_at: dt.datetime | None = Field(description="When it was crossed this period.")


class MetricAlertsOut(Schema):
    metric: Literal[
        "call_seconds",
        "active_employees",
        "phone_numbers",
        "storage",
        "api_calls",
        "overage_spend",
        "overage_cap",
    ]
    used: str = Field(description="This period, in the metric's base unit.")
    limit: str | None = Field(
        description="The plan's limit in the base unit (overage spend: the plan's monthly "
        "price; overage cap: the cap); null when unlimited."
    )
    percent: int | None
    snoozed: bool = Field(description="No notices about it until the period ends.")
    thresholds: list[ThresholdOut]


class AlertsOut(Schema):
    period_start: dt.datetime
    period_end: dt.datetime
    currency: str
    metrics: list[MetricAlertsOut]


@router.get(
    "orgs/{org}/alerts",
    **answers(
        {200: AlertsOut},
        refusals=(ErrorCode.ORGANIZATION_NOT_FOUND, ErrorCode.NO_SUBSCRIPTION),
        body=False,
    ),
    summary="Usage alert thresholds and their state this month",
)
def get_alerts(request, org: PathText):
    """Each metric the plan watches, its thresholds (default and the organization's own, on
    or off) and which were crossed this usage month. Crossed thresholds send notices (in
    the app, by e-mail, and to the organization's webhooks: see the README for the webhook
    events, their payload and the `Billing-Signature` header)."""
    organization = lookups.organization(org)
    subscription = subscription_live(organization=organization)
    if subscription is None:
        raise BillingError(ErrorCode.NO_SUBSCRIPTION)
    now = timezone.now()
    summary = selectors.usage_summary(subscription=subscription, now=now)
    states = alert_selectors.alert_states(
        subscription=subscription, used=alert_selectors.metric_values(summary), now=now
    )
    return AlertsOut(
        period_start=summary.period.start,
        period_end=summary.period.end,
        currency=summary.plan.currency,
        metrics=[
            MetricAlertsOut(
                metric=state.metric,
                used=str(state.used),
                limit=str(state.limit) if state.limit is not None else None,
                percent=state.percent,
                snoozed=state.snoozed,
                thresholds=[
                    ThresholdOut(
                        unit=item.threshold.unit,
                        value=f"{item.threshold.value.normalize():f}",
                        is_default=item.threshold.is_default,
                        enabled=item.threshold.is_enabled,
                        level=str(item.level) if item.level is not None else None,
                        crossed_at=item.fired_at,
                    )
                    for item in state.thresholds
                ],
            )
            for state in states
        ],
    )
