"""Stripe's side, for superusers: the reconciliation runs and the mismatches they found."""

from __future__ import annotations

from django.contrib import admin

from billing.admin.base import (
    ReadOnlyAdmin,
    invoice_link,
    null_state_filter,
)
from payments.models import (
    StripeMismatch,
    StripeReconciliation,
)


@admin.register(StripeMismatch)
class StripeMismatchAdmin(ReadOnlyAdmin):
    """What the daily reconciliation found: a payment or refund on which we and Stripe
    disagree. Open ones first; each closes by itself once a later run finds both sides
    agreeing (after a lost webhook is redelivered, a credit note is issued, or a card's
    details are corrected)."""

    list_display = (
        "stripe_id",
        "object_type",
        "kind",
        "ours",
        "theirs",
        "concerns",
        "first_found_on",
        "last_found_on",
        "resolved_on",
    )
    list_filter = (
        null_state_filter("resolved_on", unset=("open", "Open"), done=("resolved", "Resolved")),
        "kind",
        "object_type",
    )
    list_select_related = (
        "attempt__invoice",
        "refund__attempt__invoice",
        "payment_method__organization",
    )
    search_fields = ("=stripe_id",)
    search_help_text = "Stripe's pi_… or re_… id."
    readonly_fields = list_display
    fields = readonly_fields

    @admin.display(description="Concerns")
    def concerns(self, mismatch):
        """The invoice a payment or refund was for, or whose method it is."""
        if mismatch.payment_method:
            return f"{mismatch.payment_method.organization}: {mismatch.payment_method.label}"
        attempt = mismatch.attempt or (mismatch.refund.attempt if mismatch.refund else None)
        return invoice_link(attempt.invoice) if attempt else None


@admin.register(StripeReconciliation)
class StripeReconciliationAdmin(ReadOnlyAdmin):
    """When the daily reconciliation ran, how much it compared and how much differed."""

    list_display = ("day", "ran_at", "payments_compared", "refunds_compared", "mismatches_found")
    readonly_fields = list_display
    fields = readonly_fields
