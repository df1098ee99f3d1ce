"""Invoices, credit notes, and what changes the amount due: coupons and discounts, tax
rates, the customer balance. Invoices are written by the services and never edited;
corrections are a void or a credit note, each on its own confirmation page."""

import csv
import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from djmoney.money import Money
from sequences.models import Sequence

from billing.accounts import selectors as account_selectors
from billing.admin.base import (
    AuditedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAddAdmin,
    action_confirmed,
    adopt,
    invoice_timezone,
)
from billing.forms import BalanceCreditGrantForm, CreditNoteForm, InvoiceVoidForm, TaxRateForm
from billing.invoicing import services as invoicing_services
from billing.lifecycle import revenue
from billing.models import (
    BalanceEntry,
    Coupon,
    CreditNote,
    Discount,
    Invoice,
    InvoiceLine,
    Referral,
    TaxRate,
)
from billing.money import format_rate
from usage import charts


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("kind", "description", "quantity_shown", "unit_price_shown", "amount", "period")

    def get_queryset(self, request):
        # Each line's period is shown in its invoice's customer timezone.
        return super().get_queryset(request).select_related("invoice__organization")

    @admin.display(description="Quantity")
    def quantity_shown(self, line):
        return f"{line.quantity.normalize():,f}"

    @admin.display(description="Unit price")
    def unit_price_shown(self, line):
        return format_rate(line.unit_price)  # $0.004 a second, not $0.00

    @admin.display(description="Period")
    def period(self, line):
        if line.period is None:
            return "—"
        return line.period.label(invoice_timezone(line.invoice))


