"""Queueing a django-q2 task about rows being written, so that it only ever runs on rows that
committed.

With django-q2's ORM broker on the same database as the rows (the default, and production
without Redis), the task is written in their transaction, as a row like them: it commits with
them, or not at all, and costs no commit of its own. With any other broker (Redis), or when
tasks run at once in the caller's thread (django-q2's `sync`), it is queued once the
transaction has committed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils.module_loading import import_string
from django_q.brokers.orm import ORM as OrmBroker
from django_q.conf import Conf


def task_commits_with_transaction(*, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether a task queued now is written in the current transaction on `using`: tasks wait
    for a cluster (they are not run at once) in django-q2's ORM broker on that database, named
    as the broker class (settings always name it). Read from the configuration, not from a
    broker made for the purpose: this is asked once per invoice."""
    if Conf.SYNC or using != Conf.ORM or not Conf.BROKER_CLASS:
        return False
    return issubclass(import_string(Conf.BROKER_CLASS), OrmBroker)


def task_queue(enqueue: Callable[[], object], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Queue a task (`enqueue` calls django-q2's `async_task`) for the rows the current
    transaction on `using` writes: in that transaction when the queue is a table of the same
    database, otherwise once it commits. Either way the task never sees rows rolled back."""
    if task_commits_with_transaction(using=using):
        enqueue()
    else:
        transaction.on_commit(enqueue, using=using, robust=True)
