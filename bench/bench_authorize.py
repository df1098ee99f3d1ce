"""Call authorization, asked before every call: its time against a primary-key SELECT, and
its queries, on its own and as the HTTP API runs it (token check included), with every kind
of spend cap set (the organization's overage spend, the AI employee's and its cost center's
call time), so each is checked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection
from django.test import Client
from django.utils import timezone

from bench.common import (
    Report,
    best_median_ms,
    count_queries,
    progress,
    sized,
    subscribed_employee,
)
from usage import selectors
from usage.caps.services import spend_caps_replace
from usage.metering import services as metering

CALLS = sized(2_000, smoke=20)
GOAL_RATIO = 2  # at most two primary-key SELECTs' worth
GOAL_QUERIES = 1


def run(report: Report) -> None:
    progress("subscribing an organization and recording calls")
    now = timezone.now()
    organization, employee, token = subscribed_employee(slug="bench-dental", now=now)
    employee.cost_center = "Front desk"
    employee.save(update_fields=["cost_center"])
    record_calls(employee, now=now)
    spend_caps_replace(
        organization=organization,
        overage_spend=Decimal("5000"),
        employees={employee.pk: 10_000_000},
        cost_centers={"Front desk": 10_000_000},
        now=now,
    )

    def authorize():
        authorization = selectors.call_authorize(
            organization_slug=organization.slug, employee_id=employee.pk, now=timezone.now()
        )
        if not authorization.allowed:
            raise RuntimeError(f"The call was refused: {authorization.reason}.")

    def primary_key_select():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM billing_organization WHERE id = %s", [organization.pk])
            cursor.fetchone()

    client = Client()
    url = f"/api/v1/orgs/{organization.slug}/calls/authorize"

    def authorize_over_http():
        response = client.post(
            url,
            {"employee_id": employee.pk},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        if response.status_code != 200 or not response.json()["allowed"]:
            raise RuntimeError(f"POST {url} answered {response.status_code}: {response.content}")

    progress("timing a primary-key SELECT and call_authorize")
    select_ms = best_median_ms(primary_key_select, calls=200)
    authorize_ms = best_median_ms(authorize, calls=200)
    report.add("authorize_ms", authorize_ms, "ms", floor=select_ms, goal=GOAL_RATIO * select_ms)
    report.add("authorize_queries", count_queries(authorize), "queries", floor=1, goal=GOAL_QUERIES)
    # As the platform asks: the process has read its token already (it keeps it for
    # SERVICE_TOKEN_CACHE_SECONDS), so the request runs the authorization's query alone.
    authorize_over_http()
    report.add(
        "authorize_http_queries",
        count_queries(authorize_over_http),
        "queries",
        floor=1,
        goal=GOAL_QUERIES,
    )


def record_calls(employee, *, now: dt.datetime) -> None:
    """`CALLS` two-minute calls in the current usage month, so the counter is not empty."""
    reports = [
        metering.CallReport(
            call_id=f"authorize-bench-{n}",
            organization=employee.organization.slug,
            employee_id=employee.pk,
            direction="outbound",
            connected_at=now - dt.timedelta(minutes=3 * n + 3),
            ended_at=now - dt.timedelta(minutes=3 * n + 1),
        )
        for n in range(CALLS)
    ]
    for offset in range(0, CALLS, 1_000):
        metering.calls_record(reports=reports[offset : offset + 1_000], now=now)