@admin.register(Invoice)
class InvoiceAdmin(AuditedAdmin):
    """Invoices are written by the services and never edited: every field is read-only,
    nothing is deleted, and corrections are a void or a credit note, each on its own page."""

    list_display = (
        "__str__",
        "organization",
        "kind",
        "period",
        "total",
        "status",
        "issued_at",
        "pdf_link",
    )
    list_filter = ("status", "kind")
    list_select_related = ("organization",)
    search_fields = ("number", "organization__name")
    search_help_text = "Invoice number or organization name."
    inlines = (InvoiceLineInline,)
    change_form_template = "admin/billing/invoice/change_form.html"
    fieldsets = (
        (None, {"fields": ("number", "organization", "subscription", "kind", "status", "period")}),
        (
            "Amounts",
            {
                "fields": (
                    "subtotal",
                    "tax_total",
                    "credit_applied",
                    "credit_carried",
                    "total",
                    "pdf_link",
                )
            },
        ),
        ("Dates", {"fields": ("issued_at", "due_at", "created_at")}),
        (
            "Customer, as invoiced",
            {
                "fields": (
                    "customer_name",
                    "customer_address",
                    "customer_tax_id",
                    "customer_emails",
                    "customer_timezone",
                )
            },
        ),
        (
            "Settlement",
            {
                "fields": (
                    "paid_at",
                    "payment_method_description",
                    "payment_reference",
                    "voided_at",
                    "void_reason",
                )
            },
        ),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Shown to read (every field is read-only), never saved from the form.
        if request.method == "POST":
            raise PermissionDenied
        read_only = {"title": "Invoice", "show_save": False, "show_save_and_continue": False}
        return super().changeform_view(
            request, object_id, form_url, {**(extra_context or {}), **read_only}
        )

    @admin.display(description="Period")
    def period(self, invoice):
        return invoice.period.label(invoice_timezone(invoice))

    @admin.display(description="PDF")
    def pdf_link(self, invoice):
        if not invoice.is_finalized:
            return "—"
        url = reverse("billing:invoice_pdf", args=[invoice.organization.slug, invoice.number])
        return format_html('<a href="{}">{}.pdf</a>', url, invoice.number)

    def get_urls(self):
        return [
            path(
                "revenue/",
                self.admin_site.admin_view(self.revenue_view),
                name="billing_revenue_metrics",
            ),
            path(
                "revenue/organizations/",
                self.admin_site.admin_view(self.revenue_organizations_view),
                name="billing_revenue_organizations",
            ),
            path(
                "<int:invoice_id>/void/",
                self.admin_site.admin_view(self.void_view),
                name="billing_invoice_void",
            ),
            path(
                "<int:invoice_id>/credit-note/",
                self.admin_site.admin_view(self.credit_note_view),
                name="billing_invoice_credit_note",
            ),
            *super().get_urls(),
        ]

    def revenue_view(self, request):
        if not account_selectors.staff_reads_billing(user=request.user):
            raise PermissionDenied
        now = timezone.now()
        form = RevenueMonthForm(request.GET or None)
        month = (
            form.cleaned_data["month"]
            if form.is_valid() and form.cleaned_data["month"]
            else now.date()
        )
        report = revenue.revenue_report(month=month, now=now)
        return TemplateResponse(
            request,
            "admin/billing/revenue.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Revenue, {report.start:%B %Y}",
                "form": form,
                "report": report,
                "definitions": revenue.REVENUE_DEFINITIONS,
                "month_note": revenue.REVENUE_MONTH_NOTE,
                "previous": (report.start - dt.timedelta(days=1)).strftime("%Y-%m"),
                "trends": [
                    (currency, _trend_chart(points, "mrr"), _trend_chart(points, "usage_run_rate"))
                    for currency, points in revenue.revenue_trend(month=month, now=now).items()
                ],
            },
        )

    def revenue_organizations_view(self, request):
        """The organizations behind one figure of a month (`?figure=`), or every
        organization's part of the month's figures as CSV (`?format=csv`). A month or figure
        that is not one is refused, naming it."""
        if not account_selectors.staff_reads_billing(user=request.user):
            raise PermissionDenied
        now = timezone.now()
        form = RevenueOrganizationsForm(request.GET)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/billing/revenue_organizations.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": "Revenue: the organizations behind a figure",
                    "form": form,
                },
                status=400,
            )
        month = form.cleaned_data["month"] or now.date()
        if form.cleaned_data["format"] == "csv":
            return _revenue_csv(revenue.revenue_organizations(month=month, now=now), month)
        figure = form.cleaned_data["figure"] or "mrr"
        columns = REVENUE_COLUMNS[figure]
        rows = revenue.revenue_organizations(month=month, now=now, figure=figure)
        return TemplateResponse(
            request,
            "admin/billing/revenue_organizations.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": (
                    f"{revenue.REVENUE_DEFINITIONS[figure][0]}, {month:%B %Y}: "
                    "the organizations behind it"
                ),
                "form": form,
                "month": f"{month:%Y-%m}",
                "definition": revenue.REVENUE_DEFINITIONS[figure][1],
                "headings": [heading for heading, _ in columns],
                "rows": [
                    (row, [getattr(row, attribute) for _, attribute in columns]) for row in rows
                ],
            },
        )

    @staticmethod
    def _invoice_to_correct(request, invoice_id, *, permission: str) -> Invoice:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return get_object_or_404(Invoice.objects.select_related("organization"), pk=invoice_id)

    def void_view(self, request, invoice_id):
        invoice = self._invoice_to_correct(request, invoice_id, permission="billing.void_invoice")
        form = InvoiceVoidForm(request.POST or None)
        return action_confirmed(
            self,
            request,
            original=invoice,
            template="admin/billing/invoice/void.html",
            title=f"Void {invoice}",
            form=form,
            perform=lambda: invoicing_services.invoice_void(
                invoice=invoice, reason=form.cleaned_data["reason"], actor=request.user
            ),
            done=lambda voided: (
                f"{invoice} is void: nothing is owed on it, and credit it used is back on the "
                "customer's balance."
            ),
            period=invoice.period.label(invoice_timezone(invoice)),
        )

    def credit_note_view(self, request, invoice_id):
        invoice = self._invoice_to_correct(request, invoice_id, permission="billing.add_creditnote")
        form = CreditNoteForm(request.POST or None)
        return action_confirmed(
            self,
            request,
            original=invoice,
            template="admin/billing/invoice/credit_note.html",
            title=f"Issue a credit note for {invoice}",
            form=form,
            perform=lambda: invoicing_services.credit_note_issue(
                invoice=invoice,
                amount=Money(form.cleaned_data["amount"], invoice.currency),
                reason=form.cleaned_data["reason"],
                actor=request.user,
            ),
            done=lambda credit_note: (
                f"Credit note {credit_note} for {credit_note.amount} issued: it is on "
                f"{invoice.organization}'s balance and pays its next invoices."
            ),
            period=invoice.period.label(invoice_timezone(invoice)),
        )


