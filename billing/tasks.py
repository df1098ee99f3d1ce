"""django-q2 entry points: thin adapters that call one service each."""

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from billing.lifecycle.renewal_reminders import renewal_reminders_send_if_needed
from billing.lifecycle.renewals import renew_subscriptions_if_needed
from billing.lifecycle.services import (
    revenue_snapshot_if_needed,
    usage_data_purge_if_needed,
)
from billing.models import Channel, Delivery, Invoice
from billing.notifications import emails, invoice_notices
from billing.notifications import services as notification_services
from billing.notifications.digests import digests_send_if_needed
from billing.subscriptions.services import trial_reminders_send_if_needed
from billing.support.services import billing_requests_escalate_if_needed

logger = logging.getLogger(__name__)


def renew_subscriptions() -> int:
    return renew_subscriptions_if_needed(now=timezone.now())


def invoice_issued_notify(invoice_id: int) -> None:
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    invoice_notices.invoice_issued_notify(invoice=invoice)


def email_send(message: dict, attempt: int = 1) -> str:
    """Send an e-mail that belongs to no single notice (the daily digest)."""
    try:
        emails.email_send(message=message)
    except emails.MAIL_ERRORS as error:
        return _try_again_later(
            "billing.tasks.email_send",
            attempt,
            error,
            settings.EMAIL_RETRY_MINUTES,
            message=message,
        )
    return "sent"


def notification_deliver(delivery_id: int, attempt: int = 1) -> str:
    """One attempt at delivering a notice on one channel; a failure that may pass (a mail
    server or receiver that is down) is tried again after the channel's next wait."""
    channel = Delivery.objects.values_list("channel", flat=True).get(pk=delivery_id)
    waits = (
        settings.WEBHOOK_RETRY_MINUTES
        if channel == Channel.WEBHOOK
        else settings.EMAIL_RETRY_MINUTES
    )
    now = timezone.now()
    outcome = notification_services.delivery_attempt(
        delivery_id=delivery_id, attempts_left=attempt <= len(waits), now=now
    )
    if outcome.sent:
        return "sent"
    if not outcome.worth_retrying:
        return f"failed: {outcome.error}"
    if attempt <= len(waits):
        notification_services.delivery_next_attempt_set(
            delivery_id=delivery_id, at=now + dt.timedelta(minutes=waits[attempt - 1])
        )
    return _try_again_later(
        "billing.tasks.notification_deliver", attempt, outcome.error, waits, delivery_id=delivery_id
    )


def _try_again_later(task: str, attempt: int, error, waits: list[int], **kwargs) -> str:
    """Run `task` again after the next of `waits` (minutes), as a one-off django-q2 schedule
    (its own retry would repeat every failed task of the cluster, at one fixed interval);
    after the last one, give up and log it. Returns what happened, which django-q2 keeps as
    the task's result."""
    if attempt > len(waits):
        logger.error("Giving up %s after %d attempts: %s", task, attempt, error)
        return f"given up after {attempt} attempts: {error}"
    next_run = timezone.now() + dt.timedelta(minutes=waits[attempt - 1])
    schedule(
        task,
        attempt=attempt + 1,
        **kwargs,
        schedule_type=Schedule.ONCE,
        repeats=-1,  # a ONCE schedule deletes itself once it has run
        next_run=next_run,
    )
    logger.warning("%s failed (%s); attempt %d at %s", task, error, attempt + 1, next_run)
    return f"failed ({error}); attempt {attempt + 1} at {next_run:%Y-%m-%d %H:%M} UTC"


def trial_reminders_send() -> int:
    return trial_reminders_send_if_needed(now=timezone.now())


def usage_data_purge() -> int:
    return usage_data_purge_if_needed(now=timezone.now())


def notification_digests_send() -> int:
    return digests_send_if_needed(now=timezone.now())


def renewal_reminders_send() -> int:
    return renewal_reminders_send_if_needed(now=timezone.now())


def billing_requests_escalate() -> int:
    return billing_requests_escalate_if_needed(now=timezone.now())


def revenue_snapshot() -> int:
    return revenue_snapshot_if_needed(now=timezone.now())
