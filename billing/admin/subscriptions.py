"""Subscriptions and their lifecycle: each change staff make goes through one service of
`billing.subscriptions` and `billing.lifecycle`, on its own confirmation page, offered on the
subscription's page when it applies."""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from billing.admin.base import (
    AuditedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    action_confirmed,
    confirmation_page,
    invoice_link,
)
from billing.catalog import selectors as catalog_selectors
from billing.errors import BillingError
from billing.lifecycle import renewals
from billing.lifecycle import selectors as lifecycle_selectors
from billing.lifecycle import services as lifecycle_services
from billing.models import PendingLine, Plan, RenewalRun, RevenueSnapshot, Subscription
from billing.subscriptions import selectors as subscription_selectors
from billing.subscriptions import services as subscription_services
from billing.subscriptions.selectors import DOWNGRADE, PlanChangePreview, change_kind
from usage import selectors as usage_selectors


class PendingLineInline(ReadOnlyInline):
    """Prorations of plan changes: waiting for the next invoice, or carried by one."""

    model = PendingLine
    verbose_name = "proration line"
    verbose_name_plural = "Proration lines of plan changes"
    fields = ("description", "amount", "created_at", "invoice_shown")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Invoice")
    def invoice_shown(self, line):
        if line.invoice is None:
            return "Not invoiced yet: goes on the next invoice"
        return invoice_link(line.invoice)


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


