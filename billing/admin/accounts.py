"""Organizations, their members and subscriptions, and the feature trials staff grant them."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from billing.accounts import selectors as account_selectors
from billing.admin.base import (
    AuditedAdmin,
    BigTableAdmin,
    OrganizationFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_confirmed,
)
from billing.catalog import services as catalog_services
from billing.lifecycle import selectors as lifecycle_selectors
from billing.models import (
    AuditEntry,
    Feature,
    FeatureTrial,
    Membership,
    Organization,
    Subscription,
)
from billing.subscriptions import selectors as subscription_selectors


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


class FeatureTrialInline(ReadOnlyInline):
    """Granted on the organization's "Grant feature trial" page, and kept as granted."""

    model = FeatureTrial
    fields = ("feature", "starts_at", "ends_at", "note", "granted_by")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("feature", "granted_by")


class FeatureTrialGrantForm(forms.Form):
    feature = forms.ModelChoiceField(queryset=Feature.objects.none())
    days = forms.IntegerField(
        min_value=1, initial=14, help_text="The trial starts now and ends this many days later."
    )
    note = forms.CharField(
        max_length=200,
        required=False,
        help_text="Why, for whoever looks next, e.g. “Evaluating before upgrading”.",
    )

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        features = Feature.objects.all()
        subscription = subscription_selectors.subscription_live(organization=organization)
        if subscription is not None:
            # What the plan already includes needs no trial.
            features = features.exclude(plans=subscription.plan)
        self.fields["feature"].queryset = features


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    list_display = (
        "name",
        "slug",
        "currency",
        "country",
        "payment_terms",
        "created_at",
        "overview_link",
    )
    list_filter = ("payment_terms", "currency", "country")
    search_fields = ("name", "slug", "billing_emails", "tax_id")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, SubscriptionInline, FeatureTrialInline)
    change_form_template = "admin/billing/organization/change_form.html"
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

    def get_urls(self):
        return [
            path(
                "<int:organization_id>/feature-trial/",
                self.admin_site.admin_view(self.feature_trial_view),
                name="billing_organization_feature_trial",
            ),
            path(
                "<int:organization_id>/360/",
                self.admin_site.admin_view(self.organization_360_view),
                name="billing_organization_360",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="360")
    def overview_link(self, organization):
        url = reverse("admin:billing_organization_360", args=[organization.pk])
        return format_html('<a href="{}">Organization 360</a>', url)

    def organization_360_view(self, request, organization_id):
        if not account_selectors.staff_reads_billing(user=request.user):
            raise PermissionDenied
        organization = get_object_or_404(Organization, pk=organization_id)
        page = lifecycle_selectors.organization_360(organization=organization, now=timezone.now())
        return TemplateResponse(
            request,
            "admin/billing/organization/overview_360.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": organization,
                "title": f"{organization}: 360",
                "page": page,
                "tz": organization.tzinfo,
            },
        )

    def feature_trial_view(self, request, organization_id):
        if not request.user.has_perm("billing.add_featuretrial"):
            raise PermissionDenied
        organization = get_object_or_404(Organization, pk=organization_id)
        form = FeatureTrialGrantForm(request.POST or None, organization=organization)

        def granted(trial: FeatureTrial) -> str:
            ends = trial.ends_at.astimezone(organization.tzinfo)
            return (
                f"{organization} can try {trial.feature.name} until "
                f"{ends:%-d %b %Y, %H:%M} ({organization.timezone})."
            )

        return action_confirmed(
            self,
            request,
            original=organization,
            template="admin/billing/organization/feature_trial.html",
            title=f"Grant {organization} a feature trial",
            form=form,
            perform=lambda: catalog_services.feature_trial_grant(
                organization=organization,
                feature=form.cleaned_data["feature"],
                days=form.cleaned_data["days"],
                note=form.cleaned_data["note"],
                actor=request.user,
                now=timezone.now(),
            ),
            done=granted,
        )


class FeatureTrialStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("active", "Active now"), ("ended", "Ended"))

    def queryset(self, request, queryset):
        if self.value() in ("active", "ended"):
            return queryset.filter(is_active=self.value() == "active")
        return queryset


@admin.register(FeatureTrial)
class FeatureTrialAdmin(ReadOnlyAdmin):
    """Granted on an organization's page through the service, and kept as granted."""

    list_display = ("organization", "feature", "starts_at", "ends_at", "active", "granted_by")
    list_filter = (FeatureTrialStateFilter, "feature")
    list_select_related = ("organization", "feature", "granted_by")
    search_fields = ("organization__name", "=organization__slug", "feature__name", "=feature__code")
    search_help_text = "Organization name or slug, feature name or code."
    fields = ("organization", "feature", "starts_at", "ends_at", "note", "granted_by", "created_at")

    def get_queryset(self, request):
        # Computed by the database, so the list can filter and sort on it.
        now = timezone.now()
        return (
            super()
            .get_queryset(request)
            .annotate(
                is_active=ExpressionWrapper(
                    Q(starts_at__lte=now, ends_at__gt=now), output_field=BooleanField()
                )
            )
        )

    @admin.display(description="Active", boolean=True, ordering="is_active")
    def active(self, trial):
        return trial.is_active


# --- the audit log --------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin, BigTableAdmin):
    """What staff did, newest first: read by Support and Finance, written only by the admin
    and the services as staff act, never changed."""

    list_display = ("at", "actor_name", "action", "subject", "organization", "reason")
    list_filter = (OrganizationFilter, "action")
    list_select_related = ("organization",)
    search_fields = ("actor_name", "object_repr", "reason")
    search_help_text = "Who, what (the object's name) or why."
    date_hierarchy = "at"
    fields = (
        "at",
        "actor_name",
        "action",
        "organization",
        "subject",
        "changes_shown",
        "reason",
    )
    readonly_fields = fields

    @admin.display(description="Object")
    def subject(self, entry: AuditEntry) -> str:
        return f"{entry.object_repr} ({entry.object_type} {entry.object_id})"

    @admin.display(description="Changes")
    def changes_shown(self, entry: AuditEntry) -> str:
        rows = (
            (name, *(value if isinstance(value, list) else ["", value]))
            for name, value in entry.changes.items()
        )
        return format_html(
            "<table><thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


# Staff accounts and their roles are changed by superusers; those changes are audited too.
admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    pass


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass
