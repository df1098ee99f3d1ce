"""Every write of the payments app: payment methods, collecting invoices, dunning, bank
transfers and refunds."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone
from djmoney.money import Money

from billing import locks as billing_locks
from billing.accounts.services import Actor, staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.invoicing import services as invoicing_services
from billing.models import Invoice, Organization, Subscription
from billing.money import round_money
from billing.subscriptions import services as subscription_services
from billing.support import selectors as support_selectors
from payments import locks, notifications, selectors
from payments.gateways import AttachedMethod, ChargeResult, decline_message, gateway_for
from payments.models import Collection, PaymentAttempt, PaymentMethod, Refund

# --- payment methods ----------------------------------------------------------------------


def _live_methods(organization_id: int):
    return PaymentMethod.objects.filter(organization_id=organization_id, removed_at__isnull=True)


@transaction.atomic
def payment_method_add(
    *,
    organization: Organization,
    processor: str,
    attached: AttachedMethod,
    billing_name: str = "",
    billing_address: str = "",
    billing_postal_code: str = "",
    billing_country: str = "",
    make_default: bool = False,
    now: dt.datetime | None = None,
) -> PaymentMethod:
    """List a method the processor has already validated. The first one is the default; the
    others are backups, tried in the order they were added until reordered. The same method
    twice is refused: a backup identical to the default would only be declined twice."""
    now = now or timezone.now()
    billing_locks.organization_lock().filter(pk=organization.pk).first()
    existing = _live_methods(organization.pk)
    duplicate = _same_method(existing.filter(processor=processor), attached)
    if duplicate is not None:
        raise BillingError(
            ErrorCode.DUPLICATE_METHOD,
            f"{duplicate.label}{f' (expires {duplicate.expiry})' if duplicate.expiry else ''} "
            "is already on file: nothing was added.",
            payment_method_id=duplicate.pk,
        )
    is_first = not existing.exists()
    if make_default and not is_first:
        existing.filter(is_default=True).update(is_default=False)
    return PaymentMethod.objects.create(
        organization=organization,
        processor=processor,
        token=attached.token,
        kind=attached.kind,
        brand=attached.brand,
        last4=attached.last4,
        exp_month=attached.exp_month,
        exp_year=attached.exp_year,
        fingerprint=attached.fingerprint,
        billing_name=billing_name,
        billing_address=billing_address,
        billing_postal_code=billing_postal_code,
        billing_country=billing_country,
        is_default=is_first or make_default,
        priority=(existing.aggregate(last=Max("priority"))["last"] or 0) + 1,
        created_at=now,
    )


def _same_method(methods, attached: AttachedMethod) -> PaymentMethod | None:
    """The method on file that `attached` is: the same fingerprint when the processor gives
    one (Stripe), otherwise the same kind, brand, last four digits and expiry (the sandbox)."""
    if attached.fingerprint:
        return methods.filter(fingerprint=attached.fingerprint).first()
    return methods.filter(
        kind=attached.kind,
        brand=attached.brand,
        last4=attached.last4,
        exp_month=attached.exp_month,
        exp_year=attached.exp_year,
    ).first()


@transaction.atomic
def payment_method_set_default(*, payment_method: PaymentMethod) -> PaymentMethod:
    methods = locks.payment_method_lock(_live_methods(payment_method.organization_id))
    if not methods.filter(pk=payment_method.pk).exists():
        raise BillingError(ErrorCode.METHOD_REMOVED)
    methods.filter(is_default=True).exclude(pk=payment_method.pk).update(is_default=False)
    methods.filter(pk=payment_method.pk).update(is_default=True)
    payment_method.refresh_from_db()
    return payment_method


@transaction.atomic
def payment_method_reorder(*, organization: Organization, method_ids: list[int]) -> None:
    """Set the order in which backups are tried: `method_ids` first to last."""
    methods = {
        method.pk: method for method in locks.payment_method_lock(_live_methods(organization.pk))
    }
    if set(method_ids) != set(methods):
        raise BillingError(ErrorCode.INVALID_ORDER)
    for priority, method_id in enumerate(method_ids, start=1):
        PaymentMethod.objects.filter(pk=method_id).update(priority=priority)


@transaction.atomic
def payment_method_update(
    *,
    payment_method: PaymentMethod,
    exp_month: int | None,
    exp_year: int | None,
    billing_name: str,
    billing_address: str,
    billing_postal_code: str,
    billing_country: str,
) -> PaymentMethod:
    """Change the expiry or billing address in place; a new number is a new method."""
    if payment_method.kind == PaymentMethod.Kind.CARD and (not exp_month or not exp_year):
        raise BillingError(ErrorCode.EXPIRY_REQUIRED)
    payment_method.exp_month, payment_method.exp_year = exp_month, exp_year
    payment_method.billing_name = billing_name
    payment_method.billing_address = billing_address
    payment_method.billing_postal_code = billing_postal_code
    payment_method.billing_country = billing_country
    payment_method.full_clean()
    payment_method.save()
    return payment_method


def _needs_payment(organization_id: int) -> bool:
    return (
        Subscription.objects.filter(organization_id=organization_id)
        .exclude(status=Subscription.Status.CANCELED)
        .filter(organization__payment_terms=Organization.PaymentTerms.AUTOMATIC)
        .exists()
    )


@transaction.atomic
def payment_method_remove(*, payment_method: PaymentMethod, now: dt.datetime | None = None) -> None:
    """Remove a method. Refused for the last one while a subscription needs paying, and for
    the default while others remain (choose the new default first)."""
    methods = locks.payment_method_lock(_live_methods(payment_method.organization_id))
    payment_method = methods.get(pk=payment_method.pk)  # as stored now, not as first read
    others = methods.exclude(pk=payment_method.pk)
    if not others.exists() and _needs_payment(payment_method.organization_id):
        raise BillingError(ErrorCode.LAST_METHOD)
    if payment_method.is_default and others.exists():
        raise BillingError(ErrorCode.DEFAULT_METHOD)
    methods.filter(pk=payment_method.pk).update(removed_at=now or timezone.now(), is_default=False)


# --- collecting invoices ------------------------------------------------------------------


def _retry_days() -> list[int]:
    return list(settings.PAYMENT_RETRY_DAYS)


def _charge(invoice: Invoice, method: PaymentMethod, key: str, now: dt.datetime) -> PaymentAttempt:
    """One charge of one method. The key comes from our rows, so a repeat of the same try
    (a crash, a task run twice) gets the processor's first answer instead of a new charge."""
    attempt = PaymentAttempt.objects.filter(idempotency_key=key).first()
    if attempt is not None and attempt.status != PaymentAttempt.Status.PENDING:
        return attempt
    attempt = attempt or PaymentAttempt.objects.create(
        invoice=invoice,
        payment_method=method,
        amount=invoice.total,
        idempotency_key=key,
        attempted_at=now,
    )
    result: ChargeResult = gateway_for(method.processor).charge(
        token=method.token,
        amount=invoice.total,
        idempotency_key=key,
        description=f"Invoice {invoice.number}",
    )
    if result.failure_code == "processing":
        # A bank debit settles days later: the webhook reports the outcome.
        attempt.processor_reference = result.reference
        attempt.failure_code = "processing"
        attempt.failure_message = "The bank debit is processing; it settles within a few days."
        attempt.save(update_fields=["processor_reference", "failure_code", "failure_message"])
        return attempt
    attempt.status = (
        PaymentAttempt.Status.SUCCEEDED if result.succeeded else PaymentAttempt.Status.FAILED
    )
    attempt.processor_reference = result.reference
    attempt.failure_code = result.failure_code
    attempt.failure_message = result.failure_message
    attempt.completed_at = now
    attempt.save()
    return attempt


