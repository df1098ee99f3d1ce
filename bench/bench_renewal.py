"""Renewal at scale: 1,000 and then 10,000 due subscriptions with realistic usage.

Goals, each printed with its verdict:
- a subscription renewed (invoice, finalization, its charge queued) in at most 45 times a raw
  primary-key SELECT measured in the same run;
- at most 6 queries per subscription, the chunk's shared reads included, the same at 10,000;
- time grows linearly: the 10k/1k time ratio at most 10.5;
- on PostgreSQL, two worker processes renewing one fresh due set together, as two `qcluster`
  workers would, have at least 1.7 times one worker's throughput on a set of the same size
  (on two free cores: the load average is printed beside it).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import re
import time
from collections import Counter

from django.db import connection, connections
from djmoney.money import Money

from bench.common import Report, best_median_ms, progress, sized
from billing.catalog import services as catalog_services
from billing.lifecycle import renewals
from billing.models import Organization, Subscription
from usage.models import PhoneNumber, UsageCounter

APRIL = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
MAY = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
GIB = 1024**3
FEW = sized(1_000, smoke=2)
MANY = 10 * FEW
# A renewal's time at most this many raw primary-key SELECTs; its queries at most this many.
FLOOR_RATIO_GOAL = 45
QUERIES_GOAL = 6


def seed(count: int, plan, first: int) -> None:
    """`count` subscriptions due on 1 May: most within their allowance, some over it, some
    with phone numbers and storage above the allowance. Rows as `subscription_create` and the
    usage services write them, inserted in bulk so that seeding does not dominate the run."""
    rng = random.Random(first)
    organizations = Organization.objects.bulk_create(
        Organization(
            name=f"Renewal org {n}",
            slug=f"renewal-{n}",
            billing_emails=f"billing@renewal-{n}.example.com",
            country="US",
            region="NY",
        )
        for n in range(first, first + count)
    )
    Subscription.objects.bulk_create(
        Subscription(
            organization=organization,
            plan=plan,
            anchor=APRIL,
            anchor_timezone="UTC",
            current_period_start=APRIL,
            current_period_end=MAY,
            usage_period_start=APRIL,
            usage_period_end=MAY,
        )
        for organization in organizations
    )
    UsageCounter.objects.bulk_create(
        UsageCounter(
            organization=organization,
            period_start=APRIL,
            period_end=MAY,
            call_seconds=rng.randint(20_000, 230_000),
            calls=rng.randint(100, 2_000),
            storage_bytes=rng.randint(1, 60) * GIB,
            storage_peak_bytes=rng.randint(1, 60) * GIB,
        )
        for organization in organizations
    )
    PhoneNumber.objects.bulk_create(
        PhoneNumber(
            organization=organization,
            number=f"+1212{first + index:07d}{extra}",
            number_type="local",
            country="US",
            monthly_fee=Money("1.75", "USD"),
            provisioned_at=APRIL + dt.timedelta(days=extra * 10),
        )
        for index, organization in enumerate(organizations)
        if index % 3 == 0
        for extra in range(4)
    )


def _worker(issued) -> None:
    """One worker process: its own connection, the whole job over the same due set."""
    connections.close_all()
    issued.put(renewals.renew_subscriptions_if_needed(now=MAY + dt.timedelta(hours=1)))


def renew_in_processes(workers: int) -> tuple[float, int]:
    """Seconds until `workers` processes running the job at once are all done, and the
    invoices they issued together."""
    connections.close_all()  # a forked child must not share the parent's connection
    context = multiprocessing.get_context("fork")
    issued = context.Queue()
    processes = [context.Process(target=_worker, args=(issued,)) for _ in range(workers)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    total = sum(issued.get() for _ in processes)
    for process in processes:
        process.join()
    return time.perf_counter() - started, total


# What a statement does and to which table: `INSERT INTO "billing_invoice"`, or for a
# SELECT the table of its first column.
STATEMENT_KIND = re.compile(r'^\s*(INSERT INTO|UPDATE|DELETE FROM|SELECT) (?:DISTINCT )?"?(\w+)')


def renew_all() -> tuple[float, int, int, float]:
    """Seconds, queries, invoices and CPU seconds of this process in one run of the job. The
    statements' count and time (round trip and driver) by kind are printed."""
    queries = 0
    statements, seconds = Counter(), Counter()

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        kind = STATEMENT_KIND.match(sql)
        kind = " ".join(kind.groups()) if kind else sql.split(None, 1)[0]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements[kind] += 1
            seconds[kind] += time.perf_counter() - started

    # Counted by a wrapper: Django's own query log keeps only the last 9,000.
    with connection.execute_wrapper(count):
        started, cpu_started = time.perf_counter(), time.process_time()
        issued = renewals.renew_subscriptions_if_needed(now=MAY + dt.timedelta(hours=1))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    for kind, number in statements.most_common():
        progress(f"  {number:>6,} × {seconds[kind] * 1000 / number:.2f} ms  {kind}")
    return elapsed, queries, issued, cpu


