import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from djmoney.money import Money
from simple_history.admin import SimpleHistoryAdmin

from billing.catalog import selectors as catalog_selectors
from billing.catalog import services as catalog_services
from billing.errors import BillingError
from billing.forms import BalanceCreditGrantForm, CreditNoteForm, InvoiceVoidForm, TaxRateForm
from billing.invoicing import services as invoicing_services
from billing.lifecycle import selectors as lifecycle_selectors
from billing.lifecycle import services as lifecycle_services
from billing.models import (
    BalanceEntry,
    Coupon,
    CreditNote,
    Discount,
    Feature,
    FeatureTrial,
    Invoice,
    InvoiceLine,
    Membership,
    Organization,
    PendingLine,
    Plan,
    Subscription,
    TaxRate,
)
from billing.money import format_rate
from billing.subscriptions import selectors as subscription_selectors
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import DOWNGRADE, PlanChangePreview, change_kind
from usage import selectors as usage_selectors


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
        plan = get_object_or_404(Plan, pk=plan_id)
        if not self.has_add_permission(request):
            return redirect("admin:billing_plan_change", plan_id)
        draft = Plan.objects.get(pk=plan_id)
        draft.pk = None  # validated as the unsaved next version, not as the plan in use
        form = PlanTermsForm(request.POST or None, instance=draft)
        if request.method == "POST" and form.is_valid():
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            new = catalog_services.plan_new_version(plan=plan, changes=changes)
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


