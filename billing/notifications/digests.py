"""The daily digest: notices an organization chose to receive by e-mail once a day, gathered
into one e-mail to their recipients."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django_q.tasks import async_task

from billing.locks import delivery_lock
from billing.models import Channel, Delivery, Notification, Organization
from billing.notifications import emails


def digests_send_if_needed(*, now: dt.datetime) -> int:
    """Send each organization's digest of the notices waiting for it. Returns how many
    digests were sent; a re-run finds nothing waiting."""
    waiting = (
        Delivery.objects.filter(status=Delivery.Status.DIGEST, channel=Channel.EMAIL)
        .values_list("notification__organization_id", flat=True)
        .distinct()
    )
    return sum(_digest_send(organization_id=pk, now=now) for pk in list(waiting))


@transaction.atomic
def _digest_send(*, organization_id: int, now: dt.datetime) -> bool:
    deliveries = list(
        delivery_lock(skip_locked=True)
        .filter(
            status=Delivery.Status.DIGEST,
            channel=Channel.EMAIL,
            notification__organization_id=organization_id,
        )
        .order_by("created_at", "pk")
    )
    if not deliveries:
        return False
    notices = list(
        Notification.objects.filter(pk__in=[d.notification_id for d in deliveries]).order_by(
            "created_at", "pk"
        )
    )
    organization = Organization.objects.get(pk=organization_id)
    recipients = list(
        dict.fromkeys(address for delivery in deliveries for address in delivery.recipients)
    )
    message = emails.email_render(
        organization=organization,
        template="digest",
        context={"notices": notices, "day": now},
        link=emails.absolute_url("notifications:list", organization.slug),
        link_label="Open your notifications",
    )
    Delivery.objects.filter(pk__in=[delivery.pk for delivery in deliveries]).update(
        status=Delivery.Status.SENT, attempts=1, last_attempt_at=now, sent_at=now
    )
    message = {key: message[key] for key in ("subject", "body", "html")} | {"to": recipients}
    transaction.on_commit(lambda: async_task("billing.tasks.email_send", message), robust=True)
    return True
