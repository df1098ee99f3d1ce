"""Payment methods: the processor and a masked token, never the token itself."""

from __future__ import annotations

from django.contrib import admin

from billing.admin.base import (
    ReadOnlyAdmin,
    null_state_filter,
)
from payments.models import (
    PaymentMethod,
)

OnFileFilter = null_state_filter(
    "removed_at", unset=("on_file", "On file"), done=("removed", "Removed")
)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    """Customers add their methods through the processor, on their billing pages; staff see
    how to recognise each one (brand, last four digits, expiry), never its token in full."""

    list_display = (
        "label",
        "organization",
        "kind",
        "processor",
        "masked_token",
        "expiry",
        "is_default",
        "priority",
        "created_at",
        "removed_at",
    )
    list_filter = (OnFileFilter, "processor", "kind", "is_default")
    list_select_related = ("organization",)
    ordering = ("organization__name", "-is_default", "priority", "pk")
    search_fields = ("organization__name", "=organization__slug", "=last4")
    search_help_text = "Organization name or slug, or the last four digits."
    readonly_fields = (
        "organization",
        "label",
        "kind",
        "processor",
        "masked_token",
        "expiry",
        "billing_name",
        "billing_address",
        "billing_postal_code",
        "billing_country",
        "is_default",
        "priority",
        "created_at",
        "removed_at",
    )
    fields = readonly_fields

    @admin.display(description="Method")
    def label(self, method):
        return method.label

    @admin.display(description="Token")
    def masked_token(self, method):
        """Enough to match the processor's dashboard, not enough to charge the method."""
        return f"{method.token[:3]}…{method.token[-4:]}"

    @admin.display(description="Expiry")
    def expiry(self, method):
        return method.expiry or None
