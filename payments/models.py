"""Payment methods (tokens only), payment attempts, refunds, and the collection of an invoice.

No card number, CVC or bank account number is ever stored: only the processor's token and
what a person needs to recognise the method (brand, last four digits, expiry).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from djmoney.models.fields import MoneyField

from billing.models import Invoice, Organization


class PaymentMethod(models.Model):
    class Processor(models.TextChoices):
        STRIPE = "stripe", "Stripe"
        SANDBOX = "sandbox", "Sandbox"

    class Kind(models.TextChoices):
        CARD = "card", "Card"
        BANK_ACCOUNT = "bank_account", "Bank account"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="payment_methods"
    )
    processor = models.CharField(max_length=10, choices=Processor.choices)
    token = models.CharField(max_length=100, help_text="The processor's id for the method.")
    kind = models.CharField(max_length=15, choices=Kind.choices, default=Kind.CARD)
    brand = models.CharField(max_length=30, help_text="Card brand, or the bank's name.")
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="The processor's fingerprint of the card or account number (Stripe): the "
        "same number added twice has the same one.",
    )
    billing_name = models.CharField(max_length=200, blank=True)
    billing_address = models.CharField(max_length=300, blank=True)
    billing_postal_code = models.CharField(max_length=20, blank=True)
    billing_country = models.CharField(max_length=2, blank=True)
    is_default = models.BooleanField(default=False)
    priority = models.PositiveSmallIntegerField(
        default=0, help_text="Order of the backups after the default: lower is tried first."
    )
    created_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-is_default", "priority", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["processor", "token"], name="one_row_per_processor_token"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(is_default=True, removed_at__isnull=True),
                name="one_default_method_per_org",
            ),
        ]
        indexes = [models.Index(fields=["organization", "removed_at"])]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """`Visa •••• 4242`: how a person recognises the method."""
        return f"{self.brand} •••• {self.last4}"

    @property
    def expiry(self) -> str:
        return f"{self.exp_month:02d}/{self.exp_year}" if self.exp_month else ""


class PaymentAttempt(models.Model):
    """One try to collect an invoice: a charge of one method, or a bank transfer recorded by
    staff. Its idempotency key comes from our own rows, so a retried or replayed call can
    never charge twice; the database allows one successful attempt per invoice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Channel(models.TextChoices):
        CARD = "automatic", "Automatic charge"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payment_attempts")
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="attempts"
    )
    channel = models.CharField(max_length=15, choices=Channel.choices, default=Channel.CARD)
    amount = MoneyField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    idempotency_key = models.CharField(max_length=100, unique=True)
    processor_reference = models.CharField(
        "confirmation number", max_length=100, blank=True, help_text="The processor's charge id."
    )
    failure_code = models.CharField(max_length=50, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    attempted_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-attempted_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status="succeeded"),
                name="one_successful_payment_per_invoice",
            )
        ]
        indexes = [
            models.Index(fields=["invoice", "status"]),
            models.Index(fields=["processor_reference"]),  # webhooks and staff look it up
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} {self.amount} for {self.invoice}"


class Collection(models.Model):
    """Where collecting an invoice stands: the dunning state and the next retry."""

    class State(models.TextChoices):
        RETRYING = "retrying", "Retrying"
        PAID = "paid", "Paid"
        EXHAUSTED = "exhausted", "Retries exhausted"

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="collection")
    state = models.CharField(max_length=10, choices=State.choices, default=State.RETRYING)
    failures = models.PositiveSmallIntegerField(default=0)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_failure_message = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"Collection of {self.invoice} ({self.get_state_display()})"


class Refund(models.Model):
    attempt = models.ForeignKey(PaymentAttempt, on_delete=models.PROTECT, related_name="refunds")
    credit_note = models.OneToOneField(
        "billing.CreditNote", on_delete=models.PROTECT, related_name="refund"
    )
    amount = MoneyField(max_digits=12, decimal_places=2)
    processor_reference = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return f"Refund of {self.amount} on {self.attempt.invoice}"


