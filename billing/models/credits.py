"""What changes the amount an organization pays: its balance of credits, coupons, taxes."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from djmoney.models.fields import MoneyField

from billing.models.accounts import Organization
from billing.models.ledger import AppendOnly
from billing.money import format_percent


class BalanceEntry(AppendOnly):
    """The customer balance ledger, append-only: credits granted or carried from an invoice
    are positive, credits applied to an invoice negative. The balance is their sum."""

    class Kind(models.TextChoices):
        PROMOTIONAL = "promotional", "Promotional credit"
        REFERRAL = "referral", "Referral credit"
        GOODWILL = "goodwill", "Goodwill credit"
        CREDIT_NOTE = "credit_note", "Credit note"
        RETURNED = "returned", "Returned from a voided invoice"
        CARRIED = "carried", "Carried from an invoice whose credits exceeded its charges"
        APPLIED = "applied", "Applied to an invoice"

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="balance_entries"
    )
    kind = models.CharField(max_length=15, choices=Kind.choices)
    amount = MoneyField(max_digits=12, decimal_places=2)
    description = models.CharField(max_length=300)
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="balance_entries",
    )
    credit_note = models.OneToOneField(
        "billing.CreditNote",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="balance_entry",
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name_plural = "balance entries"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="applied") & Q(amount__lt=0))
                | (~Q(kind="applied") & Q(amount__gt=0)),
                name="credits_positive_applications_negative",
            ),
            # A credit is applied to an invoice once, whatever runs twice.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="applied"),
                name="credit_applied_once_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="carried"),
                name="credit_carried_once_per_invoice",
            ),
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.amount}"


class Coupon(models.Model):
    """A discount before tax: a percentage or a fixed amount, for one invoice, for N billing
    periods, or for as long as the subscription lasts."""

    class Duration(models.TextChoices):
        ONCE = "once", "Once"
        REPEATING = "repeating", "For a number of periods"
        FOREVER = "forever", "Forever"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    percent_off = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    amount_off = MoneyField(max_digits=12, decimal_places=2, null=True, blank=True)
    duration = models.CharField(max_length=10, choices=Duration.choices, default=Duration.ONCE)
    duration_in_periods = models.PositiveSmallIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="Can still be given to organizations.")
    is_promotion = models.BooleanField(
        default=False,
        help_text="Its code is a promotion code: organization administrators may redeem it "
        "on their billing pages, once per organization.",
    )
    redeemable_from = models.DateTimeField(
        null=True, blank=True, help_text="A promotion code works from then. Empty: at once."
    )
    redeemable_until = models.DateTimeField(
        null=True, blank=True, help_text="… and until then (exclusive). Empty: no end."
    )
    max_redemptions = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many organizations may redeem it. Empty: any."
    )
    redemptions = models.PositiveIntegerField(
        default=0, editable=False, help_text="Organizations that redeemed the promotion code."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent_off__isnull=False, amount_off__isnull=True)
                | Q(percent_off__isnull=True, amount_off__isnull=False),
                name="coupon_percent_or_amount",
            ),
            models.CheckConstraint(
                condition=~Q(duration="repeating") | Q(duration_in_periods__gt=0),
                name="repeating_coupon_has_periods",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(redemptions__lte=models.F("max_redemptions")),
                name="coupon_redemptions_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(redeemable_from__isnull=True)
                | Q(redeemable_until__isnull=True)
                | Q(redeemable_until__gt=models.F("redeemable_from")),
                name="coupon_redeemable_until_after_from",
            ),
        ]

    def __str__(self) -> str:
        off = f"{format_percent(self.percent_off)}%" if self.percent_off else str(self.amount_off)
        return f"{self.name} ({off} off, {self.describe_duration()})"

    def describe_duration(self) -> str:
        if self.duration == self.Duration.REPEATING:
            return f"{self.duration_in_periods} periods"
        return self.get_duration_display().lower()

    @property
    def periods(self) -> int | None:
        """How many invoices it discounts; None for ever."""
        return {self.Duration.ONCE: 1, self.Duration.FOREVER: None}.get(
            self.duration, self.duration_in_periods
        )


class Discount(models.Model):
    """A coupon given to an organization, counting the invoices it has discounted."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="discounts"
    )
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="discounts")
    periods_used = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(ended_at__isnull=True),
                name="one_discount_at_a_time",
            )
        ]

    def __str__(self) -> str:
        return f"{self.coupon} for {self.organization}"


class TaxRate(models.Model):
    """A tax or regulatory fee of one jurisdiction, on the line kinds it names."""

    name = models.CharField(max_length=100, help_text="As printed on invoices, e.g. VAT.")
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    region = models.CharField(max_length=100, blank=True, help_text="Empty: the whole country.")
    percentage = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    applies_to = models.JSONField(
        default=list, help_text='Line kinds it is charged on, e.g. ["phone_number"].'
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["country", "region", "name"]

    def __str__(self) -> str:
        where = f"{self.country} {self.region}".strip()
        return f"{self.name} {format_percent(self.percentage)}% ({where})"


class Referral(models.Model):
    """An organization referred by another through its referral link. When the referred
    organization pays its first invoice, both receive a referral credit, once."""

    referrer = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="referrals_made"
    )
    referred = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="referral")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    credited_at = models.DateTimeField(
        null=True, blank=True, help_text="When both credits were given: the first paid invoice."
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(referrer=models.F("referred")), name="no_self_referral"
            )
        ]

    def __str__(self) -> str:
        return f"{self.referred} referred by {self.referrer}"
