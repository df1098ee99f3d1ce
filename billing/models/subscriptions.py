"""Subscriptions, their periods and status, and trials of single features."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

from billing.models.accounts import Organization, timezone_choices
from billing.models.catalog import Feature, Plan
from billing.subscriptions import periods


class Subscription(models.Model):
    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        SUSPENDED = "suspended", "Suspended"
        CANCELED = "canceled", "Canceled"

    LIVE_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.SUSPENDED)

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)

    # The anchor and its timezone never change: every period is computed from them.
    anchor = models.DateTimeField(help_text="Start of the first billing period.")
    anchor_timezone = models.CharField(max_length=64, choices=timezone_choices)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(db_index=True)
    usage_period_start = models.DateTimeField()
    usage_period_end = models.DateTimeField()

    # A first subscription's free trial, [start, end): its end is the anchor.
    trial_starts_at = models.DateTimeField(null=True, blank=True)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    commitment_ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Lock-in: no downgrade takes effect before this."
    )
    trial_reminder_sent_at = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_reason = models.TextField(blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    scheduled_plan = models.ForeignKey(
        Plan,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scheduled_subscriptions",
        help_text="A plan change waiting for its effective date.",
    )
    scheduled_change_at = models.DateTimeField(null=True, blank=True)
    scheduled_removals = models.JSONField(
        default=dict,
        blank=True,
        help_text="AI employees to deactivate and numbers to release when the scheduled "
        'change takes effect: {"employees": [ids], "phone_numbers": [ids]}.',
    )

    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    data_purged_at = models.DateTimeField(
        null=True, blank=True, help_text="When usage data and AI employees were deleted."
    )
    history = HistoricalRecords(excluded_fields=["created_at"])

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("extend_trial", "Can extend a trial"),
            ("call_off_scheduled_change", "Can call off a scheduled plan change"),
            ("manage_subscription", "Can change the plan, cancel, reactivate or renew"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=~Q(status="canceled"),
                name="one_live_subscription_per_org",
            ),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=F("current_period_start"))
                & Q(usage_period_end__gt=F("usage_period_start")),
                name="periods_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_plan__isnull=True, scheduled_change_at__isnull=True)
                | Q(scheduled_plan__isnull=False, scheduled_change_at__isnull=False),
                name="scheduled_change_has_plan_and_date",
            ),
        ]
        indexes = [models.Index(fields=["status", "current_period_end"])]

    def __str__(self) -> str:
        return f"{self.organization} – {self.plan}"

    @cached_property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.anchor_timezone)

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    @property
    def billing_period(self) -> periods.Period:
        return periods.Period(self.current_period_start, self.current_period_end)

    @property
    def usage_period(self) -> periods.Period:
        return periods.Period(self.usage_period_start, self.usage_period_end)

    @property
    def is_trialing(self) -> bool:
        return self.status == self.Status.TRIALING

    @property
    def trial_period(self) -> periods.Period | None:
        """The free trial, while it lasts and after: its usage is recorded, never charged."""
        if self.trial_starts_at is None or self.trial_ends_at is None:
            return None
        return periods.Period(self.trial_starts_at, self.trial_ends_at)

    @property
    def started_at(self) -> dt.datetime:
        """The first moment usage counts: the trial's start, else the anchor."""
        return self.trial_starts_at or self.anchor

    def billing_period_at(self, at: dt.datetime) -> periods.Period:
        return periods.period_at(self.anchor, self.tzinfo, self.plan.months, at)

    def usage_period_at(self, at: dt.datetime) -> periods.Period:
        """The usage period containing `at`: the trial, or a month counted from the anchor."""
        trial = self.trial_period
        if trial is not None and at in trial:
            return trial
        return periods.period_at(self.anchor, self.tzinfo, 1, at)


class FeatureTrial(models.Model):
    """Time-limited access to one feature the organization's plan does not include."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="feature_trials"
    )
    feature = models.ForeignKey(Feature, on_delete=models.PROTECT, related_name="trials")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-ends_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="feature_trial_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["organization", "ends_at"])]

    def __str__(self) -> str:
        return f"{self.feature} trial for {self.organization}"


class RenewalRun(models.Model):
    """One run of the renewal job, for staff to see its pace and its failures."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    due = models.PositiveIntegerField(help_text="Subscriptions with an ended period.")
    invoices_issued = models.PositiveIntegerField()
    failed = models.PositiveIntegerField(help_text="Subscriptions whose renewal raised an error.")
    failed_subscriptions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"Renewal run of {self.started_at:%Y-%m-%d %H:%M} UTC"

    @property
    def duration(self) -> dt.timedelta:
        return self.finished_at - self.started_at