def _reinstate_if_settled(
    subscription: Subscription | None, invoice: Invoice, now: dt.datetime
) -> None:
    """Service follows what is still unpaid. A payment restores it at once, unless another
    invoice still suspends it (unpaid after every retry, or past its grace period); while
    others are only being retried or overdue, service is back on and the subscription stays
    past due; with nothing left, it is active."""
    if subscription is None or subscription.status not in (
        Subscription.Status.PAST_DUE,
        Subscription.Status.SUSPENDED,
    ):
        return
    owed = selectors.standing_owed(subscription=subscription, now=now)
    if owed == Subscription.Status.SUSPENDED or owed == subscription.status:
        return
    subscription_services.subscription_set_status(
        subscription=subscription,
        status=owed or Subscription.Status.ACTIVE,
        reason=f"Payment received for {invoice.number}"
        + ("; other invoices are still unpaid" if owed else ""),
        now=now,
    )


def invoice_settle(*, attempt: PaymentAttempt, now: dt.datetime) -> None:
    """A successful payment: the invoice is paid, its collection closed, the subscription
    reinstated, and a receipt sent after commit. Collection, bank transfers and the Stripe
    webhook all settle through here."""
    invoice = attempt.invoice
    description = attempt.payment_method.label if attempt.payment_method else "Bank transfer"
    invoicing_services.invoice_mark_paid(
        invoice=invoice,
        paid_at=now,
        reference=attempt.processor_reference,
        method_description=description,
    )
    Collection.objects.filter(invoice=invoice).update(
        state=Collection.State.PAID, next_retry_at=None
    )
    _reinstate_if_settled(invoice.subscription, invoice, now)
    notifications.send_receipt(attempt=attempt)


