"""The notification center: one notice per organization and dedup key, its deliveries on
each channel, the organization's preferences, and its webhook endpoints."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from billing.models.subscriptions import Organization


class Notification(models.Model):
    class Kind(models.TextChoices):
        USAGE_ALERT = "usage_alert", "Usage alert"
        PROJECTED_OVERAGE = "projected_overage", "Projected overage"
        BUDGET_ALERT = "budget_alert", "Budget alert"
        RENEWAL_REMINDER = "renewal_reminder", "Renewal reminder"
        INVOICE_ISSUED = "invoice_issued", "Invoice issued"
        INVOICE_REMINDER = "invoice_reminder", "Invoice due or overdue"
        PAYMENT_SUCCEEDED = "payment_succeeded", "Payment succeeded"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        TRIAL_ENDING = "trial_ending", "Trial ending"
        PLAN_CHANGE = "plan_change", "Plan change"
        SUBSCRIPTION_STATUS = "subscription_status", "Subscription status and suspension"
        CANCELLATION = "cancellation", "Cancellation"
        BILLING_REQUEST = "billing_request", "Billing request answered"
        WEBHOOK_TEST = "webhook_test", "Webhook test event"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    dedup_key = models.CharField(
        max_length=200, help_text="What the notice is about: the same key is never sent twice."
    )
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True, help_text="What the notice says, as plain text.")
    link = models.URLField(max_length=500, blank=True)
    link_label = models.CharField(max_length=100, blank=True)
    data = models.JSONField(
        default=dict, blank=True, help_text="The facts of the notice, as webhooks carry them."
    )
    email = models.JSONField(
        null=True,
        blank=True,
        help_text="The e-mail as rendered when the notice was made (subject, text, HTML); "
        "empty for kinds rendered when they are sent (invoices, with their PDF).",
    )
    in_app = models.BooleanField(default=True, help_text="Listed in the notification center.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("resend_notification", "Can resend notices and deliveries")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedup_key"], name="notification_once_per_key"
            )
        ]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class NotificationRead(models.Model):
    """Who has read which notice: each administrator has their own unread count."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "user"], name="notification_read_once")
        ]

    def __str__(self) -> str:
        return f"{self.notification} read by {self.user}"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class NotificationPreference(models.Model):
    """An organization's choice for one kind on one channel; without one the default holds
    (`billing.notifications.kinds`)."""

    class Mode(models.TextChoices):
        OFF = "off", "Off"
        ON = "on", "At once"
        DIGEST = "digest", "Daily digest"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=30, choices=Notification.Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    updated_at = models.DateTimeField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "channel"], name="one_preference_per_kind_channel"
            ),
            models.CheckConstraint(
                condition=~Q(mode="digest") | Q(channel="email"), name="digest_by_email_only"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_kind_display()} · {self.get_channel_display()}: {self.get_mode_display()}"
        )


class NotificationRecipient(models.Model):
    """A member who chose to receive the e-mailed notices too, besides the billing contacts."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notification_recipients"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="recipient_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} for {self.organization}"


class WebhookEndpoint(models.Model):
    """An HTTPS address that receives every notice the organization chose for webhooks,
    signed (`Billing-Signature`), or in Slack's incoming-webhook format."""

    class Format(models.TextChoices):
        SIGNED_JSON = "json", "Signed JSON"
        SLACK = "slack", "Slack incoming webhook"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.SIGNED_JSON)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until then deliveries are signed with both secrets."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.url


class Delivery(models.Model):
    """One notice on one channel (an e-mail to its recipients, a POST to one endpoint)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DIGEST = "digest", "Waiting for the daily digest"
        RETRYING = "retrying", "Failed, trying again"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    recipients = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "channel"]),
            models.Index(fields=["endpoint", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} · {self.notification}"