def _canceled(subscription: Subscription) -> str:
    organization = subscription.organization
    if subscription.status == Subscription.Status.CANCELED:
        return (
            f"{organization}'s subscription has ended: it was suspended, with no paid period left."
        )
    last_day = subscription.billing_period.last_day(subscription.tzinfo)
    return (
        f"{organization}'s subscription ends on {last_day:%-d %b %Y}: nothing more is charged, "
        "and it can be kept until then."
    )


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin, SimpleHistoryAdmin):
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
    audited_actions = actions

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
        description="Renew now: invoice the periods that have ended", permissions=["manage"]
    )
    def renew_now(self, request, queryset):
        issued = []
        for subscription in queryset:
            try:
                issued += renewals.subscription_renew_if_needed(
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

    @staticmethod
    def _subscription_to_change(
        request, subscription_id, *, permission: str = "billing.manage_subscription"
    ) -> Subscription:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return get_object_or_404(
            Subscription.objects.select_related("organization", "plan", "scheduled_plan"),
            pk=subscription_id,
        )

    def has_manage_permission(self, request):
        return request.user.has_perm("billing.manage_subscription")

    def change_plan_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        form = PlanChangeForm(request.POST or None, subscription=subscription)
        if request.method != "POST" or not form.is_valid():
            return confirmation_page(
                self,
                request,
                original=subscription,
                template="admin/billing/subscription/change_plan.html",
                title=f"Change the plan of {subscription}",
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
        return action_confirmed(
            self,
            request,
            original=subscription,
            template="admin/billing/subscription/change_plan_preview.html",
            title=f"Change {subscription.organization} to {preview.new_plan}",
            # Unbound until confirmed, so the preview shows first.
            form=removals,
            perform=lambda: lifecycle_services.subscription_plan_change(
                subscription=subscription,
                plan=preview.new_plan,
                actor=request.user,
                now=now,
                at_period_end=form.at_period_end,
                **removals.cleaned_data,
            ),
            done=lambda changed: _plan_changed(preview),
            plan_form=form,
            preview=preview,
            removals=removals,
            prorations_invoiced_now=settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY,
        )

    def call_off_change_view(self, request, subscription_id):
        subscription = self._subscription_to_change(
            request, subscription_id, permission="billing.call_off_scheduled_change"
        )
        return action_confirmed(
            self,
            request,
            original=subscription,
            template="admin/billing/subscription/call_off_change.html",
            title="Call off the scheduled plan change",
            perform=lambda: subscription_services.subscription_scheduled_change_cancel(
                subscription=subscription, actor=request.user, now=timezone.now()
            ),
            done=lambda kept: (
                f"The change to {subscription.scheduled_plan} is called off: "
                f"{subscription.organization} stays on {subscription.plan}."
            ),
            removals=_scheduled_removals(subscription),
        )

    def cancel_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        form = CancellationForm(request.POST or None)
        return action_confirmed(
            self,
            request,
            original=subscription,
            template="admin/billing/subscription/cancel.html",
            title=f"Cancel {subscription} at the end of the period",
            form=form,
            perform=lambda: subscription_services.subscription_cancel(
                subscription=subscription,
                reason=form.cleaned_data["reason"],
                actor=request.user,
                now=timezone.now(),
            ),
            done=_canceled,
            last_day=subscription.billing_period.last_day(subscription.tzinfo),
        )

    def reactivate_view(self, request, subscription_id):
        subscription = self._subscription_to_change(request, subscription_id)
        return action_confirmed(
            self,
            request,
            original=subscription,
            template="admin/billing/subscription/reactivate.html",
            title=f"Keep {subscription} renewing",
            perform=lambda: subscription_services.subscription_reactivate(
                subscription=subscription, actor=request.user, now=timezone.now()
            ),
            done=lambda reactivated: (
                f"{subscription.organization}'s subscription continues and renews on "
                f"{_day(subscription.current_period_end, subscription)}."
            ),
        )

    def extend_trial_view(self, request, subscription_id):
        subscription = self._subscription_to_change(
            request, subscription_id, permission="billing.extend_trial"
        )
        trial_ends_on = (
            subscription.trial_ends_at.astimezone(subscription.tzinfo).date()
            if subscription.trial_ends_at
            else None
        )
        form = TrialExtensionForm(request.POST or None, initial={"ends_on": trial_ends_on})
        return action_confirmed(
            self,
            request,
            original=subscription,
            template="admin/billing/subscription/extend_trial.html",
            title=f"Extend the trial of {subscription}",
            form=form,
            perform=lambda: subscription_services.subscription_trial_extend(
                subscription=subscription,
                ends_on=form.cleaned_data["ends_on"],
                actor=request.user,
                now=timezone.now(),
            ),
            done=lambda extended: (
                f"{subscription.organization}'s trial now ends on "
                f"{form.cleaned_data['ends_on']:%-d %b %Y}; the first invoice comes then."
            ),
        )


@admin.register(RenewalRun)
class RenewalRunAdmin(ReadOnlyAdmin):
    """The renewal job's runs, latest first: how long each took, what it issued and failed."""

    list_display = (
        "started_at",
        "duration_shown",
        "due",
        "invoices_issued",
        "failed",
        "pace",
    )
    list_filter = ("started_at",)
    date_hierarchy = "started_at"
    readonly_fields = (
        "started_at",
        "finished_at",
        "duration_shown",
        "due",
        "invoices_issued",
        "failed",
        "failed_subscriptions_shown",
    )
    exclude = ("failed_subscriptions",)

    @admin.display(description="Duration")
    def duration_shown(self, run: RenewalRun) -> str:
        return f"{run.duration.total_seconds():.1f} s"

    @admin.display(description="Subscriptions per second")
    def pace(self, run: RenewalRun) -> str:
        seconds = run.duration.total_seconds()
        return f"{run.due / seconds:.1f}" if seconds and run.due else "–"

    @admin.display(description="Failed subscriptions")
    def failed_subscriptions_shown(self, run: RenewalRun) -> str:
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:billing_subscription_change", args=[pk]), pk)
                for pk in run.failed_subscriptions
            ),
        )


@admin.register(RevenueSnapshot)
class RevenueSnapshotAdmin(ReadOnlyAdmin):
    """The daily revenue job's figures, per day and currency, with their definitions' version."""

    list_display = ("day", "currency", "mrr", "usage_run_rate", "definitions_version")
    list_filter = ("currency", "definitions_version")
    date_hierarchy = "day"
    readonly_fields = (
        "day",
        "currency",
        "definitions_version",
        "mrr",
        "usage_run_rate",
        "figures",
        "taken_at",
    )
