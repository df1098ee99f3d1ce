"""Writes of billing requests: opening one (on an invoice, a line or chosen calls), the
conversation, assignment, escalation past the response target, and the decision: approved
by a credit note on the invoice, or declined with an explanation. Every reply and decision
the customer should know of is a notice of the notification center."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.tasks import async_task
from djmoney.money import Money

from billing import locks
from billing.accounts.services import staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.invoicing import services as invoicing_services
from billing.models import (
    BillingRequest,
    BillingRequestMessage,
    CreditNote,
    DisputedCall,
    Invoice,
    InvoiceLine,
    Notification,
    Organization,
)
from billing.money import round_money
from billing.notifications.emails import absolute_url
from billing.notifications.services import notification_send
from billing.support import selectors, targets

logger = logging.getLogger(__name__)

Kind = BillingRequest.Kind
Status = BillingRequest.Status
MessageKind = BillingRequestMessage.Kind

# What each accepted type of attachment starts with, whatever its name says.
MAGIC_NUMBERS = {
    b"%PDF-": ("application/pdf", "pdf"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
}


@dataclass(frozen=True)
class CallInQuestion:
    """A call as the usage app read it for a dispute: copied onto the request."""

    platform_call_id: str
    employee_name: str
    direction: str
    connected_at: dt.datetime
    billable_seconds: int


@dataclass(frozen=True)
class Attachment:
    """A file a person attached, before it is checked."""

    name: str
    content: bytes


@dataclass(frozen=True)
class CheckedAttachment:
    name: str
    content: bytes
    content_type: str
    extension: str


def attachment_check(*, attachment: Attachment) -> CheckedAttachment:
    """A PDF, PNG or JPEG by its content (the name and the browser's word are not trusted),
    of at most `BILLING_REQUEST_ATTACHMENT_MAX_MB`."""
    limit_mb = settings.BILLING_REQUEST_ATTACHMENT_MAX_MB
    if len(attachment.content) > limit_mb * 1024 * 1024:
        raise BillingError(
            ErrorCode.ATTACHMENT_TOO_LARGE,
            f"{attachment.name} is {len(attachment.content) / 1024 / 1024:.1f} MB: an "
            f"attachment is at most {limit_mb} MB.",
            field="attachment",
        )
    for magic, (content_type, extension) in MAGIC_NUMBERS.items():
        if attachment.content.startswith(magic):
            return CheckedAttachment(attachment.name, attachment.content, content_type, extension)
    raise BillingError(
        ErrorCode.ATTACHMENT_TYPE,
        f"{attachment.name} is not a PDF, PNG or JPEG file: attach one of those.",
        field="attachment",
    )


def _message_add(
    *,
    request: BillingRequest,
    kind: str,
    author,
    body: str,
    attachment: CheckedAttachment | None,
    now: dt.datetime,
) -> BillingRequestMessage:
    message = BillingRequestMessage(
        request=request, kind=kind, author=author, body=body.strip(), created_at=now
    )
    if attachment is not None:
        # The stored name is ours: the customer's file name is kept only to be shown.
        message.attachment.save(
            f"request-{request.pk}.{attachment.extension}",
            ContentFile(attachment.content),
            save=False,
        )
        message.attachment_name = attachment.name[:200]
        message.attachment_type = attachment.content_type
    message.save()
    return message


def _checked_body(body: str) -> str:
    if not body.strip():
        raise BillingError(ErrorCode.MESSAGE_REQUIRED, field="body")
    return body


def _invoice_of(organization: Organization, invoice: Invoice | None) -> Invoice | None:
    if invoice is None:
        return None
    if invoice.organization_id != organization.pk or not invoice.is_finalized:
        raise BillingError(ErrorCode.INVOICE_NOT_FOUND, field="invoice")
    return invoice


def _line_of(invoice: Invoice | None, line: InvoiceLine | None) -> InvoiceLine | None:
    if line is None:
        return None
    if invoice is None or line.invoice_id != invoice.pk:
        raise BillingError(ErrorCode.LINE_NOT_FOUND, field="line")
    return line


def calls_amount(*, line: InvoiceLine, seconds: int) -> Money:
    """What `seconds` of a call overage line cost at the invoice's own per-second rate, never
    more than the line charged (a capped line, a plan that pauses calls)."""
    charged = round_money(line.unit_price * seconds)
    return min(charged, line.amount)


def _amount_in_question(
    *, invoice: Invoice | None, line: InvoiceLine | None, amount: Money | None
) -> Money | None:
    """What the customer questions: the amount given, at most what the line (or the invoice)
    charged; the whole line when no amount is given."""
    if invoice is None:
        return None
    ceiling = line.amount if line is not None else invoice.total + invoice.credit_applied
    if amount is None:
        return ceiling if line is not None else None
    if amount.currency != ceiling.currency or amount.amount <= 0 or amount > ceiling:
        raise BillingError(
            ErrorCode.AMOUNT_IN_QUESTION_TOO_LARGE,
            f"The amount in question is more than zero and at most {ceiling}.",
            field="amount",
        )
    return round_money(amount)


def _default_subject(kind: str, invoice: Invoice | None, line: InvoiceLine | None) -> str:
    if line is not None:
        return f"{line.get_kind_display()} on {invoice.number}"
    if invoice is not None:
        return f"{Kind(kind).label} – {invoice.number}"
    return str(Kind(kind).label)


@transaction.atomic
def billing_request_open(
    *,
    organization: Organization,
    kind: str,
    body: str,
    actor,
    subject: str = "",
    invoice: Invoice | None = None,
    line: InvoiceLine | None = None,
    amount: Money | None = None,
    reason: str = "",
    calls: Sequence[CallInQuestion] = (),
    attachment: Attachment | None = None,
    now: dt.datetime | None = None,
) -> BillingRequest:
    """Open a request for billing support. A dispute names an invoice, and maybe one of its
    lines and an amount, or chosen calls of a call overage line: then the seconds and money
    in question come from the calls at the invoice's own rate. The response target is counted
    in business time in the organization's timezone. Disputed calls worth at most
    `BILLING_DISPUTE_AUTO_APPROVE_UP_TO` are approved at once."""
    now = now or timezone.now()
    if kind not in Kind.values:
        raise BillingError(ErrorCode.REQUEST_KIND_INVALID, field="kind")
    _checked_body(body)
    checked = attachment_check(attachment=attachment) if attachment is not None else None
    invoice = _invoice_of(organization, invoice)
    line = _line_of(invoice, line)
    if kind == Kind.DISPUTE and invoice is None:
        raise BillingError(
            ErrorCode.INVOICE_NOT_FOUND, "Choose the invoice you dispute.", field="invoice"
        )
    if reason and reason not in BillingRequest.Reason.values:
        raise BillingError(ErrorCode.DISPUTE_REASON_REQUIRED, field="reason")
    seconds = None
    if calls:
        if kind != Kind.DISPUTE or line is None or line.kind != InvoiceLine.Kind.OVERAGE_CALLS:
            raise BillingError(ErrorCode.NOT_A_CALL_LINE, field="line")
        if not reason:
            raise BillingError(ErrorCode.DISPUTE_REASON_REQUIRED, field="reason")
        seconds = sum(call.billable_seconds for call in calls)
        amount = calls_amount(line=line, seconds=seconds)
        in_question = amount
    else:
        in_question = _amount_in_question(invoice=invoice, line=line, amount=amount)
    request = BillingRequest.objects.create(
        organization=organization,
        kind=kind,
        subject=(subject.strip() or _default_subject(kind, invoice, line))[:200],
        reason=reason,
        invoice=invoice,
        line=line,
        amount_in_question=in_question,
        seconds_in_question=seconds,
        opened_by=actor,
        created_at=now,
        respond_by=_respond_by(organization, now),
    )
    _message_add(
        request=request,
        kind=MessageKind.CUSTOMER,
        author=actor,
        body=body,
        attachment=checked,
        now=now,
    )
    DisputedCall.objects.bulk_create(
        DisputedCall(
            request=request,
            platform_call_id=call.platform_call_id,
            employee_name=call.employee_name,
            direction=call.direction,
            connected_at=call.connected_at,
            billable_seconds=call.billable_seconds,
            amount=line.unit_price * call.billable_seconds,
        )
        for call in calls
    )
    if calls and _small_enough(in_question):
        limit = Money(settings.BILLING_DISPUTE_AUTO_APPROVE_UP_TO, in_question.currency)
        try:
            with transaction.atomic():
                approved = billing_request_approve(
                    request=request,
                    amount=in_question,
                    reason=f"Disputed calls worth at most {limit} are credited at once.",
                    actor=None,
                    now=now,
                    automatic=True,
                )
        except BillingError as refusal:
            # The invoice cannot take this credit note (voided, already credited in full):
            # the request waits for staff like any other.
            logger.warning("Billing request %s left for staff: %s", request.pk, refusal.message)
        else:
            logger.info("Billing request %s approved at once: %s", request.pk, in_question)
            return approved
    return request


def _respond_by(organization: Organization, now: dt.datetime) -> dt.datetime:
    return targets.business_deadline(
        start=now,
        hours=selectors.response_hours(organization=organization, now=now),
        timezone=organization.timezone,
    )


def _small_enough(amount: Money) -> bool:
    limit = Decimal(settings.BILLING_DISPUTE_AUTO_APPROVE_UP_TO)
    return limit > 0 and 0 < amount.amount <= limit


def _open_request(request: BillingRequest) -> BillingRequest:
    """The request, locked; refused once decided."""
    request = (
        locks.billing_request_lock().select_related("organization", "invoice").get(pk=request.pk)
    )
    if not request.is_open:
        raise BillingError(ErrorCode.REQUEST_CLOSED)
    return request


@transaction.atomic
def billing_request_reply(
    *,
    request: BillingRequest,
    author,
    body: str,
    kind: str,
    attachment: Attachment | None = None,
    now: dt.datetime | None = None,
) -> BillingRequestMessage:
    """Add to the conversation. Billing support's reply is the answer the response target
    waits for and is sent to the customer; an internal note is for staff only; the customer's
    reply puts the request back in the queue with a new target."""
    now = now or timezone.now()
    if kind != MessageKind.CUSTOMER:
        staff_action_begin(
            actor=author,
            permission="billing.change_billingrequest",
            action="Answering a billing request"
            if kind == MessageKind.STAFF
            else "Noting on a billing request",
            subject=request,
            organization_id=request.organization_id,
        )
    _checked_body(body)
    checked = attachment_check(attachment=attachment) if attachment is not None else None
    if kind == MessageKind.INTERNAL:
        request = locks.billing_request_lock().get(pk=request.pk)
    else:
        request = _open_request(request)
    message = _message_add(
        request=request, kind=kind, author=author, body=body, attachment=checked, now=now
    )
    if kind == MessageKind.STAFF:
        request.status = Status.ANSWERED
        request.first_response_at = request.first_response_at or now
        request.save(update_fields=["status", "first_response_at"])
        _customer_notify(request=request, message=message)
    elif kind == MessageKind.CUSTOMER:
        request.status = Status.OPEN
        request.respond_by = _respond_by(request.organization, now)
        request.save(update_fields=["status", "respond_by"])
    return message


def billing_request_assign(*, request: BillingRequest, assignee) -> BillingRequest:
    BillingRequest.objects.filter(pk=request.pk).update(assignee=assignee)
    request.assignee = assignee
    return request


def billing_request_approval_check(*, request: BillingRequest, amount: Money) -> None:
    """Refuse an approval that could not be recorded, before anything is credited."""
    if not request.is_open:
        raise BillingError(ErrorCode.REQUEST_CLOSED)
    if request.invoice_id is None or request.amount_in_question is None:
        raise BillingError(ErrorCode.NOTHING_TO_APPROVE)
    if (
        amount.currency != request.amount_in_question.currency
        or amount.amount <= 0
        or amount > request.amount_in_question
    ):
        raise BillingError(
            ErrorCode.APPROVAL_TOO_LARGE,
            f"Approve more than zero and at most {request.amount_in_question}.",
            field="amount",
        )


@transaction.atomic
def billing_request_approve(
    *,
    request: BillingRequest,
    amount: Money,
    reason: str,
    actor,
    now: dt.datetime | None = None,
    credit_note: CreditNote | None = None,
    automatic: bool = False,
) -> BillingRequest:
    """Approve all or part of what is in question: a credit note on the invoice, credited to
    the customer's balance, or, when the caller refunded the charge, the refund's own credit
    note (`credit_note`). The decision (who, when, why) is recorded and the customer told."""
    now = now or timezone.now()
    if not reason.strip():
        raise BillingError(ErrorCode.REASON_REQUIRED, "Say why the request is approved.")
    request = (
        locks.billing_request_lock().select_related("organization", "invoice").get(pk=request.pk)
    )
    billing_request_approval_check(request=request, amount=amount)
    refunded = credit_note is not None
    if credit_note is None:
        credit_note = invoicing_services.credit_note_issue(
            invoice=request.invoice,
            amount=amount,
            reason=f"Billing request #{request.pk}: {reason.strip()}",
            actor=actor,
            now=now,
        )
    where = (
        "refunded to your payment method"
        if refunded
        else "added to your credit balance, which pays your next invoices first"
    )
    request.status = Status.APPROVED
    request.approved_amount = credit_note.amount
    request.credit_note = credit_note
    request.refunded = refunded
    request.auto_approved = automatic
    _decision_record(request=request, actor=actor, reason=reason, now=now)
    message = _message_add(
        request=request,
        kind=MessageKind.STAFF,
        author=actor,
        body=(
            f"Approved: credit note {credit_note.number} for {credit_note.amount} on "
            f"{request.invoice.number}, {where}. {reason.strip()}"
        ),
        attachment=None,
        now=now,
    )
    _customer_notify(request=request, message=message)
    return request


@transaction.atomic
def billing_request_decline(
    *, request: BillingRequest, reason: str, actor, now: dt.datetime | None = None
) -> BillingRequest:
    """Decline with an explanation, which the customer reads."""
    staff_action_begin(
        actor=actor,
        permission="billing.change_billingrequest",
        action="Declining a billing request",
        subject=request,
        organization_id=request.organization_id,
        reason=reason,
    )
    now = now or timezone.now()
    if not reason.strip():
        raise BillingError(
            ErrorCode.REASON_REQUIRED, "Explain to the customer why it is declined.", field="reason"
        )
    request = _open_request(request)
    request.status = Status.DECLINED
    _decision_record(request=request, actor=actor, reason=reason, now=now)
    message = _message_add(
        request=request,
        kind=MessageKind.STAFF,
        author=actor,
        body=f"Declined: {reason.strip()}",
        attachment=None,
        now=now,
    )
    _customer_notify(request=request, message=message)
    return request


def _decision_record(*, request: BillingRequest, actor, reason: str, now: dt.datetime) -> None:
    request.decided_at = now
    request.decided_by = actor
    request.decision_reason = reason.strip()
    request.first_response_at = request.first_response_at or now
    request.save()


def support_url(organization: Organization) -> str:
    return absolute_url("billing:support", organization.slug)


def _customer_notify(*, request: BillingRequest, message: BillingRequestMessage) -> None:
    """The customer's notice of an answer or a decision, once per message."""
    organization = request.organization
    notification_send(
        organization=organization,
        kind=Notification.Kind.BILLING_REQUEST,
        dedup_key=f"billing_request:{request.pk}:message:{message.pk}",
        template="billing_request_answered",
        context={"request": request, "message": message},
        link=support_url(organization),
        link_label="Open your billing requests",
        data={
            "request_id": request.pk,
            "status": request.status,
            "invoice_number": request.invoice.number if request.invoice else None,
            "approved_amount": (
                str(request.approved_amount.amount) if request.approved_amount else None
            ),
            "credit_note": request.credit_note.number if request.credit_note else None,
        },
    )


def billing_requests_escalate_if_needed(*, now: dt.datetime | None = None) -> int:
    """The job: a request still waiting for billing support past its target is escalated,
    once (a conditional update: a second run, or a second worker, finds it done), and the
    supervisors are e-mailed after commit. Returns how many were escalated."""
    now = now or timezone.now()
    escalated = 0
    for request_id in list(
        selectors.billing_requests_to_escalate(now=now).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            if not BillingRequest.objects.filter(pk=request_id, escalated_at__isnull=True).update(
                escalated_at=now
            ):
                continue
            escalated += 1
            transaction.on_commit(lambda request_id=request_id: _supervisors_email(request_id))
    return escalated


def _supervisors_email(request_id: int) -> None:
    request = BillingRequest.objects.select_related("organization").get(pk=request_id)
    recipients = list(
        get_user_model()
        .objects.filter(groups__name=settings.BILLING_SUPPORT_SUPERVISORS_GROUP, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not recipients:
        logger.error(
            "Billing request %s passed its response target and no supervisor has an e-mail "
            "address (group %r).",
            request_id,
            settings.BILLING_SUPPORT_SUPERVISORS_GROUP,
        )
        return
    context = {
        "request": request,
        "link": absolute_url("admin:billing_billingrequest_change", request.pk),
    }
    async_task(
        "billing.tasks.email_send",
        {
            "subject": " ".join(
                render_to_string(
                    "emails/staff/billing_request_escalated_subject.txt", context
                ).split()
            ),
            "body": render_to_string("emails/staff/billing_request_escalated.txt", context),
            "html": render_to_string("emails/staff/billing_request_escalated.html", context),
            "to": recipients,
        },
    )