class StripeCustomer(models.Model):
    """The Stripe customer that holds an organization's Stripe payment methods: SetupIntents
    attach methods to it and off-session charges name it. The customer itself is dj-stripe's
    mirror (`djstripe.Customer`), filled by its webhooks and its sync; this row only says
    which organization it belongs to. No database constraint: the link is written when
    Stripe creates the customer, before the mirror has synced it."""

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    customer = models.OneToOneField(
        "djstripe.Customer",
        to_field="id",
        db_column="customer_id",
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="organization_link",
        help_text="Stripe's cus_… id.",
    )
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.customer_id} ({self.organization})"


class ProcessedStripeEvent(models.Model):
    """A Stripe webhook event that has been applied to our payments. The event is dj-stripe's
    (`djstripe.Event`: its type, time and object); this row is written in the same
    transaction as the event's effects, so a replayed delivery finds it and changes nothing.
    It goes when the purge removes the event."""

    event = models.OneToOneField(
        "djstripe.Event",
        to_field="id",
        db_column="event_id",
        db_constraint=False,
        on_delete=models.CASCADE,
        related_name="applied",
        help_text="Stripe's evt_… id.",
    )
    processed_at = models.DateTimeField()

    class Meta:
        ordering = ["-processed_at", "-pk"]

    def __str__(self) -> str:
        return f"Applied {self.event_id}"


class InvoiceReminder(models.Model):
    """A notice about an unpaid invoice of an organization paying by invoice, written when it
    is sent: the unique (invoice, kind) lets each go out once, however often the job runs.
    Append-only."""

    DUE_SOON = "due_soon"  # the due date is near
    SUSPENSION = "suspension"  # the grace period is over: service is suspended
    # Overdue notices are `overdue_<days>`, one per day of INVOICE_OVERDUE_REMINDER_DAYS.

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="reminders")
    kind = models.CharField(max_length=20)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["invoice", "sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "kind"], name="one_reminder_per_invoice_and_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.invoice}"

    @staticmethod
    def overdue(days: int) -> str:
        return f"overdue_{days}"


class StripeReconciliation(models.Model):
    """One daily comparison of our payments and refunds with Stripe's, as dj-stripe's sync
    mirrored them: one per day, so the job may run as often as it likes."""

    day = models.DateField(unique=True)
    ran_at = models.DateTimeField()
    payments_compared = models.PositiveIntegerField(default=0)
    refunds_compared = models.PositiveIntegerField(default=0)
    mismatches_found = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Reconciliation of {self.day}: {self.mismatches_found} mismatches"


class StripeMismatch(models.Model):
    """A payment, refund or payment method on which we and Stripe disagree. Listed until a later
    reconciliation finds both sides agreeing (then it is resolved, and kept)."""

    class Kind(models.TextChoices):
        MISSING_AT_STRIPE = "missing_at_stripe", "Recorded here, missing at Stripe"
        MISSING_HERE = "missing_here", "At Stripe, missing here"
        AMOUNT = "amount", "Amounts differ"
        STATUS = "status", "Statuses differ"
        DETAILS = "details", "Card or account details differ"

    class Object(models.TextChoices):
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"
        METHOD = "method", "Payment method"

    object_type = models.CharField(max_length=10, choices=Object.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    stripe_id = models.CharField(max_length=255, help_text="Stripe's pi_…, re_… or pm_… id.")
    attempt = models.ForeignKey(
        PaymentAttempt, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ours = models.CharField("here", max_length=100, blank=True)
    theirs = models.CharField("at Stripe", max_length=100, blank=True)
    first_found_on = models.DateField()
    last_found_on = models.DateField()
    resolved_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["resolved_on", "-first_found_on", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_id", "kind"],
                condition=Q(resolved_on__isnull=True),
                name="one_open_mismatch_per_object_and_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.stripe_id}"