def _trend_chart(points: list[revenue.TrendPoint], figure: str) -> charts.Chart:
    """A column per month of one figure, in cents; labelled in the currency."""
    currency = str(getattr(points[0], figure).currency)
    return charts.column_chart(
        [(f"{point.month:%b %y}", int(getattr(point, figure).amount * 100)) for point in points],
        value_label=lambda cents: f"{Money(Decimal(cents) / 100, currency)}",
        tick_unit=100,
        tick_suffix=f" {currency}",
    )


class RevenueMonthForm(forms.Form):
    month = forms.DateField(
        required=False,
        input_formats=["%Y-%m"],
        help_text="YYYY-MM; this month unless given.",
        error_messages={"invalid": "Give the month as YYYY-MM, e.g. 2026-03."},
    )


class RevenueOrganizationsForm(RevenueMonthForm):
    figure = forms.ChoiceField(
        required=False,
        choices=[
            (name, revenue.REVENUE_DEFINITIONS[name][0]) for name in revenue.REVENUE_DRILL_DOWNS
        ],
        error_messages={"invalid_choice": "%(value)s is not a figure of the revenue page."},
    )
    format = forms.ChoiceField(
        required=False,
        choices=[("", "page"), ("csv", "CSV")],
        error_messages={"invalid_choice": "%(value)s is not a format: leave it out, or csv."},
    )


_MRR_COLUMNS = [
    ("MRR at the start", "mrr_start"),
    ("MRR at the end", "mrr"),
    ("Movement", "movement"),
]
# What each figure's organizations show: the parts that make up the figure.
REVENUE_COLUMNS = {
    **{name: _MRR_COLUMNS for name in revenue.REVENUE_DRILL_DOWNS},
    "usage_run_rate": [("Usage run-rate", "usage_run_rate")],
    "dunning_recovery": [
        ("Entered dunning", "dunning_entered"),
        ("Recovered by the month's end", "dunning_recovered"),
    ],
    "invoiced": [("Invoiced", "invoiced")],
    "collected": [("Collected, less refunds", "collected")],
    "overdue": [("Overdue", "overdue"), ("Invoices", "overdue_invoices")],
}
REVENUE_CSV_FIELDS = [
    "currency",
    "mrr_start",
    "mrr",
    "movement",
    "usage_run_rate",
    "invoiced",
    "collected",
    "overdue",
    "overdue_invoices",
    "dunning_entered",
    "dunning_recovered",
]


def _revenue_csv(rows: list[revenue.OrganizationRevenue], month: dt.date) -> HttpResponse:
    """Every organization's part of the month's figures, amounts without their currency sign
    (the currency is a column of its own)."""
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="revenue-{month:%Y-%m}.csv"'
    writer = csv.writer(response)
    writer.writerow(["organization", *REVENUE_CSV_FIELDS])
    for row in rows:
        values = (getattr(row, field) for field in REVENUE_CSV_FIELDS)
        writer.writerow(
            [row.name, *(value.amount if isinstance(value, Money) else value for value in values)]
        )
    return response


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Issued from an invoice's page; kept as issued."""

    list_display = (
        "number",
        "invoice",
        "organization",
        "amount",
        "reason",
        "issued_at",
        "created_by",
    )
    list_select_related = ("invoice__organization", "created_by")
    search_fields = ("number", "invoice__number", "invoice__organization__name")
    fields = ("number", "invoice", "amount", "reason", "issued_at", "created_by")

    @admin.display(description="Organization")
    def organization(self, credit_note):
        return credit_note.invoice.organization


