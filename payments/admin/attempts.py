"""Payment attempts, read-only, and the refund of a charge on its confirmation page."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.html import format_html_join
from djmoney.money import Money

from billing.admin.base import (
    BigTableAdmin,
    ReadOnlyAdmin,
    action_confirmed,
    invoice_link,
)
from billing.money import round_money
from payments import services
from payments.models import (
    PaymentAttempt,
    Refund,
)


def method_shown(attempt: PaymentAttempt) -> str:
    if attempt.payment_method is None:
        return attempt.get_channel_display()  # a bank transfer, recorded by staff
    return attempt.payment_method.label


class RefundForm(forms.Form):
    amount = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed on the credit note that documents the refund.",
    )

    def __init__(self, *args, refundable: Money, **kwargs):
        super().__init__(*args, initial={"amount": refundable.amount}, **kwargs)
        self.refundable = refundable
        self.fields["amount"].label = f"Amount ({refundable.currency})"
        self.fields[
            "amount"
        ].help_text = f"At most {refundable}: what this charge collected, less its earlier refunds."

    def clean_amount(self) -> Decimal:
        # The processor gives back at most what it took on this charge.
        amount = self.cleaned_data["amount"]
        if amount > self.refundable.amount:
            raise ValidationError(f"At most {self.refundable} can be refunded on this charge.")
        return amount


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdmin, BigTableAdmin):
    """Every try to collect an invoice, newest first. A successful charge can be refunded
    from its page."""

    list_display = (
        "attempted_at",
        "invoice_shown",
        "organization",
        "method",
        "amount",
        "status",
        "failure",
        "processor_reference",
    )
    list_filter = ("status", "channel")
    list_select_related = ("invoice__organization", "payment_method")
    # Newest first along the primary key: no index orders attempts by `attempted_at`.
    ordering = ("-pk",)
    sortable_by = ()
    search_fields = ("=invoice__number", "=processor_reference")
    search_help_text = "The exact invoice number or confirmation number."
    readonly_fields = (
        "invoice_shown",
        "organization",
        "method",
        "channel",
        "amount",
        "status",
        "processor_reference",
        "failure_code",
        "failure_message",
        "attempted_at",
        "completed_at",
        "recorded_by",
        "idempotency_key",
        "refunds_shown",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.list_select_related)

    @admin.display(description="Invoice")
    def invoice_shown(self, attempt):
        return invoice_link(attempt.invoice)

    @admin.display(description="Organization")
    def organization(self, attempt):
        return attempt.invoice.organization

    @admin.display(description="Method")
    def method(self, attempt):
        return method_shown(attempt)

    @admin.display(description="Failure")
    def failure(self, attempt):
        return attempt.failure_message or attempt.failure_code or None

    @admin.display(description="Refunds")
    def refunds_shown(self, attempt):
        refunds = attempt.refunds.select_related("credit_note").order_by("created_at")
        return (
            format_html_join(
                "",
                "<p>{} on {}: credit note {}, processor reference {}</p>",
                (
                    (
                        refund.amount,
                        f"{refund.created_at:%Y-%m-%d}",
                        refund.credit_note,
                        refund.processor_reference,
                    )
                    for refund in refunds
                ),
            )
            or None
        )

    def get_urls(self):
        return [
            path(
                "<int:attempt_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="payments_paymentattempt_refund",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request, attempt_id):
        if not request.user.has_perm("payments.add_refund"):
            raise PermissionDenied
        attempt = get_object_or_404(
            PaymentAttempt.objects.select_related("invoice__organization", "payment_method"),
            pk=attempt_id,
        )
        currency = attempt.amount.currency
        # Rounded: SQLite sums decimals as floats.
        refunded = round_money(
            Money(
                Refund.objects.filter(attempt=attempt).aggregate(total=Sum("amount"))["total"] or 0,
                currency,
            )
        )
        refundable = attempt.amount - refunded
        form = RefundForm(request.POST or None, refundable=refundable)
        return action_confirmed(
            self,
            request,
            original=attempt,
            template="admin/payments/refund.html",
            title=f"Refund a payment of {attempt.invoice}",
            form=form,
            perform=lambda: services.payment_refund(
                attempt=attempt,
                amount=Money(form.cleaned_data["amount"], currency),
                reason=form.cleaned_data["reason"],
                actor=request.user,
            ),
            done=lambda refund: (
                f"Refunded {refund.amount} to {method_shown(attempt)}. Credit note "
                f"{refund.credit_note.number} documents it on {attempt.invoice}; the "
                f"processor's reference is {refund.processor_reference}."
            ),
            method=method_shown(attempt),
            refunded=refunded,
            refundable=refundable,
            can_submit=(
                attempt.status == PaymentAttempt.Status.SUCCEEDED
                and attempt.payment_method is not None
                and refundable.amount > 0
            ),
        )
