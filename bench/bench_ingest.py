"""Call reports ingested in batches of 1,000, through `calls_record` and through the batch API
(JSON parsing and validation included), in calls per second; the floor is a plain multi-row
INSERT of as many rows into the same table, and the goals are shares of its throughput."""

from __future__ import annotations

import datetime as dt
import json
import time

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone

from bench.common import Report, progress, sized
from billing.accounts import services as account_services
from billing.catalog import services as catalog_services
from billing.models import Organization
from billing.subscriptions import services as subscription_services
from usage import services
from usage.metering import services as metering
from usage.models import AIEmployee, Call, UsageCounter
from usage.tokens.services import service_token_create

ORGANIZATIONS = sized(10, smoke=2)
EMPLOYEES_PER_ORGANIZATION = 3
ROUNDS = sized(2, smoke=1)
CALLS = sized(5_000, smoke=20)  # per round and way in: 20,000 calls through our code in all
BATCH = sized(1_000, smoke=10)
# Shares of the plain INSERT's calls per second: all validation, idempotency, counters and
# usage alerts included, through the service, and through the API with JSON on top.
GOAL_SERVICE_SHARE = 0.6
GOAL_API_SHARE = 0.5
COLUMNS = (
    "platform_call_id",
    "organization_id",
    "employee_id",
    "direction",
    "connected_at",
    "ended_at",
    "billable_seconds",
    "usage_period_start",
    "recorded_at",
)


def run(report: Report) -> None:
    progress(f"subscribing {ORGANIZATIONS} organizations")
    now = timezone.now()
    employees = seed_employees(now=now)
    _, token = service_token_create(name="bench", all_organizations=True)
    client = Client()

    # The three ways in take turns, so a busy moment on the machine hits them alike, and
    # each keeps its best round.
    insert_rate = service_rate = api_rate = 0.0
    for round_number in range(ROUNDS):
        progress(
            f"round {round_number + 1} of {ROUNDS}: {CALLS:,} rows by plain INSERT, "
            f"{CALLS:,} calls through calls_record, {CALLS:,} through the batch API"
        )
        raw = reports(f"raw{round_number}", employees, now)
        insert_rate = max(insert_rate, CALLS / timed(insert_raw, raw, now))
        Call.objects.filter(platform_call_id__startswith=f"raw{round_number}-").delete()

        recorded = reports(f"service{round_number}", employees, now)
        service_rate = max(service_rate, CALLS / timed(record, recorded, now))

        bodies = batch_bodies(reports(f"api{round_number}", employees, now))
        api_rate = max(api_rate, CALLS / timed(post_batches, client, token, bodies))
    check_counters()

    # The ratio to the floor is what the goals hold: a share of the plain INSERT's rate.
    for name, rate, share in (
        ("ingest_service_calls_per_s", service_rate, GOAL_SERVICE_SHARE),
        ("ingest_api_calls_per_s", api_rate, GOAL_API_SHARE),
    ):
        report.add(
            name,
            rate,
            "calls/s",
            floor=insert_rate,
            goal=share * insert_rate,
            higher_is_better=True,
        )


def timed(action, *args) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def seed_employees(*, now: dt.datetime) -> list[AIEmployee]:
    plan = next(p for p in catalog_services.catalog_load() if p.code == "business-monthly")
    employees = []
    for n in range(ORGANIZATIONS):
        organization = account_services.organization_create(
            name=f"Bench {n}", slug=f"bench-{n}", billing_emails=f"billing@bench-{n}.example.com"
        )
        subscription_services.subscription_create(
            organization=organization,
            plan=plan,
            start=now - dt.timedelta(days=20),
            trial=False,
            now=now,
        )
        employees += [
            services.employee_create(organization=organization, name=f"Agent {e}", now=now)
            for e in range(EMPLOYEES_PER_ORGANIZATION)
        ]
    return employees


def reports(prefix: str, employees: list[AIEmployee], now: dt.datetime):
    """`CALLS` finished calls of the last two days, each batch mixing every organization, as
    the platform's batches would."""
    slugs = dict(Organization.objects.values_list("pk", "slug"))
    result = []
    for n in range(CALLS):
        employee = employees[n % len(employees)]
        connected_at = now - dt.timedelta(seconds=30 * n + 3_600)
        result.append(
            metering.CallReport(
                call_id=f"{prefix}-{n}",
                organization=slugs[employee.organization_id],
                employee_id=employee.pk,
                direction="inbound" if n % 2 else "outbound",
                connected_at=connected_at,
                ended_at=connected_at + dt.timedelta(seconds=30 + n % 900),
            )
        )
    return result


def insert_raw(call_reports: list[metering.CallReport], now: dt.datetime) -> None:
    """The same rows, written the cheapest way: one INSERT per 1,000, no checks, no counters."""
    adapt = connection.ops.adapt_datetimefield_value
    organization_ids = dict(Organization.objects.values_list("slug", "pk"))
    row_sql = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    for offset in range(0, len(call_reports), BATCH):
        batch = call_reports[offset : offset + BATCH]
        params = []
        for report in batch:
            params += [
                report.call_id,
                organization_ids[report.organization],
                report.employee_id,
                report.direction,
                adapt(report.connected_at),
                adapt(report.ended_at),
                metering.billable_seconds(report.connected_at, report.ended_at),
                adapt(now),
                adapt(now),
            ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Call._meta.db_table} ({', '.join(COLUMNS)}) VALUES "
                + ", ".join([row_sql] * len(batch)),
                params,
            )


def record(call_reports: list[metering.CallReport], now: dt.datetime) -> None:
    for offset in range(0, len(call_reports), BATCH):
        metering.calls_record(reports=call_reports[offset : offset + BATCH], now=now)


def batch_bodies(call_reports: list[metering.CallReport]) -> list[str]:
    """The JSON the platform would post, made before the clock starts."""
    return [
        json.dumps(
            {
                "calls": [
                    {
                        "org": report.organization,
                        "call_id": report.call_id,
                        "employee_id": report.employee_id,
                        "direction": report.direction,
                        "connected_at": report.connected_at.isoformat(),
                        "ended_at": report.ended_at.isoformat(),
                    }
                    for report in call_reports[offset : offset + BATCH]
                ]
            }
        )
        for offset in range(0, len(call_reports), BATCH)
    ]


def post_batches(client: Client, token: str, bodies: list[str]) -> None:
    for body in bodies:
        response = client.post(
            "/api/v1/calls/batch",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        if response.status_code != 200 or response.json()["recorded"] != BATCH:
            raise RuntimeError(
                f"The batch API answered {response.status_code}: {response.content[:500]}"
            )


def check_counters() -> None:
    """Fast is no use if wrong: the counters must be exactly the sum of the calls."""
    calls = Call.objects.aggregate(seconds=Sum("billable_seconds"), count=Count("pk"))
    counters = UsageCounter.objects.aggregate(seconds=Sum("call_seconds"), count=Sum("calls"))
    if calls != counters or calls["count"] != 2 * ROUNDS * CALLS:
        raise RuntimeError(f"Counters {counters} do not match the calls {calls}.")
