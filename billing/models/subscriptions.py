from __future__ import annotations

import datetime as dt
from functools import cached_property
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField
from djmoney.money import Money
from simple_history.models import HistoricalRecords

from billing import periods
from billing.errors import ErrorCode
from billing.money import round_money

TIMEZONE_CHOICES = [(name, name) for name in sorted(available_timezones())]


def validate_email_list(value: str) -> None:
    for address in split_emails(value):
        validate_email(address)


def split_emails(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


class Organization(models.Model):
    class PaymentTerms(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic charge (card or bank account)"
        INVOICE = "invoice", "Pay by invoice (bank transfer)"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    billing_emails = models.TextField(
        validators=[validate_email_list],
        help_text="Where invoices and billing notices go; separate several with commas.",
    )
    address_line1 = models.CharField("address", max_length=200, blank=True)
    address_line2 = models.CharField("address (continued)", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField("state or region", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(
        max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code; decides taxes."
    )
    tax_id = models.CharField("tax ID", max_length=50, blank=True)
    currency = models.CharField(
        max_length=3, choices=[(code, code) for code in settings.CURRENCIES], default="USD"
    )
    timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES, default="UTC")
    payment_terms = models.CharField(
        max_length=10, choices=PaymentTerms.choices, default=PaymentTerms.AUTOMATIC
    )
    net_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days to pay an invoice, for organizations paying by invoice."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def billing_email_list(self) -> list[str]:
        return split_emails(self.billing_emails)

    @property
    def address_lines(self) -> list[str]:
        locality = " ".join(part for part in (self.postal_code, self.city) if part)
        lines = [self.address_line1, self.address_line2, locality, self.region, self.country]
        return [line for line in lines if line]


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Administrator"
        MEMBER = "member", "Member"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.organization} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class Feature(models.Model):
    class Category(models.TextChoices):
        CORE = "core", "Core"
        ADVANCED = "advanced", "Advanced"
        PREMIUM = "premium", "Premium"

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    category = models.CharField(max_length=10, choices=Category.choices)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Plan(models.Model):
    """One version of a catalog plan. Its commercial terms never change once subscribed to:
    a new price or allowance is a new version, and subscribers keep the one they have."""

    class Tier(models.TextChoices):
        STARTER = "starter", "Starter"
        PROFESSIONAL = "professional", "Professional"
        BUSINESS = "business", "Business"
        ENTERPRISE = "enterprise", "Enterprise"

    class Interval(models.TextChoices):
        MONTH = "month", "Monthly"
        YEAR = "year", "Annual"

    class OveragePolicy(models.TextChoices):
        BLOCK = "block", "Block calls when the allowance is used"
        CHARGE = "charge", "Charge per second beyond the allowance"

    TIER_RANK = {Tier.STARTER: 1, Tier.PROFESSIONAL: 2, Tier.BUSINESS: 3, Tier.ENTERPRISE: 4}
    INTERVAL_MONTHS = {Interval.MONTH: 1, Interval.YEAR: 12}
    # Fields that make up the commercial terms: frozen once an organization subscribes.
    TERMS = (
        "tier",
        "interval",
        "price",
        "included_call_seconds",
        "max_active_employees",
        "max_phone_numbers",
        "free_phone_numbers",
        "storage_gb",
        "api_calls_per_month",
        "max_integrations",
        "overage_policy",
        "overage_rate_per_second",
        "overage_rate_per_gb",
        "overage_cap",
    )

    code = models.SlugField(
        max_length=60, help_text="Stable identifier shared by every version of the plan."
    )
    version = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    tier = models.CharField(max_length=20, choices=Tier.choices)
    interval = models.CharField(max_length=5, choices=Interval.choices)
    price = MoneyField(max_digits=12, decimal_places=2)
    is_public = models.BooleanField(
        default=True, help_text="Listed for every organization; private plans are for one."
    )
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="private_plans",
        help_text="The one organization a private (custom) plan is offered to.",
    )
    is_available = models.BooleanField(
        default=True,
        help_text="Offered to new subscriptions. Older versions stay with their subscribers.",
    )

    # Allowances; an empty value means unlimited.
    included_call_seconds = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Per usage month (monthly, also on annual plans)."
    )
    max_active_employees = models.PositiveIntegerField(
        "max active AI employees", null=True, blank=True
    )
    max_phone_numbers = models.PositiveIntegerField(null=True, blank=True)
    free_phone_numbers = models.PositiveIntegerField(
        default=0, help_text="How many provisioned numbers carry no monthly fee."
    )
    storage_gb = models.PositiveIntegerField(
        "storage (GiB)", null=True, blank=True, help_text="In GiB: 2^30 bytes each."
    )
    api_calls_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    max_integrations = models.PositiveIntegerField(null=True, blank=True)

    overage_policy = models.CharField(
        max_length=10, choices=OveragePolicy.choices, default=OveragePolicy.BLOCK
    )
    overage_rate_per_second = MoneyField(
        max_digits=12, decimal_places=6, default=0, help_text="Charged beyond the included seconds."
    )
    overage_rate_per_gb = MoneyField(
        "overage rate per GiB", max_digits=12, decimal_places=2, default=0
    )
    overage_cap = MoneyField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        # No cap, no currency: a default one would differ from a euro or pound price.
        default_currency=None,
        help_text="Most overage charged in one period; reaching it blocks new calls.",
    )

    trial_days = models.PositiveSmallIntegerField(
        default=0,
        help_text="Days of free trial a first subscription starts with; 0 for none. "
        "An offer, not a term: it can change while the plan has subscribers.",
    )

    features = models.ManyToManyField(Feature, blank=True, related_name="plans")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(excluded_fields=["created_at"])

    class Meta:
        ordering = ["price", "interval", "code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="plan_code_version_unique"),
            models.CheckConstraint(
                condition=Q(is_public=True, organization__isnull=True)
                | Q(is_public=False, organization__isnull=False),
                name="private_plan_has_one_organization",
            ),
            models.CheckConstraint(
                condition=Q(overage_rate_per_second_currency=F("price_currency"))
                & Q(overage_rate_per_gb_currency=F("price_currency"))
                & (Q(overage_cap__isnull=True) | Q(overage_cap_currency=F("price_currency"))),
                name="plan_amounts_share_one_currency",
            ),
            models.CheckConstraint(
                condition=Q(max_phone_numbers__isnull=True)
                | Q(free_phone_numbers__lte=F("max_phone_numbers")),
                name="free_numbers_within_limit",
            ),
        ]
        indexes = [models.Index(fields=["is_available", "is_public"])]

    def __str__(self) -> str:
        suffix = f" v{self.version}" if self.version > 1 else ""
        return f"{self.name} ({self.get_interval_display()}){suffix}"

    @property
    def currency(self) -> str:
        return str(self.price.currency)

    @property
    def months(self) -> int:
        return self.INTERVAL_MONTHS[self.interval]

    @property
    def rank(self) -> int:
        return self.TIER_RANK[self.tier]

    @property
    def monthly_equivalent(self) -> Money:
        return round_money(self.price / self.months)

    @property
    def included_call_minutes(self) -> int | None:
        if self.included_call_seconds is None:
            return None
        return self.included_call_seconds // 60

    @property
    def charges_overage(self) -> bool:
        return self.overage_policy == self.OveragePolicy.CHARGE

    def clean(self) -> None:
        self._check_one_currency()
        if self.is_public and self.organization_id:
            raise ValidationError(
                {"organization": "A public plan is not tied to one organization."}
            )
        if not self.is_public and not self.organization_id:
            raise ValidationError({"organization": "A private plan names its organization."})
        if self.pk and self.subscriptions.exists():
            stored = Plan.objects.get(pk=self.pk)
            changed = [name for name in self.TERMS if getattr(stored, name) != getattr(self, name)]
            if changed:
                raise ValidationError(
                    "This plan has subscribers, so its terms (%(fields)s) cannot change. "
                    "Create a new version instead; subscribers keep the version they have.",
                    code=ErrorCode.PLAN_IN_USE,
                    params={"fields": ", ".join(changed)},
                )

    def _check_one_currency(self) -> None:
        """Every amount of a plan is in the currency of its price."""
        if self.price is None:
            return
        currency = self.currency
        wrong = {
            name: f"Enter it in {currency}, the currency of the price: a plan bills in one."
            for name in ("overage_rate_per_second", "overage_rate_per_gb", "overage_cap")
            if getattr(self, name) is not None and str(getattr(self, name).currency) != currency
        }
        if wrong:
            raise ValidationError(wrong)


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
    anchor_timezone = models.CharField(max_length=64, choices=TIMEZONE_CHOICES)
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
