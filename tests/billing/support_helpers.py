"""A month with call overage, invoiced, whose calls can be disputed one by one."""

import datetime as dt
from dataclasses import dataclass

from billing.lifecycle import renewals
from billing.models import Invoice, InvoiceLine, Organization
from billing.support.services import CallInQuestion
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    record_call,
)

FEB_16 = dt.datetime(2026, 2, 16, tzinfo=dt.UTC)
MAR_16 = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)
# 750 s in the month, 600 s included: 150 s over at $0.004/s = $0.60.
CALL_SECONDS = (400, 300, 30, 20)


@dataclass
class OverageMonth:
    organization: Organization
    invoice: Invoice
    line: InvoiceLine
    calls: dict[str, CallInQuestion]  # "call-1" … "call-4", ids "<org slug>-call-1" …


def overage_month(*, organization=None, now=MAR_16) -> OverageMonth:
    """Subscribed on 16 Feb to a plan with 600 s included; four calls (400, 300, 30 and 20 s)
    by Ava; renewed on 16 Mar: the invoice charges 150 s of call overage, $0.60."""
    organization = organization or OrganizationFactory()
    plan = PlanFactory(included_call_seconds=600)
    subscription = SubscriptionFactory(
        organization=organization, plan=plan, start=FEB_16, now=FEB_16
    )
    employee = EmployeeFactory(organization=organization, name="Ava", created_at=FEB_16)
    calls = {}
    for n, seconds in enumerate(CALL_SECONDS, start=1):
        connected_at = FEB_16 + dt.timedelta(days=n)
        record_call(
            employee=employee,
            seconds=seconds,
            connected_at=connected_at,
            call_id=f"{organization.slug}-call-{n}",
            direction="inbound" if n % 2 else "outbound",
        )
        calls[f"call-{n}"] = CallInQuestion(
            platform_call_id=f"{organization.slug}-call-{n}",
            employee_name="Ava",
            direction="inbound" if n % 2 else "outbound",
            connected_at=connected_at,
            billable_seconds=seconds,
        )
    [invoice] = renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=now)
    return OverageMonth(organization, invoice, invoice.lines.get(kind="overage_calls"), calls)
