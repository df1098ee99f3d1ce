"""Finished calls and usage reports, and the counters they add up to per usage month."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from billing.models import Organization
from usage.models.roster import AIEmployee


class Call(models.Model):
    """One finished call: an append-only fact. Counters are derived from these rows."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    platform_call_id = models.CharField(max_length=100, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calls")
    # Calls are billing facts: an employee with calls cannot be deleted, only deactivated.
    employee = models.ForeignKey(AIEmployee, on_delete=models.PROTECT, related_name="calls")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    connected_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    billable_seconds = models.PositiveIntegerField()
    usage_period_start = models.DateTimeField(
        help_text="Start of the usage period the call counts in."
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-connected_at"]
        indexes = [
            models.Index(fields=["organization", "connected_at"]),
            models.Index(fields=["organization", "usage_period_start"]),
            models.Index(fields=["employee", "connected_at"]),
            models.Index(fields=["-connected_at"], name="call_newest_first"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__gte=F("connected_at")), name="call_ends_after_connect"
            )
        ]

    def __str__(self) -> str:
        return self.platform_call_id


class UsageCounter(models.Model):
    """Running totals of one organization's usage period, updated in the same transaction as
    the facts they sum (`used = used + x`), so a balance is one indexed read."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_counters"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    call_seconds = models.PositiveBigIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveBigIntegerField(default=0)
    storage_bytes = models.PositiveBigIntegerField(default=0, help_text="Latest reported.")
    storage_peak_bytes = models.PositiveBigIntegerField(
        default=0, help_text="Highest reported in the period; storage overage is billed on it."
    )
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Invoiced: later facts for it count in the open period."
    )

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="one_counter_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization} from {self.period_start:%Y-%m-%d}"


class UsageReport(models.Model):
    """A storage or API-usage report from the platform, kept as the fact behind a counter.
    `report_id` makes a repeated report a no-op."""

    class Kind(models.TextChoices):
        STORAGE = "storage", "Stored bytes"
        API_CALLS = "api_calls", "API calls"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_reports"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    report_id = models.CharField(max_length=100)
    quantity = models.PositiveBigIntegerField()
    measured_at = models.DateTimeField()
    period_start = models.DateTimeField()
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-measured_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "report_id"], name="usage_report_once"
            )
        ]
        indexes = [models.Index(fields=["organization", "kind", "period_start", "measured_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.quantity} ({self.report_id})"


class EmployeeUsageCounter(models.Model):
    """Call time of one AI employee in one usage period, under the cost center it carried
    when each call was recorded. Written with the organization's counter, in the same
    transaction, so the spend caps are checked with indexed reads."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="employee_usage_counters"
    )
    employee = models.ForeignKey(
        AIEmployee, on_delete=models.CASCADE, related_name="usage_counters"
    )
    cost_center = models.CharField(max_length=100, blank=True)
    period_start = models.DateTimeField()
    call_seconds = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-period_start", "employee"]
        constraints = [
            models.UniqueConstraint(
                fields=["employee", "period_start", "cost_center"],
                name="one_employee_counter_per_period_and_cost_center",
            )
        ]
        indexes = [models.Index(fields=["organization", "period_start", "cost_center"])]

    def __str__(self) -> str:
        return f"{self.employee} from {self.period_start:%Y-%m-%d}"
