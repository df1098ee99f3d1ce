"""Every row lock (`SELECT … FOR UPDATE`), one function per model, and the one order in which
a transaction takes them.

The lock order. A transaction that holds a row of one kind takes rows of the kinds below
it only; taking again a row it already holds is always fine.

0. billing.BillingRequest: a billing request, decided or escalated. Its decision then
   refunds a charge or credits the invoice, below.
1. payments.Collection: an invoice's collection. Every payment of the invoice takes it
   first (a charge, a bank transfer, a Stripe webhook, the reminder run), and a charge holds
   it across the processor's call, so the two never run at once.
2. payments.PaymentAttempt: a charge being refunded.
3. payments.PaymentMethod: an organization's methods, made default, reordered or removed.
4. billing.Invoice: finalized, voided, paid or credited.
5. billing.Subscription: its status, plan and periods: quota checks, renewals, plan
   changes, cancellation, the retention purge.
6. usage.UsageCounter: a month's storage level, read before and after a storage report so
   the alerts see what it crossed. (Otherwise counters are written by single UPDATEs in
   (organization, month) order, after the subscription when a renewal closes a month.)
7. billing.Discount: a coupon's use, counted on an invoice.
8. billing.Organization: its credit balance, spent by an invoice; its list of payment
   methods, grown by one; its billing details, changed by an administrator.
9. billing.Plan: the latest version of a plan, while a new version is published.
10. billing.WebhookEndpoint: its signing secret, while it is rotated.
11. billing.Delivery: notices waiting for a daily digest, taken by one worker.

Why this way round: a transaction starts from the row its work is about and takes the rows
that many transactions share (the subscription every quota check takes, the organization)
last and briefly. A charge never holds the subscription during the processor's call, and
usage requests are never kept waiting by one.

Each function returns a queryset that locks the rows it reads (`FOR UPDATE OF` the model's
own table only, never the rows of `select_related` joins); filter it, then read. Jobs that
share work between workers pass `skip_locked=True` (`SKIP LOCKED` where the database has
it): a row another worker holds is left to that worker.

Under DEBUG and in the tests (`BILLING_CHECK_LOCK_ORDER`), every lock is checked against
the locks its transaction already holds, and one taken out of order raises
`LockOrderError`, so an order that could deadlock fails in the suite rather than under load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar
from weakref import WeakKeyDictionary

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet

from billing.models import (
    BillingRequest,
    Delivery,
    Discount,
    Invoice,
    Organization,
    Plan,
    Subscription,
    WebhookEndpoint,
)

LOCK_ORDER = (
    "billing.BillingRequest",
    "payments.Collection",
    "payments.PaymentAttempt",
    "payments.PaymentMethod",
    "billing.Invoice",
    "billing.Subscription",
    "usage.UsageCounter",
    "billing.Discount",
    "billing.Organization",
    "billing.Plan",
    "billing.WebhookEndpoint",
    "billing.Delivery",
)
RANK = {label: rank for rank, label in enumerate(LOCK_ORDER)}

M = TypeVar("M", bound=Model)


class LockOrderError(RuntimeError):
    """A transaction took a row lock out of the lock order: two of them could deadlock."""


def billing_request_lock(
    rows: QuerySet[BillingRequest] | None = None,
) -> QuerySet[BillingRequest]:
    return rows_lock(BillingRequest.objects.all() if rows is None else rows)


def organization_lock(rows: QuerySet[Organization] | None = None) -> QuerySet[Organization]:
    return rows_lock(Organization.objects.all() if rows is None else rows)


def plan_lock(rows: QuerySet[Plan] | None = None) -> QuerySet[Plan]:
    return rows_lock(Plan.objects.all() if rows is None else rows)


def subscription_lock(
    rows: QuerySet[Subscription] | None = None, *, skip_locked: bool = False
) -> QuerySet[Subscription]:
    return rows_lock(Subscription.objects.all() if rows is None else rows, skip_locked=skip_locked)


def invoice_lock(rows: QuerySet[Invoice] | None = None) -> QuerySet[Invoice]:
    return rows_lock(Invoice.objects.all() if rows is None else rows)


def discount_lock(rows: QuerySet[Discount] | None = None) -> QuerySet[Discount]:
    return rows_lock(Discount.objects.all() if rows is None else rows)


def webhook_endpoint_lock(
    rows: QuerySet[WebhookEndpoint] | None = None,
) -> QuerySet[WebhookEndpoint]:
    return rows_lock(WebhookEndpoint.objects.all() if rows is None else rows)


def delivery_lock(
    rows: QuerySet[Delivery] | None = None, *, skip_locked: bool = False
) -> QuerySet[Delivery]:
    return rows_lock(Delivery.objects.all() if rows is None else rows, skip_locked=skip_locked)


def rows_lock(rows: QuerySet[M], *, skip_locked: bool = False) -> QuerySet[M]:
    """`rows`, locked when read. For the lock functions of each app's models only."""
    label = rows.model._meta.label
    if label not in RANK:
        raise LockOrderError(f"{label} has no place in the lock order of billing/locks.py.")
    skip_locked = skip_locked and connections[rows.db].features.has_select_for_update_skip_locked
    locked = rows.select_for_update(of=("self",), skip_locked=skip_locked)
    locked.__class__ = _LockedRows
    return locked


