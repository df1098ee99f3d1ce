from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from djmoney.money import Money
from simple_history.admin import SimpleHistoryAdmin

from billing import selectors, services
from billing.errors import BillingError
from billing.forms import BalanceCreditGrantForm, CreditNoteForm, InvoiceVoidForm, TaxRateForm
from billing.models import (
    BalanceEntry,
    Coupon,
    CreditNote,
    Discount,
    Feature,
    Invoice,
    InvoiceLine,
    Membership,
    Organization,
    Plan,
    Subscription,
    TaxRate,
)
from billing.money import format_rate


@admin.register(Feature)
class FeatureAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "category", "position")
    list_filter = ("category",)
    list_editable = ("position",)
    search_fields = ("name", "code")


class PlanTermsForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = Plan.TERMS


@admin.register(Plan)
class PlanAdmin(SimpleHistoryAdmin):
    list_display_base = (
        "__str__",
        "code",
        "version",
        "tier",
        "interval",
        "price",
        "is_public",
        "is_available",
    )
    list_filter = ("tier", "interval", "is_public", "is_available", "overage_policy")
    search_fields = ("code", "name", "organization__name")
    autocomplete_fields = ("organization",)
    filter_horizontal = ("features",)
    change_form_template = "admin/billing/plan/change_form.html"
    fieldsets = (
        (None, {"fields": ("code", "version", "name", "description", "tier", "interval", "price")}),
        ("Who may choose it", {"fields": ("is_public", "organization", "is_available")}),
        (
            "Allowances (empty means unlimited)",
            {
                "fields": (
                    "included_call_seconds",
                    "max_active_employees",
                    ("max_phone_numbers", "free_phone_numbers"),
                    "storage_gb",
                    "api_calls_per_month",
                    "max_integrations",
                )
            },
        ),
        (
            "Overage",
            {
                "fields": (
                    "overage_policy",
                    "overage_rate_per_second",
                    "overage_rate_per_gb",
                    "overage_cap",
                )
            },
        ),
        ("Features", {"fields": ("features",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("features")

    def get_list_display(self, request):
        """The feature matrix: one column per feature, a tick where the plan includes it."""
        return (*self.list_display_base, *(self._feature_column(f) for f in Feature.objects.all()))

    @staticmethod
    def _feature_column(feature):
        def column(plan):
            return any(f.pk == feature.pk for f in plan.features.all())

        column.short_description = feature.name
        column.boolean = True
        column.__name__ = f"feature_{feature.code}"
        return column

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.subscriptions.exists():
            return ("code", "version", *Plan.TERMS)
        return ("version",) if obj is not None else ()

    def get_urls(self):
        return [
            path(
                "<int:plan_id>/new-version/",
                self.admin_site.admin_view(self.new_version_view),
                name="billing_plan_new_version",
            ),
            *super().get_urls(),
        ]

    def new_version_view(self, request, plan_id):
        plan = get_object_or_404(Plan, pk=plan_id)
        if not self.has_add_permission(request):
            return redirect("admin:billing_plan_change", plan_id)
        draft = Plan.objects.get(pk=plan_id)
        draft.pk = None  # validated as the unsaved next version, not as the plan in use
        form = PlanTermsForm(request.POST or None, instance=draft)
        if request.method == "POST" and form.is_valid():
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            new = services.plan_new_version(plan=plan, changes=changes)
            self.message_user(
                request,
                f"Published {new} (version {new.version}). Version {plan.version} is no longer "
                "offered; its subscribers keep it.",
                messages.SUCCESS,
            )
            return redirect("admin:billing_plan_change", new.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": plan,
            "form": form,
            "title": f"New version of {plan}",
        }
        return TemplateResponse(request, "admin/billing/plan/new_version.html", context)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "currency", "country", "payment_terms", "created_at")
    list_filter = ("payment_terms", "currency", "country")
    search_fields = ("name", "slug", "billing_emails", "tax_id")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, SubscriptionInline)
    fieldsets = (
        (None, {"fields": ("name", "slug", "billing_emails", "timezone")}),
        (
            "Billing address and tax",
            {
                "fields": (
                    "address_line1",
                    "address_line2",
                    ("postal_code", "city"),
                    "region",
                    "country",
                    "tax_id",
                )
            },
        ),
        ("Payment", {"fields": ("currency", "payment_terms", "net_days")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # An organization's currency is fixed once it has subscribed: it bills in one currency.
        if obj is not None and obj.subscriptions.exists():
            return ("currency",)
        return ()


@admin.register(Subscription)
class SubscriptionAdmin(SimpleHistoryAdmin):
    list_display = (
        "organization",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
    )
    list_filter = ("status", "plan", "cancel_at_period_end")
    list_select_related = ("organization", "plan")
    search_fields = ("organization__name", "organization__slug")
    date_hierarchy = "current_period_end"
    readonly_fields = (
        "organization_link",
        "plan",
        "status",
        "anchor",
        "anchor_timezone",
        "current_period_start",
        "current_period_end",
        "usage_period_start",
        "usage_period_end",
        "trial_ends_at",
        "commitment_ends_at",
        "cancel_at_period_end",
        "cancel_reason",
        "scheduled_plan",
        "scheduled_change_at",
        "created_at",
        "ended_at",
        "status_history",
    )
    fields = readonly_fields
    actions = ("renew_now",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Organization")
    def organization_link(self, obj):
        url = reverse("admin:billing_organization_change", args=[obj.organization_id])
        return format_html('<a href="{}">{}</a>', url, obj.organization)

    @admin.display(description="Status changes")
    def status_history(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{change.at:%Y-%m-%d %H:%M} UTC",
                    change.previous or "—",
                    change.status,
                    change.actor,
                    change.reason,
                )
                for change in selectors.subscription_status_changes(subscription=obj)
            ),
        )
        return format_html(
            "<table><thead><tr><th>When</th><th>From</th><th>To</th><th>Who</th><th>Why</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(
        description="Renew now: invoice the periods that have ended", permissions=["change"]
    )
    def renew_now(self, request, queryset):
        issued = []
        for subscription in queryset:
            try:
                issued += services.subscription_renew_if_needed(
                    subscription_id=subscription.pk, now=timezone.now()
                )
            except BillingError as refusal:
                self.message_user(request, f"{subscription}: {refusal.message}", messages.ERROR)
        if issued:
            numbers = ", ".join(invoice.number for invoice in issued)
            invoices = "invoice" if len(issued) == 1 else "invoices"
            self.message_user(
                request, f"Issued {len(issued)} {invoices}: {numbers}.", messages.SUCCESS
            )
        else:
            self.message_user(request, "Not due: no period has ended, no invoice was issued.")


# --- invoices, credit notes, and what changes the amount due -------------------------------


def _adopt(obj, created) -> None:
    """Turn the admin's unsaved form instance into the row a service created, for the
    admin's log entry, message and redirect."""
    for model_field in created._meta.concrete_fields:
        setattr(obj, model_field.attname, getattr(created, model_field.attname))
    obj._state.adding = False


class ServiceAddAdmin(admin.ModelAdmin):
    """Rows only a service writes: staff add them through it, its refusal is shown as a
    message, and nothing is ever changed or deleted afterwards."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BillingError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _customer_tz(invoice: Invoice) -> ZoneInfo:
    # Finalized invoices froze the customer's timezone; drafts use the organization's.
    return ZoneInfo(invoice.customer_timezone or invoice.organization.timezone)


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ("kind", "description", "quantity_shown", "unit_price_shown", "amount", "period")
    readonly_fields = fields

    def get_queryset(self, request):
        # Each line's period is shown in its invoice's customer timezone.
        return super().get_queryset(request).select_related("invoice__organization")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

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
        return line.period.label(_customer_tz(line.invoice))


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
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
        ("Amounts", {"fields": ("subtotal", "tax_total", "credit_applied", "total", "pdf_link")}),
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
        return invoice.period.label(_customer_tz(invoice))

    @admin.display(description="PDF")
    def pdf_link(self, invoice):
        if not invoice.is_finalized:
            return "—"
        url = reverse("billing:invoice_pdf", args=[invoice.organization.slug, invoice.number])
        return format_html('<a href="{}">{}.pdf</a>', url, invoice.number)

    def get_urls(self):
        return [
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

    def _invoice_to_correct(self, request, invoice_id) -> Invoice:
        invoice = get_object_or_404(Invoice.objects.select_related("organization"), pk=invoice_id)
        if not self.has_change_permission(request, invoice):
            raise PermissionDenied
        return invoice

    def _correction_page(self, request, invoice, form, template, title):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": invoice,
            "period": invoice.period.label(_customer_tz(invoice)),
            "form": form,
            "title": title,
        }
        return TemplateResponse(request, template, context)

    def void_view(self, request, invoice_id):
        invoice = self._invoice_to_correct(request, invoice_id)
        form = InvoiceVoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.invoice_void(
                    invoice=invoice, reason=form.cleaned_data["reason"], actor=request.user
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{invoice} is void: nothing is owed on it, and credit it used is back "
                    "on the customer's balance.",
                    messages.SUCCESS,
                )
                return redirect("admin:billing_invoice_change", invoice.pk)
        return self._correction_page(
            request, invoice, form, "admin/billing/invoice/void.html", f"Void {invoice}"
        )

    def credit_note_view(self, request, invoice_id):
        invoice = self._invoice_to_correct(request, invoice_id)
        form = CreditNoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                credit_note = services.credit_note_issue(
                    invoice=invoice,
                    amount=Money(form.cleaned_data["amount"], invoice.currency),
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"Credit note {credit_note} for {credit_note.amount} issued: it is on "
                    f"{invoice.organization}'s balance and pays its next invoices.",
                    messages.SUCCESS,
                )
                return redirect("admin:billing_invoice_change", invoice.pk)
        return self._correction_page(
            request,
            invoice,
            form,
            "admin/billing/invoice/credit_note.html",
            f"Issue a credit note for {invoice}",
        )


@admin.register(CreditNote)
class CreditNoteAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Organization")
    def organization(self, credit_note):
        return credit_note.invoice.organization


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "off", "duration_shown", "is_active", "organizations_using")
    list_filter = ("is_active", "duration")
    search_fields = ("code", "name")
    fields = (
        "code",
        "name",
        "percent_off",
        "amount_off",
        "duration",
        "duration_in_periods",
        "is_active",
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

    @admin.display(description="Organizations using it", ordering="using")
    def organizations_using(self, coupon):
        return coupon.using


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
        _adopt(obj, services.discount_apply(organization=obj.organization, coupon=obj.coupon))


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
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
        _adopt(
            obj,
            services.balance_credit_grant(
                organization=obj.organization,
                kind=obj.kind,
                amount=Money(form.cleaned_data["amount"], obj.organization.currency),
                description=obj.description,
                actor=request.user,
            ),
        )
