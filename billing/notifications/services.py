"""The one way every notice leaves the product.

`notification_send` is called where something happened, usually inside that transaction.
Once the transaction commits (at once outside one) the notice is rendered, so it tells what
was committed, and recorded once per organization and dedup key (a unique constraint: a
re-run job, or two processes at once, find it there and stop). Its deliveries (an e-mail to
the recipients, a POST to each webhook endpoint), as the organization's preferences ask, are
django-q2 tasks queued after that: a mail server or webhook receiver that is down delays its
own delivery and nothing else, and never undoes or blocks billing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from billing.accounts.services import Actor, staff_action_begin
from billing.errors import BillingError, ErrorCode
from billing.locks import organization_lock, webhook_endpoint_lock
from billing.models import (
    Channel,
    Delivery,
    Invoice,
    Notification,
    NotificationPreference,
    NotificationRead,
    NotificationRecipient,
    Organization,
    WebhookEndpoint,
)
from billing.notifications import emails, kinds, webhooks
from billing.notifications.selectors import email_recipients, preference_modes

Mode = NotificationPreference.Mode


def notification_send(
    *,
    organization: Organization,
    kind: str,
    dedup_key: str,
    template: str,
    context: dict | Callable[[], dict],
    link: str | None = None,
    link_label: str = "Open your billing page",
    data: dict | Callable[[], dict] | None = None,
    rendered_when_sent: bool = False,
) -> None:
    """Send a notice once the current transaction commits. A `context` (or `data`) that is a
    function is read then, so reads stay out of the transaction; facts that may change before
    then are read by the caller and closed over. The link defaults to the organization's
    billing overview. `rendered_when_sent`: the e-mail is rendered again when it is sent (the
    invoice, which tells how it stands then)."""

    def record() -> None:
        message = emails.email_render(
            organization=organization,
            template=template,
            context=context() if callable(context) else context,
            link=link or emails.overview_url(organization),
            link_label=link_label,
        )
        notification_record(
            organization=organization,
            kind=kind,
            dedup_key=dedup_key,
            message=message,
            data=(data() if callable(data) else data) or {},
            keep_email=not rendered_when_sent,
            link=link or emails.overview_url(organization),
            link_label=link_label,
            now=timezone.now(),
        )

    transaction.on_commit(record, robust=True)


def _title(subject: str, organization: Organization) -> str:
    """The subject without the organization's name, which the notification center shows."""
    return subject.removesuffix(f" – {organization.name}")


def notification_record(
    *,
    organization: Organization,
    kind: str,
    dedup_key: str,
    message: dict,
    data: dict,
    keep_email: bool,
    link: str,
    link_label: str,
    now: dt.datetime,
) -> Notification | None:
    """Record a rendered notice and its deliveries, once per dedup key; None when it was
    recorded before. The deliveries are queued when this commits."""
    modes = preference_modes(organization=organization, kind=kind)
    with transaction.atomic():
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    organization=organization,
                    kind=kind,
                    dedup_key=dedup_key,
                    title=_title(message["subject"], organization),
                    summary=message["summary"],
                    link=link,
                    link_label=link_label,
                    data=data,
                    email=(
                        {key: message[key] for key in ("subject", "body", "html")}
                        if keep_email
                        else None
                    ),
                    in_app=modes[Channel.IN_APP] != Mode.OFF,
                    created_at=now,
                )
        except IntegrityError:
            return None
        deliveries = []
        recipients = email_recipients(organization=organization)
        if modes[Channel.EMAIL] != Mode.OFF and recipients:
            deliveries.append(
                Delivery(
                    notification=notification,
                    channel=Channel.EMAIL,
                    recipients=recipients,
                    status=(
                        Delivery.Status.DIGEST
                        if modes[Channel.EMAIL] == Mode.DIGEST
                        else Delivery.Status.PENDING
                    ),
                    created_at=now,
                )
            )
        if modes[Channel.WEBHOOK] != Mode.OFF:
            deliveries += [
                Delivery(
                    notification=notification,
                    channel=Channel.WEBHOOK,
                    endpoint=endpoint,
                    created_at=now,
                )
                for endpoint in organization.webhook_endpoints.filter(is_active=True)
            ]
        for delivery in Delivery.objects.bulk_create(deliveries):
            if delivery.status == Delivery.Status.PENDING:
                delivery_queue(delivery=delivery)
    return notification


