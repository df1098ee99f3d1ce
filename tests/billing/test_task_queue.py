"""An invoice's task is queued so that it only ever runs on an invoice that committed: in the
renewal's own transaction when the queue is a table of the same database (django-q2's ORM
broker), once it commits with any other broker."""

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ

from billing.notifications import invoice_notices
from billing.task_queue import task_commits_with_transaction
from tests.factories import card
from tests.helpers import renew, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks_wait_in_the_queue(monkeypatch):
    """Tasks are queued for a cluster, as in production, not run at once."""
    monkeypatch.setattr(Conf, "SYNC", False)


@pytest.fixture
def redis_broker(monkeypatch, tasks_wait_in_the_queue):
    """The queue on Redis (`REDIS_URL`): nothing is sent to it, the tasks queued are noted."""
    monkeypatch.setattr(Conf, "BROKER_CLASS", "config.brokers.Redis")
    monkeypatch.setattr(Conf, "ORM", None)
    queued = []
    monkeypatch.setattr(invoice_notices, "async_task", lambda *task: queued.append(task))
    return queued


def queued_tasks() -> list[tuple[str, tuple]]:
    return [(row.task["func"], row.task["args"]) for row in OrmQ.objects.all()]


def test_with_the_orm_broker_the_invoice_and_its_task_commit_together(
    tasks_wait_in_the_queue, django_capture_on_commit_callbacks
):
    # Given a subscription paid by card, due on 1 May
    subscription = subscribe()
    card(subscription.organization)
    OrmQ.objects.all().delete()

    # When it renews
    with django_capture_on_commit_callbacks() as after_commit:
        [invoice] = renew(subscription)

    # Then its charge and notice were queued in the renewal's transaction: nothing waits
    # for the commit to queue it
    assert task_commits_with_transaction()
    assert queued_tasks() == [("payments.tasks.invoice_collect_and_notify", (invoice.pk,))]
    assert after_commit == []


def test_a_renewal_rolled_back_leaves_no_task_in_the_queue(tasks_wait_in_the_queue, monkeypatch):
    # Given a subscription paid by card, due on 1 May
    subscription = subscribe()
    card(subscription.organization)
    OrmQ.objects.all().delete()

    # When its renewal fails after its invoice was issued and its task queued
    def crash(**kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr("usage.costs.services.cost_shares_freeze", crash)
    with pytest.raises(RuntimeError):
        renew(subscription)

    # Then neither the invoice nor its task is left
    assert subscription.invoices.count() == 1
    assert queued_tasks() == []


def test_with_the_redis_broker_the_task_is_queued_once_the_renewal_commits(
    redis_broker, django_capture_on_commit_callbacks
):
    # Given a subscription paid by card, due on 1 May, and the queue on Redis
    subscription = subscribe()
    card(subscription.organization)

    # When it renews
    with django_capture_on_commit_callbacks() as after_commit:
        [invoice] = renew(subscription)

    # Then its task waits for the commit, and is queued then
    assert not task_commits_with_transaction()
    assert redis_broker == []
    for callback in after_commit:
        callback()
    assert redis_broker == [("payments.tasks.invoice_collect_and_notify", invoice.pk)]


def test_tasks_run_at_once_wait_for_the_commit(django_capture_on_commit_callbacks):
    # Given tasks run at once in the caller's thread (django-q2's sync mode)
    subscription = subscribe()

    # When a subscription renews
    with django_capture_on_commit_callbacks() as after_commit:
        renew(subscription)

    # Then its notice runs only once the renewal has committed, never inside it
    assert not task_commits_with_transaction()
    assert len(after_commit) == 1
    assert not OrmQ.objects.exists()