def run(report: Report) -> None:
    progress("loading the plan catalog and tax rates")
    plan = next(
        plan for plan in catalog_services.catalog_load() if plan.code == "professional-monthly"
    )
    results = {}
    seeded = 0
    for count in (FEW, MANY):
        # Each run renews a fresh batch; the ones renewed before are no longer due.
        progress(f"seeding {count:,} due subscriptions")
        seed(count, plan, first=seeded)
        seeded += count
        progress(f"renewing {count:,} subscriptions")
        elapsed, queries, issued, cpu = renew_all()
        if issued != count:
            raise RuntimeError(f"Renewing {count} subscriptions issued {issued} invoices.")
        results[count] = (elapsed, queries, cpu)
        progress(
            f"{count:,} renewed in {elapsed:.1f}s, {queries / count:.2f} queries each "
            f"(load average {os.getloadavg()[0]:.2f})"
        )

    small, large = results[FEW], results[MANY]
    with connection.cursor() as cursor:

        def primary_key_select():
            cursor.execute("SELECT id FROM billing_organization WHERE id = %s", [1])
            cursor.fetchone()

        select_ms = best_median_ms(primary_key_select)
    per_subscription_ms = small[0] * 1000 / FEW
    report.add(
        "renewal_ms_per_subscription",
        per_subscription_ms,
        "ms",
        floor=select_ms,
        goal=FLOOR_RATIO_GOAL * select_ms,
    )
    # CPU time of the job's own process: what the code costs, whatever else the machine runs.
    report.add("renewal_cpu_ms_per_subscription", small[2] * 1000 / FEW, "ms", floor=select_ms)
    report.add("renewal_time_10k_over_1k", large[0] / small[0], "x", floor=10.0, goal=10.5)
    report.add(
        "renewal_queries_per_subscription_1k",
        small[1] / FEW,
        "queries",
        floor=small[1] / FEW,
        goal=QUERIES_GOAL,
    )
    report.add(
        "renewal_queries_per_subscription_10k",
        large[1] / MANY,
        "queries",
        floor=small[1] / FEW,
        goal=QUERIES_GOAL,
    )
    if connection.vendor == "postgresql":
        _two_workers(report, plan, first=seeded)


def _two_workers(report: Report, plan, first: int) -> None:
    """Throughput of two worker processes over one's, each on a fresh due set of one size."""
    seconds = {}
    for workers in (1, 2):
        progress(f"seeding {FEW:,} due subscriptions")
        seed(FEW, plan, first=first)
        first += FEW
        progress(f"renewing them with {workers} worker process(es)")
        seconds[workers], issued = renew_in_processes(workers)
        if issued != FEW:
            raise RuntimeError(f"{workers} workers issued {issued} invoices for {FEW}.")
        progress(
            f"{workers} worker(s): {FEW / seconds[workers]:.0f} subscriptions/s "
            f"(load average {os.getloadavg()[0]:.2f})"
        )
    report.add(
        "renewal_two_workers_over_one",
        seconds[1] / seconds[2],
        "x",
        floor=1.0,
        goal=1.7,
        higher_is_better=True,
    )
