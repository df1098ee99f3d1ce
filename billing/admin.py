from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from billing import selectors, services
from billing.models import Feature, Membership, Organization, Plan, Subscription


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
