"""Call ingestion with usage alerts configured (the default thresholds, six percents and one
minute of call time of the organization's own, some crossed during the run) against the same ingestion for
organizations that switched every threshold off: the floor, measured in the same run. Goal:
at least 90% of the calls per second without alerts."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from bench.bench_ingest import record, reports, seed_employees, timed
from bench.common import Report, progress, sized
from usage.alerts import services as alert_services
from usage.models import AlertThreshold, UsageAlert

ROUNDS = sized(3, smoke=1)
CALLS = sized(5_000, smoke=20)
GOAL_SHARE = 0.9
OWN_PERCENTS = (10, 20, 30, 40, 60, 80)


def run(report: Report) -> None:
    now = timezone.now()
    progress("subscribing organizations: half with alerts, half with every threshold off")
    employees = seed_employees(now=now)
    organizations = sorted({employee.organization_id for employee in employees})
    alerted = set(organizations[::2])
    for employee in employees:
        organization = employee.organization
        if organization.pk in alerted:
            alert_services.alert_threshold_add(
                organization=organization,
                metric=AlertThreshold.Metric.CALL_SECONDS,
                unit=AlertThreshold.Unit.ABSOLUTE,
                value=Decimal(1),  # a minute: crossed by the first call, at any size
                now=now,
            )
            for percent in OWN_PERCENTS:
                alert_services.alert_threshold_add(
                    organization=organization,
                    metric=AlertThreshold.Metric.CALL_SECONDS,
                    unit=AlertThreshold.Unit.PERCENT,
                    value=Decimal(percent),
                    now=now,
                )
        else:
            for metric in AlertThreshold.Metric:
                for percent in settings.USAGE_ALERT_DEFAULT_PERCENTS:
                    alert_services.alert_threshold_switch(
                        organization=organization,
                        metric=metric,
                        unit=AlertThreshold.Unit.PERCENT,
                        value=Decimal(percent),
                        enabled=False,
                        now=now,
                    )
    with_alerts = [e for e in employees if e.organization_id in alerted]
    without = [e for e in employees if e.organization_id not in alerted]

    rate_with = rate_without = 0.0
    for round_number in range(ROUNDS):
        progress(f"round {round_number + 1} of {ROUNDS}: {CALLS:,} calls each way")
        quiet = reports(f"quiet{round_number}", without, now)[:CALLS]
        loud = reports(f"alerted{round_number}", with_alerts, now)[:CALLS]
        # Each keeps its best round; they take turns so a busy machine hits both alike.
        rate_without = max(rate_without, CALLS / timed(record, quiet, now))
        rate_with = max(rate_with, CALLS / timed(record, loud, now))

    fired = UsageAlert.objects.filter(organization_id__in=alerted).count()
    if not fired:
        raise RuntimeError("No alert fired: the benchmark measured nothing of alerts.")
    if UsageAlert.objects.exclude(organization_id__in=alerted).exists():
        raise RuntimeError("An organization with every threshold off was alerted.")
    progress(f"{fired} alerts fired")
    report.add(
        "ingest_with_alerts_calls_per_s",
        rate_with,
        "calls/s",
        floor=rate_without,
        goal=GOAL_SHARE * rate_without,
        higher_is_better=True,
    )
