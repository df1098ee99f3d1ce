"""AI employees, the phone-number price list and the numbers held."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField
from djmoney.money import Money

from billing.models import Organization

E164 = RegexValidator(
    r"^\+[1-9]\d{6,14}$",
    "Enter the number in E.164 form: + then 7 to 15 digits, e.g. +14155550100.",
)


class AIEmployee(models.Model):
    """A voice agent. It counts toward the plan's quota while active; deactivating keeps
    its configuration and history and frees the quota."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="employees"
    )
    name = models.CharField(max_length=100)
    cost_center = models.CharField(
        max_length=100, blank=True, help_text="Team or project the employee's usage is billed to."
    )
    inbound_capable = models.BooleanField(
        default=True, help_text="Answers calls; needs a phone number to receive them."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "AI employee"
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["organization", "is_active"])]

    def __str__(self) -> str:
        return self.name


class PhoneNumberRate(models.Model):
    """Staff-managed price list: a number's monthly fee is the type price, plus the regional
    regulatory fee, plus the vanity surcharge for vanity numbers."""

    class Type(models.TextChoices):
        LOCAL = "local", "Local"
        TOLL_FREE = "toll_free", "Toll-free"

    number_type = models.CharField(max_length=10, choices=Type.choices)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code.")
    region = models.CharField(
        max_length=100,
        blank=True,
        help_text="Empty: every region of the country without its own rate.",
    )
    monthly_price = MoneyField(max_digits=10, decimal_places=2)
    regulatory_fee = MoneyField(max_digits=10, decimal_places=2, default=0)
    vanity_surcharge = MoneyField(max_digits=10, decimal_places=2, default=0)

    class Meta:
        ordering = ["country", "region", "number_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["number_type", "country", "region", "monthly_price_currency"],
                name="one_rate_per_type_and_place",
            ),
            models.CheckConstraint(
                condition=Q(regulatory_fee_currency=F("monthly_price_currency"))
                & Q(vanity_surcharge_currency=F("monthly_price_currency")),
                name="rate_amounts_share_one_currency",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.country} {self.region}".strip()
        return f"{self.get_number_type_display()} · {where}"

    def monthly_fee(self, *, vanity: bool) -> Money:
        fee = self.monthly_price + self.regulatory_fee
        return fee + self.vanity_surcharge if vanity else fee


class PhoneNumber(models.Model):
    """A provisioned number. Its monthly fee is fixed when provisioned. Once released it is
    never given back to the organization that released it."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="phone_numbers"
    )
    number = models.CharField(max_length=16, validators=[E164])
    number_type = models.CharField(max_length=10, choices=PhoneNumberRate.Type.choices)
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=100, blank=True)
    is_vanity = models.BooleanField(default=False)
    monthly_fee = MoneyField(max_digits=10, decimal_places=2)
    employee = models.ForeignKey(
        AIEmployee,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="phone_numbers",
        help_text="The AI employee that answers calls to this number.",
    )
    provisioned_at = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provisioned_at", "pk"]
        constraints = [
            # A number is held by at most one organization at a time, and an organization
            # holds it at most once, ever: a released number cannot come back.
            models.UniqueConstraint(
                fields=["number"], condition=Q(released_at__isnull=True), name="number_held_once"
            ),
            models.UniqueConstraint(
                fields=["organization", "number"], name="number_never_reprovisioned"
            ),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True) | Q(released_at__gte=F("provisioned_at")),
                name="released_after_provisioned",
            ),
        ]
        indexes = [models.Index(fields=["organization", "released_at"])]

    def __str__(self) -> str:
        return self.number

    @property
    def is_active(self) -> bool:
        return self.released_at is None