def _action_page(request, model_admin, original, template, title, **context) -> TemplateResponse:
    """A staff action on one object, on its own confirmation page."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "original": original,
            "title": title,
            **context,
        },
    )


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


class FeatureTrialInline(admin.TabularInline):
    """Granted on the organization's "Grant feature trial" page, and kept as granted."""

    model = FeatureTrial
    extra = 0
    can_delete = False
    fields = ("feature", "starts_at", "ends_at", "note", "granted_by")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("feature", "granted_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "currency", "country", "payment_terms", "created_at")
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
            *super().get_urls(),
        ]

    def feature_trial_view(self, request, organization_id):
        if not request.user.has_perm("billing.add_featuretrial"):
            raise PermissionDenied
        organization = get_object_or_404(Organization, pk=organization_id)
        form = FeatureTrialGrantForm(request.POST or None, organization=organization)
        if request.method == "POST" and form.is_valid():
            try:
                trial = catalog_services.feature_trial_grant(
                    organization=organization,
                    feature=form.cleaned_data["feature"],
                    days=form.cleaned_data["days"],
                    note=form.cleaned_data["note"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                ends = trial.ends_at.astimezone(organization.tzinfo)
                self.message_user(
                    request,
                    f"{organization} can try {trial.feature.name} until "
                    f"{ends:%-d %b %Y, %H:%M} ({organization.timezone}).",
                    messages.SUCCESS,
                )
                return redirect("admin:billing_organization_change", organization.pk)
        return _action_page(
            request,
            self,
            organization,
            "admin/billing/organization/feature_trial.html",
            f"Grant {organization} a feature trial",
            form=form,
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
class FeatureTrialAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Active", boolean=True, ordering="is_active")
    def active(self, trial):
        return trial.is_active


# --- subscriptions and their lifecycle ----------------------------------------------------


class PendingLineInline(admin.TabularInline):
    """Prorations of plan changes: waiting for the next invoice, or carried by one."""

    model = PendingLine
    extra = 0
    can_delete = False
    verbose_name = "proration line"
    verbose_name_plural = "Proration lines of plan changes"
    fields = ("description", "amount", "created_at", "invoice_shown")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Invoice")
    def invoice_shown(self, line):
        if line.invoice is None:
            return "Not invoiced yet: goes on the next invoice"
        url = reverse("admin:billing_invoice_change", args=[line.invoice_id])
        return format_html('<a href="{}">{}</a>', url, line.invoice)


NOW, PERIOD_END = "now", "period_end"


class PlanChangeForm(forms.Form):
    plan = forms.TypedChoiceField(coerce=int)
    when = forms.ChoiceField(
        choices=[
            (NOW, "Immediately, prorated (upgrades only)"),
            (PERIOD_END, "At the end of the period (or of the commitment)"),
        ],
        widget=forms.RadioSelect,
        initial=NOW,
    )

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscription = subscription
        organization = subscription.organization
        self.offered = {
            plan.pk: plan
            for plan in catalog_selectors.plans_offered(organization=organization)
            if plan.pk != subscription.plan_id
        }
        self.fields["plan"].choices = [
            ("", "---------"),
            *((pk, f"{plan} – {plan.price}") for pk, plan in self.offered.items()),
        ]
        self.fields["plan"].help_text = f"The plans offered to {organization} today."
        if subscription.is_trialing:
            # Nothing is paid during a trial: any change applies at once, without proration.
            del self.fields["when"]

    def clean_plan(self) -> Plan:
        return self.offered[self.cleaned_data["plan"]]

    def clean(self):
        cleaned = super().clean()
        plan = cleaned.get("plan")
        if (
            plan is not None
            and cleaned.get("when") == NOW
            and change_kind(current=self.subscription.plan, new=plan) == DOWNGRADE
        ):
            self.add_error(
                "when",
                f"{plan} is a downgrade: it can only take effect at the end of the period.",
            )
        return cleaned

    @property
    def at_period_end(self) -> bool:
        return self.cleaned_data.get("when") == PERIOD_END


class RemovalsForm(forms.Form):
    """What goes to fit the new plan's limits: only a limit the organization is over asks
    for a choice, and the service checks that enough were chosen."""

    def __init__(self, *args, preview: PlanChangePreview, **kwargs):
        super().__init__(*args, **kwargs)
        plan = preview.new_plan
        if preview.employees_over:
            self.fields["deactivate_employee_ids"] = forms.TypedMultipleChoiceField(
                label="AI employees to deactivate",
                coerce=int,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                choices=[
                    (employee.pk, f"{employee.name} ({employee.cost_center or 'no cost center'})")
                    for employee in preview.active_employees
                ],
                help_text=f"{plan.name} allows {plan.max_active_employees} active: choose at "
                f"least {preview.employees_over}.",
            )
        if preview.numbers_over:
            self.fields["release_number_ids"] = forms.TypedMultipleChoiceField(
                label="Phone numbers to release",
                coerce=int,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                choices=[
                    (number.pk, f"{number.number} ({number.employee or 'unassigned'})")
                    for number in preview.held_numbers
                ],
                help_text=f"{plan.name} allows {plan.max_phone_numbers}: choose at least "
                f"{preview.numbers_over}. A released number can never be taken back.",
            )


class CancellationForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the organization leaves, as it told us; kept in the subscription's history.",
    )


class TrialExtensionForm(forms.Form):
    ends_on = forms.DateField(
        label="Trial ends on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="At midnight starting this day, in the organization's timezone: the first "
        "invoice comes then.",
    )


def _day(moment: dt.datetime, subscription: Subscription) -> str:
    return f"{moment.astimezone(subscription.tzinfo):%-d %b %Y}"


def _scheduled_removals(subscription: Subscription) -> dict[str, list[str]]:
    """Names, not ids, of what the scheduled change takes out of service."""
    chosen = subscription.scheduled_removals
    employee_ids = set(chosen.get("employees", []))
    number_ids = set(chosen.get("phone_numbers", []))
    organization = subscription.organization
    return {
        "employees": [
            employee.name
            for employee in usage_selectors.employees_for(organization=organization)
            if employee.pk in employee_ids
        ]
        if employee_ids
        else [],
        "numbers": [
            number.number
            for number in usage_selectors.phone_numbers_for(organization=organization)
            if number.pk in number_ids
        ]
        if number_ids
        else [],
    }


def _plan_changed(preview: PlanChangePreview) -> str:
    subscription = preview.subscription
    organization = subscription.organization
    if not preview.applies_now:
        return (
            f"{organization} moves to {preview.new_plan} on "
            f"{_day(preview.effective_at, subscription)}; until then it keeps "
            f"{preview.current_plan}."
        )
    if subscription.is_trialing:
        return f"{organization} is on {preview.new_plan} from now on; its trial continues."
    changed = f"{organization} is on {preview.new_plan} from now on."
    if not preview.proration:
        return changed
    billed = (
        "is invoiced now"
        if settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY
        else "goes on the next invoice"
    )
    return f"{changed} The proration, {preview.proration_total} net, {billed}."


@admin.register(Subscription)
class SubscriptionAdmin(SimpleHistoryAdmin):
    """Read-only: a subscription changes only through the lifecycle services, each action on
    its own confirmation page, offered on the subscription's page when it applies."""

    list_display = (
        "organization",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "scheduled_plan",
    )
    list_filter = ("status", "plan", "cancel_at_period_end")
    list_select_related = ("organization", "plan", "scheduled_plan")
    search_fields = ("organization__name", "organization__slug")
    date_hierarchy = "current_period_end"
    change_form_template = "admin/billing/subscription/change_form.html"
    inlines = (PendingLineInline,)
    fieldsets = (
        (None, {"fields": ("organization_link", "plan", "status", "created_at", "ended_at")}),
        (
            "Periods",
            {
                "fields": (
                    "anchor",
                    "anchor_timezone",
                    "current_period_start",
                    "current_period_end",
                    "usage_period_start",
                    "usage_period_end",
                    "commitment_ends_at",
                )
            },
        ),
        ("Trial", {"fields": ("trial_ends_at", "trial_reminder_sent_at")}),
        ("Plan change", {"fields": ("scheduled_change",)}),
        (
            "Cancellation",
            {
                "fields": (
                    "cancel_at_period_end",
                    "cancel_requested_at",
                    "cancel_reason",
                    "data_purged_at",
                )
            },
        ),
        ("Status changes", {"fields": ("status_history",)}),
    )
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])
    actions = ("renew_now",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Organization")
    def organization_link(self, obj):
        url = reverse("admin:billing_organization_change", args=[obj.organization_id])
        return format_html('<a href="{}">{}</a>', url, obj.organization)

    @admin.display(description="Scheduled change")
    def scheduled_change(self, subscription):
        if subscription.scheduled_plan is None:
            return None
        removals = _scheduled_removals(subscription)
        parts = [
            f"To {subscription.scheduled_plan} on "
            f"{_day(subscription.scheduled_change_at, subscription)}."
        ]
        if removals["employees"]:
            parts.append(f"AI employees deactivated then: {', '.join(removals['employees'])}.")
        if removals["numbers"]:
            parts.append(f"Phone numbers released then: {', '.join(removals['numbers'])}.")
        return format_html_join("", "<p>{}</p>", ((part,) for part in parts))

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
                for change in subscription_selectors.subscription_status_changes(subscription=obj)
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
                issued += lifecycle_services.subscription_renew_if_needed(
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

    # --- the lifecycle, each step on its own page ---

    def get_urls(self):
        pages = (
            ("change-plan", self.change_plan_view),
            ("call-off-change", self.call_off_change_view),
            ("cancel", self.cancel_view),
            ("reactivate", self.reactivate_view),
            ("extend-trial", self.extend_trial_view),
        )
        return [
            *(
                path(
                    f"<int:subscription_id>/{route}/",
                    self.admin_site.admin_view(view),
                    name=f"billing_subscription_{route.replace('-', '_')}",
                )
                for route, view in pages
            ),
            *super().get_urls(),
        ]

    def _subscription_to_change(self, request, subscription_id) -> Subscription:
        subscription = get_object_or_404(
            Subscription.objects.select_related("organization", "plan", "scheduled_plan"),
            pk=subscription_id,
        )
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        return subscription

    def _page(self, request, subscription, template, title, **context) -> TemplateResponse:
        return _action_page(
            request,
            self,
            subscription,
            f"admin/billing/subscription/{template}",
            title,
            last_day=subscription.billing_period.last_day(subscription.tzinfo),
            **context,
        )

    def _done(self, request, subscription, message: str):
        self.message_user(request, message, messages.SUCCESS)
        return redirect("admin:billing_subscription_change", subscription.pk)

    def change_plan_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        form = PlanChangeForm(request.POST or None, subscription=subscription)
        if request.method != "POST" or not form.is_valid():
            return self._page(
                request,
                subscription,
                "change_plan.html",
                f"Change the plan of {subscription}",
                form=form,
            )
        now = timezone.now()
        preview = lifecycle_selectors.plan_change_preview(
            subscription=subscription,
            plan=form.cleaned_data["plan"],
            now=now,
            at_period_end=form.at_period_end,
        )
        # The plan form's submit shows the preview; the preview's own submit confirms.
        confirmed = "_confirm" in request.POST
        removals = RemovalsForm(request.POST if confirmed else None, preview=preview)
        if confirmed and removals.is_valid():
            try:
                lifecycle_services.subscription_plan_change(
                    subscription=subscription,
                    plan=preview.new_plan,
                    actor=request.user,
                    now=now,
                    at_period_end=form.at_period_end,
                    **removals.cleaned_data,
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                return self._done(request, subscription, _plan_changed(preview))
        return self._page(
            request,
            subscription,
            "change_plan_preview.html",
            f"Change {subscription.organization} to {preview.new_plan}",
            form=form,
            preview=preview,
            removals=removals,
            prorations_invoiced_now=settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY,
        )

    def call_off_change_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        if request.method == "POST":
            try:
                subscription_services.subscription_scheduled_change_cancel(
                    subscription=subscription, actor=request.user, now=timezone.now()
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                return self._done(
                    request,
                    subscription,
                    f"The change to {subscription.scheduled_plan} is called off: "
                    f"{subscription.organization} stays on {subscription.plan}.",
                )
        return self._page(
            request,
            subscription,
            "call_off_change.html",
            "Call off the scheduled plan change",
            removals=_scheduled_removals(subscription),
        )

    def cancel_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        form = CancellationForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                canceled = subscription_services.subscription_cancel(
                    subscription=subscription,
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    now=timezone.now(),
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                organization = subscription.organization
                if canceled.status == Subscription.Status.CANCELED:
                    done = (
                        f"{organization}'s subscription has ended: it was suspended, with no "
                        "paid period left."
                    )
                else:
                    last_day = canceled.billing_period.last_day(canceled.tzinfo)
                    done = (
                        f"{organization}'s subscription ends on {last_day:%-d %b %Y}: nothing "
                        "more is charged, and it can be kept until then."
                    )
                return self._done(request, subscription, done)
        return self._page(
            request,
            subscription,
            "cancel.html",
            f"Cancel {subscription} at the end of the period",
            form=form,
        )

    def reactivate_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        if request.method == "POST":
            try:
                subscription_services.subscription_reactivate(
                    subscription=subscription, actor=request.user, now=timezone.now()
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                return self._done(
                    request,
                    subscription,
                    f"{subscription.organization}'s subscription continues and renews on "
                    f"{_day(subscription.current_period_end, subscription)}.",
                )
        return self._page(request, subscription, "reactivate.html", f"Keep {subscription} renewing")

    def extend_trial_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        trial_ends_on = (
            subscription.trial_ends_at.astimezone(subscription.tzinfo).date()
            if subscription.trial_ends_at
            else None
        )
        form = TrialExtensionForm(request.POST or None, initial={"ends_on": trial_ends_on})
        if request.method == "POST" and form.is_valid():
            ends_on = form.cleaned_data["ends_on"]
            try:
                subscription_services.subscription_trial_extend(
                    subscription=subscription,
                    ends_on=ends_on,
                    actor=request.user,
                    now=timezone.now(),
                )
            except BillingError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                return self._done(
                    request,
                    subscription,
                    f"{subscription.organization}'s trial now ends on {ends_on:%-d %b %Y}; "
                    "the first invoice comes then.",
                )
        return self._page(
            request,
            subscription,
            "extend_trial.html",
            f"Extend the trial of {subscription}",
            form=form,
        )


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
                invoicing_services.invoice_void(
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
                credit_note = invoicing_services.credit_note_issue(
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
        _adopt(
            obj, invoicing_services.discount_apply(organization=obj.organization, coupon=obj.coupon)
        )


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
            invoicing_services.balance_credit_grant(
                organization=obj.organization,
                kind=obj.kind,
                amount=Money(form.cleaned_data["amount"], obj.organization.currency),
                description=obj.description,
                actor=request.user,
            ),
        )
