"""Organizations and who belongs to them: their billing details, time zone and currency."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.validators import validate_email
from django.db import models
from simple_history.models import HistoricalRecords

from billing.errors import BillingError, ErrorCode


@functools.cache
def timezone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone the system knows. A callable, so migrations name it instead of
    copying the list (which also differs between machines with other tz data)."""
    return [(name, name) for name in sorted(available_timezones())]


def validate_email_list(value: str) -> None:
    for address in split_emails(value):
        validate_email(address)


def split_emails(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


class Organization(models.Model):
    class PaymentTerms(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic charge (card or bank account)"
        INVOICE = "invoice", "Pay by invoice (bank transfer)"

    class NoticeAudience(models.TextChoices):
        CONTACTS_AND_MEMBERS = "contacts_and_members", "The billing contacts and chosen members"
        CHOSEN_MEMBERS = "chosen_members", "Only the chosen members"

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
    timezone = models.CharField(max_length=64, choices=timezone_choices, default="UTC")
    payment_terms = models.CharField(
        max_length=10, choices=PaymentTerms.choices, default=PaymentTerms.AUTOMATIC
    )
    net_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days to pay an invoice, for organizations paying by invoice."
    )
    notice_audience = models.CharField(
        "who receives e-mailed notices",
        max_length=20,
        choices=NoticeAudience.choices,
        default=NoticeAudience.CONTACTS_AND_MEMBERS,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Who changed the billing details and when: invoices copy them when finalized.
    history = HistoricalRecords(excluded_fields=["created_at"])

    class Meta:
        ordering = ["name"]
        # The staff roles (billing/accounts/roles.py) are built from these and the defaults.
        permissions = [("view_billing", "Can read every organization's billing pages and export")]

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


class AuditEntry(models.Model):
    """One thing a staff member did: who, when, to what (and which organization's), what
    changed and why. Append-only: the record of staff writes is never changed or deleted."""

    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as it was when they acted, even if the account is renamed or removed.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=100)
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_entries",
    )
    object_type = models.CharField(max_length=100, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # {field: [before, after]}, as text.
    changes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["organization", "-at"], name="audit_by_organization"),
            models.Index(fields=["-at"], name="audit_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name}: {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise BillingError(ErrorCode.AUDIT_APPEND_ONLY)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise BillingError(ErrorCode.AUDIT_APPEND_ONLY)