def _record_failure(
    invoice: Invoice, collection: Collection, message: str, now: dt.datetime
) -> None:
    """Advance the dunning schedule: past due while retries remain, suspended after the last."""
    collection.failures += 1
    collection.first_failed_at = collection.first_failed_at or now
    collection.last_failure_message = message
    schedule = _retry_days()
    subscription = invoice.subscription
    if collection.failures <= len(schedule):
        collection.state = Collection.State.RETRYING
        collection.next_retry_at = collection.first_failed_at + dt.timedelta(
            days=schedule[collection.failures - 1]
        )
        if subscription and subscription.status == Subscription.Status.ACTIVE:
            subscription_services.subscription_set_status(
                subscription=subscription,
                status=Subscription.Status.PAST_DUE,
                reason=f"Payment of {invoice.number} failed: {message}",
                now=now,
            )
    else:
        collection.state = Collection.State.EXHAUSTED
        collection.next_retry_at = None
        if subscription and subscription.status == Subscription.Status.ACTIVE:  # no retries set
            subscription_services.subscription_set_status(
                subscription=subscription,
                status=Subscription.Status.PAST_DUE,
                reason=f"Payment of {invoice.number} failed: {message}",
                now=now,
            )
            subscription.status = Subscription.Status.PAST_DUE
        if subscription and subscription.status == Subscription.Status.PAST_DUE:
            subscription_services.subscription_set_status(
                subscription=subscription,
                status=Subscription.Status.SUSPENDED,
                reason=f"Every retry to collect {invoice.number} failed",
                now=now,
            )
    collection.save()
    notifications.send_payment_failed(collection=collection, attempted_at=now)


@transaction.atomic
def invoice_collect(
    *,
    invoice: Invoice,
    now: dt.datetime | None = None,
    on_request: bool = False,
    actor: Actor = None,
) -> PaymentAttempt | None:
    """Charge an open invoice: the default method, then the backups in priority order, until
    one succeeds. Returns the successful attempt, or None.

    The invoice's collection row is locked for the whole try, so workers running it twice
    take turns and the second finds the invoice paid. A scheduled try that fails advances
    the dunning schedule; one the customer asked for (`on_request`, "pay now") does not.
    """
    staff_action_begin(
        actor=actor,
        permission="billing.retry_payment",
        action="Retrying a payment",
        subject=invoice,
        organization_id=invoice.organization_id,
        admins_may=True,
    )
    now = now or timezone.now()
    collection, _ = Collection.objects.get_or_create(invoice=invoice)
    collection = locks.collection_lock().get(pk=collection.pk)
    invoice = Invoice.objects.select_related("organization", "subscription").get(pk=invoice.pk)
    paid = invoice.payment_attempts.filter(status=PaymentAttempt.Status.SUCCEEDED).first()
    if paid is not None or invoice.status != Invoice.Status.OPEN:
        return paid
    if on_request:
        asked = invoice.payment_attempts.filter(idempotency_key__contains="-now").count()
        round_label = f"now{asked + 1}"
    else:
        round_label = f"try{collection.failures}"
    methods = list(
        _live_methods(invoice.organization_id)
        .filter(processor=settings.PAYMENT_GATEWAY)
        .order_by("-is_default", "priority", "pk")
    )
    message = "No payment method on file."
    for method in methods:
        attempt = _charge(
            invoice, method, f"invoice-{invoice.pk}-{round_label}-method-{method.pk}", now
        )
        if attempt.status == PaymentAttempt.Status.SUCCEEDED:
            invoice_settle(attempt=attempt, now=now)
            return attempt
        if attempt.status == PaymentAttempt.Status.PENDING:
            return None  # still processing: charging another method could make it pay twice
        message = attempt.failure_message or decline_message(attempt.failure_code)
    if not on_request:
        _record_failure(invoice, collection, message, now)
    return None


