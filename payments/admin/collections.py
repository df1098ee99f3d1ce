"""The collection of each invoice, the dunning board, and what staff do about an open
invoice on its confirmation page: retry it now, record a bank transfer."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.accounts import selectors as account_selectors
from billing.admin.base import (
    BigTableAdmin,
    ReadOnlyAdmin,
    action_confirmed,
    invoice_link,
    invoice_timezone,
)
from billing.models import Invoice, Organization
from payments import selectors, services
from payments.admin.attempts import method_shown
from payments.models import (
    Collection,
    PaymentAttempt,
    PaymentMethod,
)


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
                    method_shown(attempt),
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
                f"Collected {attempt.amount} for {invoice} from {method_shown(attempt)}: "
                f"confirmation number {attempt.processor_reference}."
            )
        # This try's attempts: each one the service made just now.
        tried = invoice.payment_attempts.filter(attempted_at=now).select_related("payment_method")
        outcome = "; ".join(
            f"{method_shown(attempt)}: {attempt.failure_message or attempt.get_status_display()}"
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
