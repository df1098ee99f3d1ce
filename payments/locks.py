"""Row locks of the payments app, in the lock order of billing/locks.py."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.locks import rows_lock
from payments.models import Collection, PaymentAttempt, PaymentMethod


def collection_lock(rows: QuerySet[Collection] | None = None) -> QuerySet[Collection]:
    return rows_lock(Collection.objects.all() if rows is None else rows)


def payment_attempt_lock(
    rows: QuerySet[PaymentAttempt] | None = None,
) -> QuerySet[PaymentAttempt]:
    return rows_lock(PaymentAttempt.objects.all() if rows is None else rows)


def payment_method_lock(rows: QuerySet[PaymentMethod] | None = None) -> QuerySet[PaymentMethod]:
    return rows_lock(PaymentMethod.objects.all() if rows is None else rows)