def delivery_queue(*, delivery: Delivery) -> None:
    """Queue the delivery's next attempt as a task once the current transaction commits."""
    transaction.on_commit(
        lambda: async_task("billing.tasks.notification_deliver", delivery.pk), robust=True
    )


@dataclass(frozen=True)
class Attempt:
    sent: bool
    worth_retrying: bool = False
    error: str = ""
    response_code: int | None = None


def delivery_attempt(*, delivery_id: int, attempts_left: bool, now: dt.datetime) -> Attempt:
    """Make one attempt at a delivery and record it: sent, failed for now (when
    `attempts_left` and the failure may pass), or failed for good."""
    delivery = Delivery.objects.select_related("notification__organization", "endpoint").get(
        pk=delivery_id
    )
    if delivery.status == Delivery.Status.SENT:
        return Attempt(sent=True)
    if delivery.channel == Channel.EMAIL:
        attempt = _email_attempt(delivery)
    else:
        attempt = _webhook_attempt(delivery, now)
    if attempt.sent:
        status = Delivery.Status.SENT
    elif attempt.worth_retrying and attempts_left:
        status = Delivery.Status.RETRYING
    else:
        status = Delivery.Status.FAILED
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempts=delivery.attempts + 1,
        last_attempt_at=now,
        sent_at=now if attempt.sent else None,
        error=attempt.error[:500],
        response_code=attempt.response_code,
    )
    return attempt


def delivery_next_attempt_set(*, delivery_id: int, at: dt.datetime) -> None:
    Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=at)


def _email_attempt(delivery: Delivery) -> Attempt:
    notification = delivery.notification
    attachments = []
    if notification.email is not None:
        message = {**notification.email, "to": delivery.recipients}
    else:  # an invoice, rendered as it stands now, with its PDF
        # Imported here: the billing services import this module to send their notices.
        from billing.invoicing.services import invoice_pdf_if_needed

        invoice = Invoice.objects.select_related("organization").get(
            pk=notification.data["invoice_id"]
        )
        message = {**emails.invoice_email(invoice=invoice), "to": delivery.recipients}
        attachments = [
            (f"{invoice.number}.pdf", invoice_pdf_if_needed(invoice=invoice), "application/pdf")
        ]
    try:
        emails.email_send(message=message, attachments=attachments)
    except emails.MAIL_ERRORS as error:
        return Attempt(sent=False, worth_retrying=True, error=str(error))
    return Attempt(sent=True)


def _webhook_attempt(delivery: Delivery, now: dt.datetime) -> Attempt:
    endpoint = delivery.endpoint
    if endpoint is None or not endpoint.is_active:
        return Attempt(sent=False, error="The webhook endpoint was removed.")
    result = webhooks.webhook_post(endpoint=endpoint, notification=delivery.notification, now=now)
    return Attempt(
        sent=result.ok,
        worth_retrying=result.worth_retrying,
        error=result.error,
        response_code=result.status,
    )


def delivery_redeliver(
    *, delivery: Delivery, actor: Actor = None, now: dt.datetime | None = None
) -> Delivery:
    """Send a delivery again (staff or the organization's administrator asked): a new
    delivery of the same notice on the same channel, so the log keeps both."""
    now = now or timezone.now()
    with transaction.atomic():
        staff_action_begin(
            actor=actor,
            permission="billing.resend_notification",
            action="Resending a notice",
            subject=delivery.notification,
            organization_id=delivery.notification.organization_id,
            admins_may=True,
            changes={"channel": delivery.channel},
        )
        again = Delivery.objects.create(
            notification=delivery.notification,
            channel=delivery.channel,
            endpoint=delivery.endpoint,
            recipients=delivery.recipients,
            created_at=now,
        )
        delivery_queue(delivery=again)
    return again


# --- read state, preferences ---------------------------------------------------------------


