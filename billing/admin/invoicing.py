"""Invoices, credit notes, and what changes the amount due: coupons and discounts, tax
rates, the customer balance. Invoices are written by the services and never edited;
corrections are a void or a credit note, each on its own confirmation page."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from djmoney.money import Money
from sequences.models import Sequence

from billing.admin.base import (
    AuditedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAddAdmin,
    action_confirmed,
    adopt,
    invoice_timezone,
)
from billing.admin.revenue import RevenueViews
from billing.forms import BalanceCreditGrantForm, CreditNoteForm, InvoiceVoidForm, TaxRateForm
from billing.invoicing import services as invoicing_services
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
class InvoiceAdmin(RevenueViews, AuditedAdmin):
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
            *self.revenue_urls(),
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