class _LockedRows(QuerySet):
    """A locking queryset whose rows, once read, are checked against the lock order."""

    def _fetch_all(self):
        first_read = self._result_cache is None
        super()._fetch_all()
        if first_read:
            rows = {row.pk for row in self._result_cache if isinstance(row, Model)}
            _check_order(self.db, self.model._meta.label, rows)

    def exists(self) -> bool:
        found = super().exists()
        _check_order(self.db, self.model._meta.label, None)
        return found


# --- the order check ----------------------------------------------------------------------


@dataclass
class _Held:
    """The row locks one transaction holds, by model label (None: rows not known by key)."""

    transaction_key: tuple
    committed: object  # a no-op queued on commit: gone from the queue once the transaction ends
    rows: dict[str, set] = field(default_factory=dict)
    last: str | None = None  # the latest kind in the lock order taken so far


_HELD: WeakKeyDictionary[BaseDatabaseWrapper, _Held] = WeakKeyDictionary()


def _transaction_key(connection: BaseDatabaseWrapper) -> tuple:
    """What tells one transaction from the next on this connection: inside a test case, the
    savepoints up to the one the code's own outermost atomic block opened (the test's own
    blocks only wrap the code under test); outside one, nothing."""
    blocks = connection.atomic_blocks
    own = next(
        (depth for depth, block in enumerate(blocks) if not block._from_testcase), len(blocks)
    )
    return tuple(connection.savepoint_ids[:own])


def _still_open(held: _Held, connection: BaseDatabaseWrapper, key: tuple) -> bool:
    if held.transaction_key != key:
        return False
    if key:  # a savepoint of its own tells this transaction apart
        return True
    return any(hook is held.committed for _, hook, _ in connection.run_on_commit)


def _check_order(using: str, label: str, rows: set | None) -> None:
    if not settings.BILLING_CHECK_LOCK_ORDER:
        return
    connection = connections[using]
    if not connection.in_atomic_block:
        return  # Django refuses the lock itself
    key = _transaction_key(connection)
    held = _HELD.get(connection)
    if held is None or not _still_open(held, connection, key):
        held = _Held(transaction_key=key, committed=lambda: None)
        if not key:
            connection.on_commit(held.committed)
        _HELD[connection] = held
    taken = held.rows.setdefault(label, set())
    new = {None} if rows is None else rows - taken
    if new and held.last is not None and RANK[label] < RANK[held.last]:
        raise LockOrderError(
            f"{label} locked while holding {held.last}: the lock order is "
            f"{' → '.join(LOCK_ORDER)} (billing/locks.py)."
        )
    taken |= rows or set()
    if held.last is None or RANK[label] > RANK[held.last]:
        held.last = label