def notifications_mark_read(
    *,
    organization: Organization,
    user: AbstractBaseUser,
    notification_ids: Iterable[int] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Mark the person's notices read: those named, or all. Returns how many were unread."""
    now = now or timezone.now()
    unread = Notification.objects.filter(organization=organization, in_app=True).exclude(
        reads__user=user
    )
    if notification_ids is not None:
        unread = unread.filter(pk__in=list(notification_ids))
    reads = NotificationRead.objects.bulk_create(
        [
            NotificationRead(notification_id=pk, user=user, read_at=now)
            for pk in unread.values_list("pk", flat=True)
        ],
        ignore_conflicts=True,
    )
    return len(reads)


def notification_preferences_set(
    *,
    organization: Organization,
    modes: dict[tuple[str, str], str],
    recipient_ids: Iterable[int],
    audience: str = Organization.NoticeAudience.CONTACTS_AND_MEMBERS,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Store the organization's choices: a mode per kind and channel (a default is stored as
    no row), the members who receive the e-mails, and whether the billing contacts receive
    them too (the change is kept in the organization's history). Notices e-mailed only to
    chosen members need at least one, or nobody would read them."""
    now = now or timezone.now()
    recipient_ids = set(recipient_ids)
    if audience == Organization.NoticeAudience.CHOSEN_MEMBERS and not recipient_ids:
        raise BillingError(
            ErrorCode.RECIPIENTS_REQUIRED,
            "Choose at least one member to receive the e-mails, or send them to the billing "
            "contacts too.",
        )
    with transaction.atomic():
        locked = organization_lock().get(pk=organization.pk)
        if locked.notice_audience != audience:
            locked.notice_audience = audience
            locked._history_user = actor
            locked.save(update_fields=["notice_audience"])
            organization.notice_audience = audience
        for (kind, channel), mode in modes.items():
            if mode == kinds.default_mode(kind, channel):
                NotificationPreference.objects.filter(
                    organization=organization, kind=kind, channel=channel
                ).delete()
                continue
            NotificationPreference.objects.update_or_create(
                organization=organization,
                kind=kind,
                channel=channel,
                defaults={"mode": mode, "updated_at": now, "updated_by": actor},
            )
        NotificationRecipient.objects.filter(organization=organization).exclude(
            user_id__in=recipient_ids
        ).delete()
        NotificationRecipient.objects.bulk_create(
            [
                NotificationRecipient(organization=organization, user_id=user_id)
                for user_id in recipient_ids
            ],
            ignore_conflicts=True,
        )


# --- webhook endpoints ---------------------------------------------------------------------


def _secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_endpoint_create(
    *,
    organization: Organization,
    url: str,
    format: str = WebhookEndpoint.Format.SIGNED_JSON,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> WebhookEndpoint:
    """Add an endpoint once its address passes the checks every delivery makes again."""
    now = now or timezone.now()
    try:
        webhooks.destination_check(url)
    except webhooks.DestinationRefused as error:
        raise BillingError(ErrorCode.WEBHOOK_URL_REFUSED, str(error), field="url") from error
    return WebhookEndpoint.objects.create(
        organization=organization,
        url=url,
        format=format,
        secret=_secret(),
        created_at=now,
        created_by=actor,
    )


def webhook_endpoint_remove(*, endpoint: WebhookEndpoint) -> None:
    """Stop posting to the endpoint; its delivery log stays."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)


def webhook_secret_rotate(
    *, endpoint: WebhookEndpoint, now: dt.datetime | None = None
) -> WebhookEndpoint:
    """A new signing secret. Deliveries carry a signature with the old one as well for
    `WEBHOOK_SECRET_GRACE_HOURS`, while the receiver switches."""
    now = now or timezone.now()
    with transaction.atomic():
        endpoint = webhook_endpoint_lock().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + dt.timedelta(
            hours=settings.WEBHOOK_SECRET_GRACE_HOURS
        )
        endpoint.secret = _secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint


def webhook_test_send(*, endpoint: WebhookEndpoint, now: dt.datetime | None = None) -> Delivery:
    """A test event to one endpoint, logged like any delivery and not shown in the app."""
    now = now or timezone.now()
    organization = endpoint.organization
    with transaction.atomic():
        notification = Notification.objects.create(
            organization=organization,
            kind=Notification.Kind.WEBHOOK_TEST,
            dedup_key=f"webhook-test:{endpoint.pk}:{now.isoformat(timespec='microseconds')}",
            title="Test event",
            summary=f"A test event for {organization.name}'s webhook endpoint. Nothing happened.",
            link=emails.absolute_url("notifications:settings", organization.slug),
            link_label="Notification settings",
            data={"endpoint": endpoint.url},
            in_app=False,
            created_at=now,
        )
        delivery = Delivery.objects.create(
            notification=notification, channel=Channel.WEBHOOK, endpoint=endpoint, created_at=now
        )
        delivery_queue(delivery=delivery)
    return delivery
