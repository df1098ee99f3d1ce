"""Invoices, their lines and credit notes. A finalized invoice never changes: corrections are
credit notes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField

from billing.errors import BillingError, ErrorCode
from billing.models.accounts import Organization
from billing.models.subscriptions import Subscription
from billing.subscriptions import periods


class InvoiceLocked(BillingError):
    """A finalized invoice, or one of its lines, was about to change."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.INVOICE_FINALIZED, message)


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscription"  # the period's fee, usage of the last one
        USAGE = "usage", "Usage month"  # annual plans: one usage month in arrears
        FINAL = "final", "Final"  # the subscription ended: usage of its last period
        PLAN_CHANGE = "plan_change", "Plan change"  # prorations invoiced at once (a setting)

    # What may still change once the invoice is finalized: its settlement.
    SETTLEMENT_FIELDS = {
        "status",
        "paid_at",
        "payment_reference",
        "payment_method_description",
        "voided_at",
        "void_reason",
        "pdf",
    }

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="invoices"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=15, choices=Kind.choices)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(max_length=20, unique=True, null=True, blank=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()

    # Frozen at finalization: what the customer was when the invoice was issued.
    customer_name = models.CharField(max_length=200, blank=True)
    customer_address = models.TextField(blank=True)
    customer_tax_id = models.CharField(max_length=50, blank=True)
    customer_emails = models.TextField(blank=True)
    customer_timezone = models.CharField(max_length=64, blank=True)

    # total = subtotal + tax_total - credit_applied + credit_carried = the sum of the lines
    # = what is owed, never negative. At most one of the two credits is not zero.
    subtotal = MoneyField(max_digits=12, decimal_places=2, default=0)
    tax_total = MoneyField(max_digits=12, decimal_places=2, default=0)
    total = MoneyField(max_digits=12, decimal_places=2, default=0)
    # From the customer's balance to pay this invoice.
    credit_applied = MoneyField(max_digits=12, decimal_places=2, default=0)
    # To the customer's balance: what its credits exceeded its charges by.
    credit_carried = MoneyField(max_digits=12, decimal_places=2, default=0)

    issued_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField("confirmation number", max_length=100, blank=True)
    payment_method_description = models.CharField(max_length=100, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    pdf = models.FileField(upload_to="invoices/", blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-period_start", "-pk"]
        permissions = [
            ("void_invoice", "Can void an invoice"),
            ("retry_payment", "Can retry collecting an invoice"),
            ("record_bank_transfer", "Can record a bank transfer paying an invoice"),
        ]
        constraints = [
            # Exactly one invoice per subscription, kind and period, whatever runs twice.
            models.UniqueConstraint(
                fields=["subscription", "kind", "period_start"],
                condition=Q(subscription__isnull=False),
                name="one_invoice_per_subscription_period",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False),
                name="finalized_invoice_has_number",
            ),
            models.CheckConstraint(
                condition=Q(tax_total_currency=F("subtotal_currency"))
                & Q(total_currency=F("subtotal_currency"))
                & Q(credit_applied_currency=F("subtotal_currency"))
                & Q(credit_carried_currency=F("subtotal_currency")),
                name="invoice_amounts_share_one_currency",
            ),
            # What the credits exceed the charges by goes to the balance, never below zero.
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_not_negative"),
        ]
        indexes = [models.Index(fields=["organization", "-period_start"])]

    def __str__(self) -> str:
        return self.number or f"Draft invoice #{self.pk}"

    def save(self, *args, **kwargs):
        if self.pk and not self._may_change(kwargs.get("update_fields")):
            raise InvoiceLocked(f"{self} is finalized: issue a credit note to correct it.")
        super().save(*args, **kwargs)

    def _may_change(self, update_fields) -> bool:
        stored = Invoice.objects.filter(pk=self.pk).values("status").first()
        if stored is None or stored["status"] == self.Status.DRAFT:
            return True
        return update_fields is not None and set(update_fields) <= self.SETTLEMENT_FIELDS

    def delete(self, *args, **kwargs):
        if self.is_finalized:
            raise InvoiceLocked(f"{self} is finalized and is kept for good.")
        return super().delete(*args, **kwargs)

    @property
    def currency(self) -> str:
        return str(self.total.currency)

    @property
    def is_finalized(self) -> bool:
        return self.status != self.Status.DRAFT

    @property
    def period(self) -> periods.Period:
        return periods.Period(self.period_start, self.period_end)


class InvoiceLine(models.Model):
    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscription"
        PRORATION = "proration", "Proration"
        OVERAGE_CALLS = "overage_calls", "Call overage"
        OVERAGE_STORAGE = "overage_storage", "Storage overage"
        PHONE_NUMBER = "phone_number", "Phone number"
        ADDON = "addon", "Add-on"
        DISCOUNT = "discount", "Discount"
        CREDIT = "credit", "Credit"
        CARRIED = "carried", "Credit carried to the balance"
        TAX = "tax", "Tax"
        ADJUSTMENT = "adjustment", "Adjustment"

    # Lines that are charges (taxable, discountable), as opposed to discounts, taxes, credits.
    CHARGES = (
        Kind.SUBSCRIPTION,
        Kind.PRORATION,
        Kind.OVERAGE_CALLS,
        Kind.OVERAGE_STORAGE,
        Kind.PHONE_NUMBER,
        Kind.ADDON,
        Kind.ADJUSTMENT,
    )

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=18, decimal_places=6, default=1)
    unit_price = MoneyField(max_digits=18, decimal_places=6)
    amount = MoneyField(max_digits=12, decimal_places=2)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    tax_rate = models.ForeignKey("billing.TaxRate", null=True, blank=True, on_delete=models.PROTECT)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["invoice", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_price_currency=F("amount_currency")),
                name="line_amounts_share_one_currency",
            )
        ]

    def __str__(self) -> str:
        return self.description

    def save(self, *args, **kwargs):
        self._refuse_if_finalized()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_if_finalized()
        return super().delete(*args, **kwargs)

    def _refuse_if_finalized(self):
        if Invoice.objects.filter(pk=self.invoice_id).exclude(status=Invoice.Status.DRAFT).exists():
            raise InvoiceLocked("The lines of a finalized invoice cannot change.")

    @property
    def period(self) -> periods.Period | None:
        if self.period_start is None:
            return None
        return periods.Period(self.period_start, self.period_end)


class CreditNote(models.Model):
    """A correction of a finalized invoice: its amount is credited to the customer's balance
    (or refunded), and the invoice itself stays as it was issued."""

    number = models.CharField(max_length=20, unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    amount = MoneyField(max_digits=12, decimal_places=2)
    reason = models.TextField()
    issued_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_positive")
        ]

    def __str__(self) -> str:
        return self.number


class PendingLine(models.Model):
    """A charge or credit waiting for the subscription's next invoice: the prorations of a
    plan change. Written once; `invoice` is set when an invoice carries it."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="pending_lines"
    )
    kind = models.CharField(max_length=20, choices=InvoiceLine.Kind.choices)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=18, decimal_places=6, default=1)
    unit_price = MoneyField(max_digits=18, decimal_places=6)
    amount = MoneyField(max_digits=12, decimal_places=2)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="pending_lines"
    )

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_price_currency=F("amount_currency")),
                name="pending_line_amounts_share_one_currency",
            )
        ]
        indexes = [models.Index(fields=["subscription", "invoice"])]

    def __str__(self) -> str:
        return self.description

    @property
    def period(self) -> periods.Period:
        return periods.Period(self.period_start, self.period_end)