@admin.register(Coupon)
class CouponAdmin(AuditedAdmin):
    saved_by_service = True
    list_display = (
        "code",
        "name",
        "off",
        "duration_shown",
        "is_active",
        "is_promotion",
        "redemptions_shown",
        "organizations_using",
    )
    list_filter = ("is_active", "is_promotion", "duration")
    search_fields = ("code", "name")
    fields = (
        "code",
        "name",
        "percent_off",
        "amount_off",
        "duration",
        "duration_in_periods",
        "is_active",
        "is_promotion",
        "redeemable_from",
        "redeemable_until",
        "max_redemptions",
    )
    # What organizations were given: fixed once the coupon is used.
    TERMS = ("code", "percent_off", "amount_off", "duration", "duration_in_periods")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                using=Count(
                    "discounts__organization",
                    filter=Q(discounts__ended_at__isnull=True),
                    distinct=True,
                )
            )
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.discounts.exists():
            return self.TERMS
        return ()

    @admin.display(description="Off")
    def off(self, coupon):
        return f"{coupon.percent_off.normalize()}%" if coupon.percent_off else coupon.amount_off

    @admin.display(description="Duration")
    def duration_shown(self, coupon):
        return coupon.describe_duration()

    @admin.display(description="Redeemed", ordering="redemptions")
    def redemptions_shown(self, coupon):
        if not coupon.is_promotion:
            return "—"
        limit = coupon.max_redemptions
        return f"{coupon.redemptions} of {limit}" if limit is not None else str(coupon.redemptions)

    @admin.display(description="Organizations using it", ordering="using")
    def organizations_using(self, coupon):
        return coupon.using


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    """Organizations that joined through another's referral link, and when both were
    credited (their first paid invoice)."""

    list_display = ("referred", "referrer", "created_at", "credited_at")
    list_select_related = ("referred", "referrer")
    search_fields = ("referred__name", "referrer__name")


@admin.register(Discount)
class DiscountAdmin(ServiceAddAdmin):
    """A coupon given to an organization; it discounts its next invoices, before tax."""

    list_display = ("organization", "coupon", "periods_used", "created_at", "ended_at")
    list_filter = ("coupon",)
    list_select_related = ("organization", "coupon")
    search_fields = ("organization__name", "coupon__code")
    autocomplete_fields = ("organization",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("organization", "coupon")
        return ("organization", "coupon", "periods_used", "created_at", "ended_at")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "coupon":
            kwargs["queryset"] = Coupon.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        adopt(
            obj,
            invoicing_services.discount_apply(
                organization=obj.organization, coupon=obj.coupon, actor=request.user
            ),
        )


@admin.register(TaxRate)
class TaxRateAdmin(AuditedAdmin):
    saved_by_service = True
    form = TaxRateForm
    list_display = ("name", "country", "region", "percentage", "charged_on", "is_active")
    list_filter = ("is_active", "country")
    search_fields = ("name", "country", "region")

    def get_readonly_fields(self, request, obj=None):
        # Invoices point at the rate they charged: once used, only retiring it remains.
        if obj is not None and InvoiceLine.objects.filter(tax_rate=obj).exists():
            return ("name", "country", "region", "percentage", "applies_to")
        return ()

    @admin.display(description="Charged on")
    def charged_on(self, rate):
        return ", ".join(InvoiceLine.Kind(kind).label for kind in rate.applies_to)


@admin.register(BalanceEntry)
class BalanceEntryAdmin(ServiceAddAdmin):
    """The customer balance ledger, append-only. Staff grant credit through the service."""

    list_display = ("created_at", "organization", "kind", "amount", "description", "invoice")
    list_filter = ("kind",)
    list_select_related = ("organization", "invoice")
    search_fields = ("organization__name", "description")
    autocomplete_fields = ("organization",)

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(
            request, form_url, {"title": "Grant credit", **(extra_context or {})}
        )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = BalanceCreditGrantForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("organization", "kind", "amount", "description")
        return (
            "organization",
            "kind",
            "amount",
            "description",
            "invoice",
            "credit_note",
            "created_at",
            "created_by",
        )

    def save_model(self, request, obj, form, change):
        adopt(
            obj,
            invoicing_services.balance_credit_grant(
                organization=obj.organization,
                kind=obj.kind,
                amount=Money(form.cleaned_data["amount"], obj.organization.currency),
                description=obj.description,
                actor=request.user,
            ),
        )


# The gapless invoice numbers' counters: changing or deleting one would reuse or skip numbers.
admin.site.unregister(Sequence)


@admin.register(Sequence)
class SequenceAdmin(ReadOnlyAdmin):
    list_display = ("name", "last")
    ordering = ("name",)
    search_fields = ("name",)
    actions = None
