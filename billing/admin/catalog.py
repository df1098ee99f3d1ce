"""The plan catalog: features, and plans with their feature matrix and versions."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from billing.admin.base import AuditedAdmin, action_confirmed
from billing.catalog import services as catalog_services
from billing.models import Feature, Plan


@admin.register(Feature)
class FeatureAdmin(AuditedAdmin):
    saved_by_service = True
    list_display = ("name", "code", "category", "position")
    list_filter = ("category",)
    list_editable = ("position",)
    search_fields = ("name", "code")


class PlanTermsForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = Plan.TERMS


@admin.register(Plan)
class PlanAdmin(AuditedAdmin, SimpleHistoryAdmin):
    saved_by_service = True
    list_display_base = (
        "__str__",
        "code",
        "version",
        "tier",
        "interval",
        "price",
        "is_public",
        "is_available",
        "trial_days",
    )
    list_filter = ("tier", "interval", "is_public", "is_available", "overage_policy")
    search_fields = ("code", "name", "organization__name")
    autocomplete_fields = ("organization",)
    filter_horizontal = ("features",)
    change_form_template = "admin/billing/plan/change_form.html"
    fieldsets = (
        (None, {"fields": ("code", "version", "name", "description", "tier", "interval", "price")}),
        (
            "Who may choose it",
            # The trial is an offer, not a term: it stays editable while the plan has subscribers.
            {"fields": ("is_public", "organization", "is_available", "trial_days")},
        ),
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
        if not self.has_add_permission(request):
            raise PermissionDenied
        plan = get_object_or_404(Plan, pk=plan_id)
        draft = Plan.objects.get(pk=plan_id)
        draft.pk = None  # validated as the unsaved next version, not as the plan in use
        form = PlanTermsForm(request.POST or None, instance=draft)
        return action_confirmed(
            self,
            request,
            original=plan,
            template="admin/billing/plan/new_version.html",
            title=f"New version of {plan}",
            form=form,
            perform=lambda: catalog_services.plan_new_version(
                plan=plan,
                changes={name: form.cleaned_data[name] for name in form.changed_data},
                actor=request.user,
            ),
            done=lambda new: (
                f"Published {new} (version {new.version}). Version {plan.version} is no longer "
                "offered; its subscribers keep it."
            ),
            redirect_to=lambda new: reverse("admin:billing_plan_change", args=[new.pk]),
        )
