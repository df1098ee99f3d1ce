"""Disputing chosen calls of a call overage line: a billing request that carries them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from billing.errors import BillingError, ErrorCode
from billing.models import BillingRequest, InvoiceLine
from billing.support import services as support_services
from billing.support.services import Attachment, CallInQuestion
from usage.disputes.selectors import line_calls


def calls_dispute(
    *,
    line: InvoiceLine,
    call_ids: Sequence[str],
    reason: str,
    body: str,
    actor,
    attachment: Attachment | None = None,
    now: dt.datetime | None = None,
) -> BillingRequest:
    """Dispute chosen calls of a call overage line: each must be a call of the line's usage
    month; they are copied onto a billing request, priced at the invoice's rate."""
    chosen = {
        call.platform_call_id: call
        for call in line_calls(line=line).filter(platform_call_id__in=call_ids)
    }
    if not call_ids or len(chosen) != len(set(call_ids)):
        raise BillingError(ErrorCode.CALLS_REQUIRED, field="calls")
    return support_services.billing_request_open(
        organization=line.invoice.organization,
        kind=BillingRequest.Kind.DISPUTE,
        body=body,
        actor=actor,
        invoice=line.invoice,
        line=line,
        reason=reason,
        calls=[
            CallInQuestion(
                platform_call_id=call.platform_call_id,
                employee_name=call.employee.name,
                direction=call.direction,
                connected_at=call.connected_at,
                billable_seconds=call.billable_seconds,
            )
            for call in chosen.values()
        ],
        attachment=attachment,
        now=now,
    )
