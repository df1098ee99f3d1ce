"""Row locks of the usage app, in the lock order of billing/locks.py."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.locks import rows_lock
from usage.models import UsageCounter


def usage_counter_lock(rows: QuerySet[UsageCounter] | None = None) -> QuerySet[UsageCounter]:
    return rows_lock(UsageCounter.objects.all() if rows is None else rows)
