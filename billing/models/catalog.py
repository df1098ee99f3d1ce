"""The catalog: features, and the plans that include them, in versions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField
from djmoney.money import Money
from simple_history.models import HistoricalRecords

from billing.errors import ErrorCode
from billing.models.accounts import Organization
from billing.money import round_money


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
