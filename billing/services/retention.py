"""Retention: an organization's usage data and AI employees are kept for
`DATA_RETENTION_DAYS` after its subscription ends, so it can resubscribe and find them, then
deleted. Invoices, credits and payments are kept for good."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from billing import locks
from billing.models import Subscription
from billing.services.subscriptions import history_reason
from usage import services as usage_services

logger = logging.getLogger(__name__)

CANCELED = Subscription.Status.CANCELED


def _purgeable(cutoff: dt.datetime) -> QuerySet[Subscription]:
    """Canceled, unpurged subscriptions of organizations whose latest subscription ended by
    `cutoff`: none live, none ended more recently."""
    kept = Subscription.objects.filter(
        ~Q(status=CANCELED) | Q(ended_at__gt=cutoff), organization=OuterRef("organization")
    )
    return Subscription.objects.filter(
        status=CANCELED, data_purged_at__isnull=True, ended_at__lte=cutoff
    ).exclude(Exists(kept))


def _lock_purgeable(organization_id: int, cutoff: dt.datetime) -> list[Subscription]:
    """The organization's subscriptions to mark purged, locked; empty if it is no longer due
    or another worker holds them (that worker purges it)."""
    query = _purgeable(cutoff).filter(organization_id=organization_id)
    return list(locks.subscription_lock(query, skip_locked=True))


def _organization_purge(organization_id: int, cutoff: dt.datetime, now: dt.datetime) -> bool:
    with transaction.atomic():
        subscriptions = _lock_purgeable(organization_id, cutoff)
        if not subscriptions:
            return False
        deleted = usage_services.organization_usage_data_delete(organization_id=organization_id)
        # Subscribing takes none of these locks: had the organization resubscribed since it
        # was found due, the deletes may have taken the new subscription's data, so undo them.
        if (
            Subscription.objects.filter(organization_id=organization_id)
            .exclude(status=CANCELED)
            .exists()
        ):
            transaction.set_rollback(True)
            return False
        reason = f"Usage data and AI employees deleted after {settings.DATA_RETENTION_DAYS} days"
        for subscription in subscriptions:
            subscription.data_purged_at = now
            subscription._change_reason = history_reason(reason)
            subscription._history_date = now
            subscription.save(update_fields=["data_purged_at"])
    logger.info("Purged the usage data of organization %s: %s", organization_id, deleted)
    return True


def usage_data_purge_if_needed(*, now: dt.datetime | None = None) -> int:
    """The scheduled job: delete the usage data and AI employees of every organization whose
    last subscription ended `DATA_RETENTION_DAYS` ago, one organization per transaction.
    Returns how many organizations were purged. One failing is logged and does not stop the
    others; a re-run finds nothing left to do."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.DATA_RETENTION_DAYS)
    due = (
        _purgeable(cutoff)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
        .distinct()
    )
    purged = 0
    for organization_id in list(due):
        try:
            purged += _organization_purge(organization_id, cutoff, now)
        except Exception:
            logger.exception(
                "Purging the data of organization %s failed; the next run retries it",
                organization_id,
            )
    return purged
