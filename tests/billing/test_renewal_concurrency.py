"""Renewal and numbering under concurrent workers, on PostgreSQL."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from billing.lifecycle import renewals
from billing.models import Invoice
from billing.subscriptions import services as subscription_services
from tests.factories import OrganizationFactory, PlanFactory, SubscriptionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

APRIL = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


def in_threads(work, items, workers):
    barrier = threading.Barrier(workers)

    def run(item):
        try:
            barrier.wait(timeout=10)
            return work(item)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, items))


def test_two_clusters_renewing_at_once_issue_one_invoice_per_subscription_and_period():
    plan = PlanFactory()
    subscriptions = [SubscriptionFactory(plan=plan, start=APRIL, now=APRIL) for _ in range(20)]

    issued = in_threads(
        lambda _: renewals.renew_subscriptions_if_needed(
            now=dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
        ),
        range(4),
        workers=4,
    )

    assert sum(issued) == 20 * 2  # May and June, each once
    for subscription in subscriptions:
        starts = list(
            subscription.invoices.order_by("period_start").values_list("period_start", flat=True)
        )
        assert starts == [
            APRIL,
            dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
            dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        ]


def test_concurrent_finalization_never_skips_or_repeats_a_number():
    plan = PlanFactory()
    organizations = [OrganizationFactory() for _ in range(24)]

    in_threads(
        lambda organization: subscription_services.subscription_create(
            organization=organization, plan=plan, start=APRIL, now=APRIL
        ),
        organizations,
        workers=8,
    )

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 25)]
