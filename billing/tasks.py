"""django-q2 entry points: thin adapters that call one service each."""

import datetime as dt
import logging
import smtplib

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from billing import notifications
from billing.invoicing.services import invoice_pdf_if_needed
from billing.lifecycle.services import renew_subscriptions_if_needed, usage_data_purge_if_needed
from billing.models import Invoice
from billing.subscriptions.services import trial_reminders_send_if_needed

logger = logging.getLogger(__name__)

# What a mail server that is down or refusing raises: worth another try later. Anything else
# (a template error, say) is a bug that retrying would only repeat.
MAIL_ERRORS = (smtplib.SMTPException, OSError)


def renew_subscriptions() -> int:
    return renew_subscriptions_if_needed(now=timezone.now())


def email_send(message: dict, attempt: int = 1) -> str:
    """Send an e-mail rendered by `notifications.send_to_billing_contacts`."""
    try:
        notifications.email_send(message=message)
    except MAIL_ERRORS as error:
        return _try_again_later("billing.tasks.email_send", attempt, error, message=message)
    return "sent"


def invoice_deliver(invoice_id: int, attempt: int = 1) -> str:
    """Render (once) and e-mail a finalized invoice with its PDF to the billing contacts. The
    e-mail is rendered when it is sent, so it tells how the invoice stands then."""
    invoice = Invoice.objects.select_related("organization").get(pk=invoice_id)
    pdf = invoice_pdf_if_needed(invoice=invoice)
    try:
        notifications.email_send(
            message=notifications.invoice_email(invoice=invoice),
            attachments=[(f"{invoice.number}.pdf", pdf, "application/pdf")],
        )
    except MAIL_ERRORS as error:
        return _try_again_later(
            "billing.tasks.invoice_deliver", attempt, error, invoice_id=invoice_id
        )
    return "sent"


def _try_again_later(task: str, attempt: int, error: Exception, **kwargs) -> str:
    """Run `task` again after the next wait of `EMAIL_RETRY_MINUTES`, as a one-off django-q2
    schedule (its own retry would repeat every failed task of the cluster, at one fixed
    interval); after the last one, give up and log it. Returns what happened, which
    django-q2 keeps as the task's result."""
    waits = settings.EMAIL_RETRY_MINUTES
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