def payment_retries_if_needed(*, now: dt.datetime | None = None) -> int:
    """The scheduled job: try again every invoice whose retry is due. Returns how many paid.
    An invoice under dispute waits (`BILLING_DISPUTE_PAUSES_DUNNING`): its retry, due
    meanwhile, runs at the first run after the dispute is decided."""
    now = now or timezone.now()
    due = Collection.objects.filter(
        state=Collection.State.RETRYING, next_retry_at__lte=now, invoice__status=Invoice.Status.OPEN
    )
    if settings.BILLING_DISPUTE_PAUSES_DUNNING:
        due = due.exclude(invoice_id__in=support_selectors.invoices_under_dispute())
    due = due.values_list("invoice_id", flat=True)
    return sum(
        1
        for invoice in Invoice.objects.filter(pk__in=list(due)).order_by("pk")
        if invoice_collect(invoice=invoice, now=now) is not None
    )


@transaction.atomic
def invoice_record_bank_transfer(
    *,
    invoice: Invoice,
    reference: str,
    received_at: dt.datetime,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> PaymentAttempt:
    """Staff record a bank transfer that paid an invoice (organizations paying by invoice)."""
    staff_action_begin(
        actor=actor,
        permission="billing.record_bank_transfer",
        action="Recording a bank transfer",
        subject=invoice,
        organization_id=invoice.organization_id,
        reason=reference,
        changes={"received": received_at},
    )
    now = now or timezone.now()
    if not reference.strip():
        raise BillingError(ErrorCode.REFERENCE_REQUIRED)
    collection, _ = Collection.objects.get_or_create(invoice=invoice)
    collection = locks.collection_lock().get(pk=collection.pk)
    invoice = Invoice.objects.select_related("subscription").get(pk=invoice.pk)
    if invoice.status != Invoice.Status.OPEN:
        raise BillingError(
            ErrorCode.INVOICE_NOT_OPEN, f"{invoice} is {invoice.get_status_display().lower()}."
        )
    attempt = PaymentAttempt.objects.create(
        invoice=invoice,
        channel=PaymentAttempt.Channel.BANK_TRANSFER,
        amount=invoice.total,
        status=PaymentAttempt.Status.SUCCEEDED,
        idempotency_key=f"invoice-{invoice.pk}-transfer",
        processor_reference=reference,
        attempted_at=received_at,
        completed_at=now,
        recorded_by=actor,
    )
    invoice_settle(attempt=attempt, now=received_at)
    return attempt


@transaction.atomic
def payment_refund(
    *,
    attempt: PaymentAttempt,
    amount: Money,
    reason: str,
    actor: Actor = None,
    now: dt.datetime | None = None,
) -> Refund:
    """Give money back through the processor, documented by a credit note on the invoice."""
    staff_action_begin(
        actor=actor,
        permission="payments.add_refund",
        action="Refunding a payment",
        subject=attempt,
        organization_id=attempt.invoice.organization_id,
        reason=reason,
        changes={"refund": amount},
    )
    now = now or timezone.now()
    attempt = locks.payment_attempt_lock().select_related("payment_method").get(pk=attempt.pk)
    if attempt.status != PaymentAttempt.Status.SUCCEEDED or attempt.payment_method is None:
        raise BillingError(ErrorCode.NOT_REFUNDABLE)
    refunded = attempt.refunds.aggregate(total=Sum("amount"))["total"] or 0
    refundable = round_money(attempt.amount - Money(refunded, attempt.amount.currency))
    if amount.amount <= 0 or amount > refundable:
        raise BillingError(
            ErrorCode.REFUND_TOO_LARGE,
            f"At most {refundable} of this charge can still be refunded.",
        )
    credit_note = invoicing_services.credit_note_issue(
        invoice=attempt.invoice,
        amount=amount,
        reason=reason,
        actor=actor,
        now=now,
        credit_balance=False,
    )
    key = f"refund-{credit_note.number}"
    reference = gateway_for(attempt.payment_method.processor).refund(
        reference=attempt.processor_reference, amount=credit_note.amount, idempotency_key=key
    )
    return Refund.objects.create(
        attempt=attempt,
        credit_note=credit_note,
        amount=credit_note.amount,
        processor_reference=reference,
        idempotency_key=key,
        created_at=now,
        created_by=actor,
    )
