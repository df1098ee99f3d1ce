"""Support staff's view of payments: attempts, payment methods and the collection of each
invoice, plus the three things staff do about a payment, each on a confirmation page:
retry an open invoice now, record a bank transfer, refund a charge.

Everything here is written by the payment services, so every list and page is read-only;
the actions call one service each, and its refusal reaches staff as a message. Payment
methods show the processor and a masked token, never the token itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from djmoney.money import Money

from billing.accounts import selectors as account_selectors
from billing.admin.base import (
    BigTableAdmin,
    ReadOnlyAdmin,
    action_confirmed,
    invoice_link,
    invoice_timezone,
    null_state_filter,
)
from billing.models import Invoice, Organization
from billing.money import round_money
from payments import selectors, services
from payments.models import (
    Collection,
    PaymentAttempt,
    PaymentMethod,
    Refund,
    StripeMismatch,
    StripeReconciliation,
)

# --- shared pieces ------------------------------------------------------------------------


def _method_shown(attempt: PaymentAttempt) -> str:
    if attempt.payment_method is None:
        return attempt.get_channel_display()  # a bank transfer, recorded by staff
    return attempt.payment_method.label


class BankTransferForm(forms.Form):
    reference = forms.CharField(
        max_length=100,
        help_text="The transfer's reference or the bank's transaction id, as on the statement.",
    )
    received_on = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The day the money arrived, in the customer's timezone.",
    )

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, initial={"received_on": today}, **kwargs)
        self.today = today

    def clean_received_on(self) -> dt.date:
        received_on = self.cleaned_data["received_on"]
        if received_on > self.today:
            raise ValidationError("A transfer cannot have arrived in the future.")
        return received_on


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


# --- payment attempts and refunds ---------------------------------------------------------


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
        return _method_shown(attempt)

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
                f"Refunded {refund.amount} to {_method_shown(attempt)}. Credit note "
                f"{refund.credit_note.number} documents it on {attempt.invoice}; the "
                f"processor's reference is {refund.processor_reference}."
            ),
            method=_method_shown(attempt),
            refunded=refunded,
            refundable=refundable,
            can_submit=(
                attempt.status == PaymentAttempt.Status.SUCCEEDED
                and attempt.payment_method is not None
                and refundable.amount > 0
            ),
        )


# --- payment methods ----------------------------------------------------------------------


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


# --- collection of invoices ---------------------------------------------------------------


class DunningFilterForm(forms.Form):
    stage = forms.ChoiceField(required=False)
    payment_terms = forms.ChoiceField(
        required=False, choices=[("", "Any terms"), *Organization.PaymentTerms.choices]
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("days", "Days overdue"),
            ("amount", "Amount"),
            ("next_retry", "Next retry"),
            ("organization", "Organization"),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        retries = len(settings.PAYMENT_RETRY_DAYS)
        self.fields["stage"].choices = [
            ("", "Every stage"),
            *((f"retry-{n}", f"Retry {n} of {retries}") for n in range(1, retries + 1)),
            ("overdue", "Overdue, paying by invoice"),
            ("suspended", "Suspended"),
        ]


@admin.register(Collection)
class CollectionAdmin(ReadOnlyAdmin, BigTableAdmin):
    """Where collecting each invoice stands: dunning state, failures, next retry. Staff
    retry an open invoice now or record the bank transfer that paid it, from here or from
    the invoice's page."""

    list_display = (
        "invoice_shown",
        "organization",
        "state",
        "failures",
        "first_failed_at",
        "next_retry_at",
        "last_failure_message",
    )
    list_filter = ("state",)
    list_select_related = ("invoice__organization",)
    ordering = ("-pk",)
    sortable_by = ("next_retry_at",)  # indexed
    search_fields = ("=invoice__number",)
    search_help_text = "The exact invoice number."
    readonly_fields = (
        "invoice_shown",
        "organization",
        "state",
        "failures",
        "first_failed_at",
        "next_retry_at",
        "last_failure_message",
        "attempts_shown",
        "reminders_shown",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(*self.list_select_related)

    @admin.display(description="Invoice")
    def invoice_shown(self, collection):
        return invoice_link(collection.invoice)

    @admin.display(description="Organization")
    def organization(self, collection):
        return collection.invoice.organization

    @admin.display(description="Payment attempts")
    def attempts_shown(self, collection):
        attempts = collection.invoice.payment_attempts.select_related("payment_method")
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:payments_paymentattempt_change", args=[attempt.pk]),
                    f"{attempt.attempted_at:%Y-%m-%d %H:%M}",
                    _method_shown(attempt),
                    attempt.get_status_display(),
                    attempt.failure_message or attempt.processor_reference,
                )
                for attempt in attempts
            ),
        )
        return format_html(
            "<table><thead><tr><th>When (UTC)</th><th>Method</th><th>Status</th>"
            "<th>Failure or confirmation</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Reminders sent (pay by invoice)")
    def reminders_shown(self, collection):
        return (
            format_html_join(
                ", ",
                "{} on {}",
                (
                    (reminder.kind.replace("_", " "), f"{reminder.sent_at:%Y-%m-%d}")
                    for reminder in collection.invoice.reminders.all()
                ),
            )
            or None
        )

    def get_urls(self):
        return [
            path(
                "dunning/",
                self.admin_site.admin_view(self.dunning_board_view),
                name="payments_dunning_board",
            ),
            path(
                "invoice/<int:invoice_id>/retry/",
                self.admin_site.admin_view(self.retry_view),
                name="payments_invoice_retry",
            ),
            path(
                "invoice/<int:invoice_id>/bank-transfer/",
                self.admin_site.admin_view(self.bank_transfer_view),
                name="payments_invoice_bank_transfer",
            ),
            *super().get_urls(),
        ]

    def dunning_board_view(self, request):
        if not account_selectors.staff_reads_billing(user=request.user):
            raise PermissionDenied
        form = DunningFilterForm(request.GET or None)
        filters = form.cleaned_data if form.is_valid() else {}
        stages = selectors.dunning_board(
            now=timezone.now(),
            stage=filters.get("stage", ""),
            payment_terms=filters.get("payment_terms", ""),
            sort=filters.get("sort") or "days",
        )
        return TemplateResponse(
            request,
            "admin/payments/dunning_board.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Dunning board",
                "form": form,
                "stages": stages,
                "query": request.GET.copy(),
            },
        )

    @staticmethod
    def _invoice_to_collect(request, invoice_id, *, permission: str) -> Invoice:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return get_object_or_404(
            Invoice.objects.select_related("organization", "subscription", "collection"),
            pk=invoice_id,
        )

    @staticmethod
    def _invoice_shown(invoice: Invoice) -> dict:
        """What the retry and bank transfer pages show of the invoice and its collection."""
        due_on = invoice.due_at.astimezone(invoice_timezone(invoice)) if invoice.due_at else None
        return {
            "collection": getattr(invoice, "collection", None),
            "due_on": due_on,
            "can_submit": invoice.status == Invoice.Status.OPEN,
        }

    def retry_view(self, request, invoice_id):
        invoice = self._invoice_to_collect(request, invoice_id, permission="billing.retry_payment")
        if request.method == "POST" and invoice.status != Invoice.Status.OPEN:
            self.message_user(
                request,
                f"{invoice} is {invoice.get_status_display().lower()}: there is nothing to collect.",
                messages.ERROR,
            )
            return redirect("admin:billing_invoice_change", invoice.pk)
        now = timezone.now()
        # The methods `invoice_collect` tries, in its order: those of the configured processor.
        methods = PaymentMethod.objects.filter(
            organization=invoice.organization,
            removed_at__isnull=True,
            processor=settings.PAYMENT_GATEWAY,
        ).order_by("-is_default", "priority", "pk")
        return action_confirmed(
            self,
            request,
            original=invoice,
            template="admin/payments/invoice_retry.html",
            title=f"Retry payment of {invoice}",
            perform=lambda: services.invoice_collect(
                invoice=invoice, now=now, on_request=True, actor=request.user
            ),
            # A declined charge is no refusal: the attempts are recorded, and staff are told.
            succeeded=lambda attempt: attempt is not None,
            done=lambda attempt: self._collected(invoice, attempt, now),
            methods=methods,
            **self._invoice_shown(invoice),
        )

    @staticmethod
    def _collected(invoice: Invoice, attempt: PaymentAttempt | None, now: dt.datetime) -> str:
        if attempt is not None:
            return (
                f"Collected {attempt.amount} for {invoice} from {_method_shown(attempt)}: "
                f"confirmation number {attempt.processor_reference}."
            )
        # This try's attempts: each one the service made just now.
        tried = invoice.payment_attempts.filter(attempted_at=now).select_related("payment_method")
        outcome = "; ".join(
            f"{_method_shown(attempt)}: {attempt.failure_message or attempt.get_status_display()}"
            for attempt in tried
        )
        return (
            f"{invoice} is still unpaid. {outcome or 'There is no payment method on file.'} "
            "The retry schedule is unchanged."
        )

    def bank_transfer_view(self, request, invoice_id):
        invoice = self._invoice_to_collect(
            request, invoice_id, permission="billing.record_bank_transfer"
        )
        customer_tz = invoice_timezone(invoice)
        form = BankTransferForm(
            request.POST or None, today=timezone.localdate(timezone=customer_tz)
        )
        return action_confirmed(
            self,
            request,
            original=invoice,
            template="admin/payments/invoice_bank_transfer.html",
            title=f"Record a bank transfer for {invoice}",
            form=form,
            perform=lambda: services.invoice_record_bank_transfer(
                invoice=invoice,
                reference=form.cleaned_data["reference"],
                received_at=dt.datetime.combine(
                    form.cleaned_data["received_on"], dt.time.min, tzinfo=customer_tz
                ),
                actor=request.user,
            ),
            done=lambda attempt: self._transfer_recorded(invoice, form.cleaned_data["reference"]),
            **self._invoice_shown(invoice),
        )

    @staticmethod
    def _transfer_recorded(invoice: Invoice, reference: str) -> str:
        recorded = f"{invoice} is paid by bank transfer {reference}."
        if invoice.subscription is None:
            return recorded
        invoice.subscription.refresh_from_db(fields=["status"])
        status = invoice.subscription.get_status_display().lower()
        return f"{recorded} {invoice.organization}'s subscription is {status}."


# --- reconciliation with Stripe -----------------------------------------------------------


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
