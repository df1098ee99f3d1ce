"""Billing requests: an organization's questions and disputes, their conversation, the calls
in question and the decision that closed them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField

from billing.models.accounts import Organization
from billing.models.invoices import CreditNote, Invoice, InvoiceLine


class BillingRequest(models.Model):
    class Kind(models.TextChoices):
        QUESTION = "question", "A question about billing"
        INVOICE_COPY = "invoice_copy", "A copy of an invoice"
        DISPUTE = "dispute", "A disputed charge"
        SALES = "sales", "Enterprise pricing (sales)"

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for billing support"
        ANSWERED = "answered", "Answered"
        APPROVED = "approved", "Approved: credit note issued"
        DECLINED = "declined", "Declined"

    # Why calls are disputed, as the customer chooses it.
    class Reason(models.TextChoices):
        UNANSWERED = "unanswered", "Billed but unanswered, or voicemail"
        TOO_SHORT = "too_short", "Too short to be useful"
        DUPLICATE = "duplicate", "Duplicate"
        MALFUNCTION = "malfunction", "AI employee malfunction"
        SPAM = "spam", "Spam or robocall"
        WRONG_DURATION = "wrong_duration", "Wrong duration"
        OTHER = "other", "Other"

    OPEN_STATUSES = (Status.OPEN, Status.ANSWERED)

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="billing_requests"
    )
    kind = models.CharField(max_length=15, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    subject = models.CharField(max_length=200)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="billing_requests"
    )
    line = models.ForeignKey(
        InvoiceLine,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billing_requests",
    )
    # What the customer questions: the line, part of it, or the chosen calls at its rate.
    amount_in_question = MoneyField(max_digits=12, decimal_places=2, null=True, blank=True)
    seconds_in_question = models.PositiveBigIntegerField(null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="billing_requests_opened",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="billing_requests_assigned",
    )
    created_at = models.DateTimeField()
    respond_by = models.DateTimeField(help_text="The response target, in business time.")
    first_response_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    # The decision: who, when, why, and what it gave.
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="billing_requests_decided",
    )
    decision_reason = models.TextField(blank=True)
    approved_amount = MoneyField(max_digits=12, decimal_places=2, null=True, blank=True)
    credit_note = models.OneToOneField(
        CreditNote,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="billing_request",
    )
    refunded = models.BooleanField(
        default=False, help_text="The credit note's money went back to the card."
    )
    auto_approved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(line__isnull=True) | Q(invoice__isnull=False),
                name="billing_request_line_has_invoice",
            ),
            models.CheckConstraint(
                condition=Q(approved_amount__isnull=True)
                | Q(approved_amount__lte=F("amount_in_question")),
                name="billing_request_approves_at_most_in_question",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "declined"]) | Q(decided_at__isnull=False),
                name="billing_request_decision_recorded",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "respond_by"]),
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["invoice", "status"]),
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk}: {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class BillingRequestMessage(models.Model):
    """One message of a request's conversation. Internal notes are never shown to the
    customer."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        STAFF = "staff", "Billing support"
        INTERNAL = "internal", "Internal note"

    request = models.ForeignKey(BillingRequest, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    body = models.TextField()
    # Stored through the default storage (object storage in production), never under static.
    attachment = models.FileField(upload_to="billing-requests/%Y/%m/", blank=True)
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_type = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.request_id}"


class DisputedCall(models.Model):
    """A call in question, copied when disputed: the request keeps it whatever happens to
    the usage data (purged after the retention period)."""

    request = models.ForeignKey(
        BillingRequest, on_delete=models.CASCADE, related_name="disputed_calls"
    )
    platform_call_id = models.CharField(max_length=100)
    employee_name = models.CharField(max_length=100)
    direction = models.CharField(max_length=8)
    connected_at = models.DateTimeField()
    billable_seconds = models.PositiveIntegerField()
    amount = MoneyField(max_digits=18, decimal_places=6)

    class Meta:
        ordering = ["connected_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "platform_call_id"], name="call_disputed_once_per_request"
            )
        ]

    def __str__(self) -> str:
        return self.platform_call_id
