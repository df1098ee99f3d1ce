"""Usage alert thresholds, the alerts they fired and their snoozes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.models import Organization


class AlertThreshold(models.Model):
    """A level of one metric at which the organization is alerted, in percent of the plan's
    limit or as an amount (minutes of call time, GiB of storage, money of overage, a count
    otherwise). The default percents (`USAGE_ALERT_DEFAULT_PERCENTS`) apply without a row; a
    row with a default's percent switches it off or on again; any other row is the
    organization's own threshold."""

    class Metric(models.TextChoices):
        CALL_SECONDS = "call_seconds", "Call time"
        ACTIVE_EMPLOYEES = "active_employees", "Active AI employees"
        PHONE_NUMBERS = "phone_numbers", "Phone numbers"
        STORAGE = "storage", "Storage"
        API_CALLS = "api_calls", "API calls"
        OVERAGE_SPEND = "overage_spend", "Overage spend"
        OVERAGE_CAP = "overage_cap", "Overage cap"

    class Unit(models.TextChoices):
        PERCENT = "percent", "Percent of the limit"
        ABSOLUTE = "absolute", "Amount"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_thresholds"
    )
    metric = models.CharField(max_length=20, choices=Metric.choices)
    unit = models.CharField(max_length=10, choices=Unit.choices)
    value = models.DecimalField(max_digits=14, decimal_places=2)
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["metric", "unit", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "metric", "unit", "value"], name="threshold_once"
            ),
            models.CheckConstraint(condition=Q(value__gt=0), name="threshold_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} at {self.value} ({self.unit})"


class UsageAlert(models.Model):
    """A threshold crossed in one usage period, inserted in the transaction whose usage
    crossed it: at most once per period (the unique constraint decides between concurrent
    writers). `unit` `projected` is the projected-overage alert of the period."""

    class Unit(models.TextChoices):
        PERCENT = "percent", "Percent of the limit"
        ABSOLUTE = "absolute", "Amount"
        PROJECTED = "projected", "Projected to run out"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="usage_alerts"
    )
    metric = models.CharField(max_length=20, choices=AlertThreshold.Metric.choices)
    unit = models.CharField(max_length=10, choices=Unit.choices)
    value = models.DecimalField(max_digits=14, decimal_places=2)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    used = models.DecimalField(
        max_digits=20, decimal_places=2, help_text="The metric once crossed, in its base unit."
    )
    limit = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "metric", "unit", "value", "period_start"],
                name="usage_alert_once_per_period",
            )
        ]
        indexes = [models.Index(fields=["organization", "period_start", "metric"])]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.value} ({self.unit}) from {self.period_start:%Y-%m-%d}"


class AlertSnooze(models.Model):
    """No more notices about one metric until its usage period ends (alerts are still
    recorded, and shown on the alerts page and in the API)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="alert_snoozes"
    )
    metric = models.CharField(max_length=20, choices=AlertThreshold.Metric.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    snoozed_at = models.DateTimeField()
    snoozed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "metric", "period_start"], name="snooze_once_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} snoozed from {self.period_start:%Y-%m-%d}"
