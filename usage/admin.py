"""Support staff's view of usage: AI employees, phone numbers and their price list, calls,
counters, reports and the platform's service tokens.

Writes that carry a billing rule (a quota, a limit, a fee, a token) go through the usage
services; facts (calls, reports) and the counters derived from them are read-only. The lists
over tables that grow with traffic never count them in full.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from billing.admin.base import (
    AuditedAdmin,
    BigTableAdmin,
    InputFilter,
    OrganizationFilter,
    ReadOnlyAdmin,
    RefusalAsMessage,
    adopt,
    null_state_filter,
)
from billing.errors import BillingError
from usage import selectors, services
from usage.models import (
    AIEmployee,
    BudgetChange,
    Call,
    PhoneNumber,
    PhoneNumberRate,
    ServiceToken,
    SpendCap,
    SpendCapChange,
    UsageCounter,
    UsageReport,
)
from usage.tokens.services import service_token_create, service_token_revoke

# --- filters ------------------------------------------------------------------------------


class EmployeeFilter(InputFilter):
    title = "AI employee"
    parameter_name = "employee"
    placeholder = "id"

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(employee_id=int(self.value()))


# --- AI employees and phone numbers -------------------------------------------------------


@admin.register(AIEmployee)
class AIEmployeeAdmin(RefusalAsMessage, AuditedAdmin):
    list_display = (
        "name",
        "organization",
        "cost_center",
        "is_active",
        "inbound_capable",
        "created_at",
        "deactivated_at",
    )
    list_filter = ("is_active", "inbound_capable", OrganizationFilter, "cost_center")
    list_select_related = ("organization",)
    search_fields = ("name", "cost_center", "organization__name", "=organization__slug")
    autocomplete_fields = ("organization",)
    actions = ("deactivate", "reactivate")
    audited_actions = actions

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("organization", "name", "cost_center", "inbound_capable")
        return (
            "organization",
            "name",
            "cost_center",
            "inbound_capable",
            "is_active",
            "created_at",
            "deactivated_at",
        )

    def get_readonly_fields(self, request, obj=None):
        # The organization and the active state carry the quota (actions change the state);
        # whether it answers calls decides which numbers it may hold.
        if obj is None:
            return ()
        return ("organization", "inbound_capable", "is_active", "created_at", "deactivated_at")

    def has_delete_permission(self, request, obj=None):
        return False  # deleting would delete the employee's calls; deactivate instead

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        adopt(
            obj,
            services.employee_create(
                organization=obj.organization,
                name=obj.name,
                cost_center=obj.cost_center,
                inbound_capable=obj.inbound_capable,
            ),
        )

    @admin.action(description="Deactivate the selected AI employees", permissions=["change"])
    def deactivate(self, request, queryset):
        for employee in queryset.filter(is_active=True):
            services.employee_deactivate(employee=employee)
        self.message_user(request, "Deactivated: their quota places are free again.")

    @admin.action(description="Reactivate the selected AI employees", permissions=["change"])
    def reactivate(self, request, queryset):
        for employee in queryset.filter(is_active=False):
            try:
                services.employee_reactivate(employee=employee)
            except BillingError as refusal:
                self.message_user(request, f"{employee}: {refusal.message}", messages.ERROR)
            else:
                self.message_user(request, f"{employee} is active again.")


HeldFilter = null_state_filter(
    "released_at", unset=("held", "Provisioned"), done=("released", "Released")
)


@admin.register(PhoneNumber)
class PhoneNumberAdmin(RefusalAsMessage, AuditedAdmin):
    list_display = (
        "number",
        "organization",
        "number_type",
        "country",
        "region",
        "is_vanity",
        "monthly_fee",
        "employee",
        "provisioned_at",
        "released_at",
    )
    list_filter = (HeldFilter, "number_type", "country", "is_vanity", OrganizationFilter)
    list_select_related = ("organization", "employee")
    search_fields = ("^number", "=organization__slug")
    autocomplete_fields = ("organization",)
    raw_id_fields = ("employee",)
    actions = ("release",)
    audited_actions = actions

    def get_fields(self, request, obj=None):
        if obj is None:
            return (
                "organization",
                "number",
                "number_type",
                ("country", "region"),
                "is_vanity",
                "employee",
            )
        return (
            "organization",
            "number",
            "number_type",
            ("country", "region"),
            "is_vanity",
            "monthly_fee",
            "employee",
            "provisioned_at",
            "released_at",
        )

    def get_readonly_fields(self, request, obj=None):
        # The fee is fixed from the price list when provisioned; only the answering employee
        # may change afterwards.
        if obj is None:
            return ()
        return (
            "organization",
            "number",
            "number_type",
            "country",
            "region",
            "is_vanity",
            "monthly_fee",
            "provisioned_at",
            "released_at",
        )

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.released_at is not None:
            return False  # released for good: nothing about it changes any more
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # a released number is kept: it bills its last month and never returns

    def save_model(self, request, obj, form, change):
        if change:
            services.phone_number_assign(phone_number=obj, employee=obj.employee)
            return
        adopt(
            obj,
            services.phone_number_provision(
                organization=obj.organization,
                number=obj.number,
                number_type=obj.number_type,
                country=obj.country,
                region=obj.region,
                vanity=obj.is_vanity,
                employee=obj.employee,
            ),
        )

    @admin.action(description="Release the selected numbers", permissions=["change"])
    def release(self, request, queryset):
        for phone_number in queryset.filter(released_at__isnull=True):
            services.phone_number_release(phone_number=phone_number)
        self.message_user(
            request,
            "Released: no further monthly fees; the current month is not refunded, and the "
            "organization cannot get these numbers back.",
        )


@admin.register(PhoneNumberRate)
class PhoneNumberRateAdmin(AuditedAdmin):
    saved_by_service = True
    """The price list. A change applies to numbers provisioned afterwards: a number keeps the
    fee it was provisioned with."""

    list_display = (
        "__str__",
        "number_type",
        "country",
        "region",
        "monthly_price",
        "regulatory_fee",
        "vanity_surcharge",
        "fee",
        "vanity_fee",
    )
    list_filter = ("number_type", "country")
    search_fields = ("=country", "region")

    @admin.display(description="Monthly fee")
    def fee(self, rate):
        return rate.monthly_fee(vanity=False)

    @admin.display(description="Monthly fee (vanity)")
    def vanity_fee(self, rate):
        return rate.monthly_fee(vanity=True)


# --- facts and counters -------------------------------------------------------------------


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin, BigTableAdmin):
    """Millions of rows: newest first along the `call_newest_first` index, a bounded count,
    filters that the indexes serve, and search by the exact platform call id only."""

    list_display = (
        "platform_call_id",
        "connected_at",
        "organization",
        "employee",
        "direction",
        "billable_seconds",
    )
    list_filter = ("direction", OrganizationFilter, EmployeeFilter)
    list_select_related = ("organization", "employee")
    ordering = ("-connected_at",)
    sortable_by = ("connected_at",)  # any other order would sort the whole table
    # `__exact`, not "=": `=` is a case-insensitive match that no index serves.
    search_fields = ("platform_call_id__exact",)
    search_help_text = "The exact platform call id."
    raw_id_fields = ("organization", "employee")
    fields = (
        "platform_call_id",
        "organization",
        "employee",
        "direction",
        "connected_at",
        "ended_at",
        "billable_seconds",
        "usage_period_start",
        "recorded_at",
    )


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyAdmin):
    list_display = (
        "organization",
        "period_start",
        "period_end",
        "call_seconds",
        "calls",
        "api_calls",
        "storage",
        "storage_peak",
    )
    list_filter = (OrganizationFilter,)
    list_select_related = ("organization",)
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="Storage (latest)")
    def storage(self, counter):
        return selectors.format_gibibytes(counter.storage_bytes)

    @admin.display(description="Storage (peak)")
    def storage_peak(self, counter):
        return selectors.format_gibibytes(counter.storage_peak_bytes)


@admin.register(UsageReport)
class UsageReportAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "report_id",
        "organization",
        "kind",
        "quantity",
        "measured_at",
        "period_start",
        "recorded_at",
    )
    list_filter = ("kind", OrganizationFilter)
    list_select_related = ("organization",)
    search_fields = ("report_id__exact",)
    search_help_text = "The exact report id."


# --- spend caps ---------------------------------------------------------------------------


@admin.register(SpendCap)
class SpendCapAdmin(ReadOnlyAdmin):
    """The caps organizations set themselves (on their caps page or through the API)."""

    list_display = ("organization", "scope", "target", "limit", "changed_at", "changed_by")
    list_filter = ("scope", OrganizationFilter)
    list_select_related = ("organization", "employee", "changed_by")
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="AI employee or cost center")
    def target(self, cap):
        return cap.employee or cap.cost_center or "—"

    @admin.display(description="Cap a usage month")
    def limit(self, cap):
        if cap.overage_limit is not None:
            return cap.overage_limit
        return f"{cap.call_seconds_limit:,} s"


@admin.register(SpendCapChange)
class SpendCapChangeAdmin(ReadOnlyAdmin):
    list_display = (
        "changed_at",
        "organization",
        "subject",
        "previous_limit",
        "new_limit",
        "changed_by",
        "changed_by_token",
    )
    list_filter = ("scope", OrganizationFilter)
    list_select_related = ("organization", "changed_by", "changed_by_token")
    show_facets = admin.ShowFacets.NEVER


@admin.register(BudgetChange)
class BudgetChangeAdmin(ReadOnlyAdmin):
    list_display = (
        "changed_at",
        "organization",
        "cost_center",
        "previous_amount",
        "new_amount",
        "changed_by",
        "changed_by_token",
    )
    list_filter = (OrganizationFilter,)
    list_select_related = ("organization", "changed_by", "changed_by_token")
    show_facets = admin.ShowFacets.NEVER


# --- service tokens -----------------------------------------------------------------------


TokenStateFilter = null_state_filter(
    "revoked_at", unset=("active", "Active"), done=("revoked", "Revoked")
)


class ServiceTokenForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        if cleaned.get("all_organizations") == bool(cleaned.get("organizations")):
            raise forms.ValidationError(
                "Tick “All organizations” (the calling platform's own token) or choose the "
                "organizations the token reaches: one of the two."
            )
        return cleaned


@admin.register(ServiceToken)
class ServiceTokenAdmin(AuditedAdmin):
    """Staff name a token; the service makes it and the token is shown once, in a message.
    Only its hash and first characters are stored. Tokens are never edited: revoke one and
    create another."""

    list_display = (
        "name",
        "hint_shown",
        "is_active",
        "reaches",
        "expires_at",
        "created_by",
        "created_at",
        "revoked_at",
    )
    list_filter = (TokenStateFilter,)
    list_select_related = ("created_by",)
    search_fields = ("name", "^hint")
    actions = ("revoke",)
    audited_actions = actions
    autocomplete_fields = ("organizations",)
    form = ServiceTokenForm

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("organizations")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "all_organizations", "organizations", "expires_at")
        return (
            "name",
            "hint_shown",
            "reaches",
            "expires_at",
            "created_by",
            "created_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoked tokens stay, to show who made them and when they stopped

    def has_revoke_permission(self, request):
        return request.user.has_perm("usage.change_servicetoken")

    @admin.display(description="Token starts with")
    def hint_shown(self, service_token):
        return f"{service_token.hint}…"

    @admin.display(description="Active", boolean=True)
    def is_active(self, service_token):
        expired = service_token.expires_at is not None and service_token.expires_at <= (
            timezone.now()
        )
        return service_token.revoked_at is None and not expired

    @admin.display(description="Reaches")
    def reaches(self, service_token):
        if service_token.all_organizations:
            return "All organizations"
        return ", ".join(o.name for o in service_token.organizations.all())

    def save_related(self, request, form, formsets, change):
        """Nothing left to save: the service set the organizations."""

    def save_model(self, request, obj, form, change):
        service_token, token = service_token_create(
            name=obj.name,
            all_organizations=form.cleaned_data["all_organizations"],
            organizations=list(form.cleaned_data["organizations"]),
            expires_at=form.cleaned_data["expires_at"],
            created_by=request.user,
        )
        adopt(obj, service_token)
        self.message_user(
            request,
            f"The token for {service_token.name} is {token} — copy it now, it will not be "
            "shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = 0
        for service_token in queryset.filter(revoked_at__isnull=True):
            service_token_revoke(service_token=service_token)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s): they are refused from now on.")
