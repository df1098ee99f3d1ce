"""What every app's admin stands on: read-only lists and inlines, lists over tables that grow
with traffic, text-box filters, rows only a service writes, links to billing's objects, and
staff actions run through a confirmation page.

The admins of billing, usage and payments import shared pieces from here only, never from
each other.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connections, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from billing.accounts.services import audit_record, staff_record_save
from billing.errors import BillingError
from billing.models import Invoice, Organization

Result = TypeVar("Result")

# --- the audit log ------------------------------------------------------------------------


def organization_id_of(obj: Model) -> int | None:
    """The organization a record belongs to, directly or through its invoice, notice or
    subscription; None for the catalog and staff accounts."""
    if isinstance(obj, Organization):
        return obj.pk
    for path in ("invoice", "notification", "subscription", None):
        holder = getattr(obj, path, None) if path else obj
        organization_id = getattr(holder, "organization_id", None)
        if organization_id is not None:
            return organization_id
    return None


def _form_changes(form: forms.BaseForm, add: bool) -> dict[str, list]:
    """{field: [before, after]} of what a staff member changed (or filled in) in a form;
    never a secret."""
    return {
        name: [None if add else _shown(form.initial.get(name)), _shown(form.cleaned_data[name])]
        for name in form.changed_data
        if name in form.cleaned_data and "password" not in name
    }


def _inline_changes(message: list[dict]) -> dict[str, list]:
    """The rows added, changed or deleted on the page's inlines (a member added to an
    organization), from the admin's own change message: {"membership alice": [before,
    after]}."""
    changes = {}
    for entry in message:
        for verb, details in entry.items():
            if "object" not in details:
                continue  # the page's own form: its fields are recorded one by one
            name = f"{details['name']} {details['object']}"
            changed = ", ".join(details.get("fields", []))
            changes[name] = {
                "added": [None, "added"],
                "changed": ["", f"changed {changed}"],
                "deleted": ["deleted", None],
            }[verb]
    return changes


def _shown(value: Any) -> Any:
    # Many-to-many fields: the chosen rows, by name.
    if isinstance(value, QuerySet | list | tuple):
        return ", ".join(str(item) for item in value)
    return value


class AuditedAdmin(admin.ModelAdmin):
    """Every write staff make in this admin goes into the audit log: each add, change and
    delete (with the fields' values before and after), and each list action named in
    `audited_actions` (the others call a service that records itself). Rows a service adds
    (`audited_by_service`) are recorded by that service."""

    audited_actions: tuple[str, ...] = ()
    audited_by_service = False
    # Records staff edit field by field, saved through the service that checks the role.
    saved_by_service = False

    def save_model(self, request, obj, form, change):
        if not self.saved_by_service:
            return super().save_model(request, obj, form, change)
        return staff_record_save(
            record=obj, actor=request.user, changes=_form_changes(form, add=not change)
        )

    def construct_change_message(self, request, form, formsets, add=False):
        message = super().construct_change_message(request, form, formsets, add)
        request.audit_changes = {**_form_changes(form, add), **_inline_changes(message)}
        return message

    def _audit(self, request, obj, action: str) -> None:
        audit_record(
            actor=request.user,
            action=action,
            subject=obj,
            organization_id=organization_id_of(obj),
            changes=getattr(request, "audit_changes", None),
        )

    def log_addition(self, request, obj, message):
        if not (self.audited_by_service or self.saved_by_service):
            self._audit(request, obj, f"Added {obj._meta.verbose_name}")
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        if self.saved_by_service:
            # The service recorded the page's own fields; the inlines' rows remain.
            request.audit_changes = _inline_changes(message)
        if getattr(request, "audit_changes", None):
            self._audit(request, obj, f"Changed {obj._meta.verbose_name}")
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        request.audit_changes = None
        for obj in queryset:
            self._audit(request, obj, f"Deleted {obj._meta.verbose_name}")
        return super().log_deletions(request, queryset)

    def response_action(self, request, queryset):
        name = request.POST.get("action", "")
        actions = self.get_actions(request)
        if name not in self.audited_actions or name not in actions:
            return super().response_action(request, queryset)
        if request.POST.get("select_across") != "1":
            queryset = queryset.filter(
                pk__in=request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
            )
        chosen = list(queryset)
        response = super().response_action(request, queryset)
        if chosen:
            description = actions[name][2]
            request.audit_changes = None
            for obj in chosen:
                self._audit(request, obj, str(description))
        return response


# --- read-only ----------------------------------------------------------------------------


class ReadOnlyAdmin(AuditedAdmin):
    """Facts and the records derived from them: staff look; nobody adds, edits or deletes."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page as written: every field read-only, none added,
    changed or removed there."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- big tables ---------------------------------------------------------------------------


class BoundedCountPaginator(Paginator):
    """Counts at most `limit + 1` rows (`SELECT COUNT(*) FROM (SELECT … LIMIT n)`), so a list
    over millions of rows never counts them all. Pages stop there too, which also keeps
    OFFSET small; staff narrow a long list with the filters instead."""

    limit = 10_000

    @cached_property
    def count(self) -> int:
        # Unordered, so the database may stop at any `limit + 1` rows.
        return self.object_list.order_by()[: self.limit + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > self.limit

    @cached_property
    def estimated_total(self) -> int | None:
        """PostgreSQL's planner estimate of the table's rows, for an unfiltered capped list:
        free to read, and enough to tell thousands from millions."""
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql" or queryset.query.where or not self.is_capped:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            (estimate,) = cursor.fetchone()
        return estimate if estimate > self.limit else None


class BigTableAdmin(AuditedAdmin):
    """A list over a table that grows with traffic: a bounded count (the admin's pagination
    and search templates say "10,000+"), no second count of the whole table, and no facet
    counts."""

    paginator = BoundedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # 100 rows a page: the counted rows then fill at most 100 pages.
    list_per_page = 100


# --- filters ------------------------------------------------------------------------------


class InputFilter(admin.ListFilter):
    """A text box instead of a list of choices, for things too many to list (listing every
    organization would load them all on each page view)."""

    template = "admin/input_filter.html"
    parameter_name: str
    placeholder = ""

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        if self.parameter_name in params:
            self.used_parameters[self.parameter_name] = params.pop(self.parameter_name)[-1]

    def value(self) -> str:
        return self.used_parameters.get(self.parameter_name, "").strip()

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name]

    def choices(self, changelist):
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value(),
            "placeholder": self.placeholder,
            # The form sends the list's other parameters along, so filters add up.
            "other_parameters": [
                (name, value)
                for name, value in changelist.params.items()
                if name != self.parameter_name
            ],
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


class OrganizationFilter(InputFilter):
    title = "organization"
    parameter_name = "organization"
    placeholder = "slug, e.g. acme-dental"

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        # The slug is resolved first so the list filters on `organization_id`, which the
        # (organization, …) indexes serve, instead of joining organizations.
        organization_id = (
            Organization.objects.filter(slug=self.value()).values_list("pk", flat=True).first()
        )
        return queryset.filter(organization_id=organization_id)


def null_state_filter(field: str, *, unset: tuple[str, str], done: tuple[str, str]):
    """A list filter on whether a timestamp like `released_at` is set: ("held", "Provisioned")
    while empty, ("released", "Released") once set."""

    class StateFilter(admin.SimpleListFilter):
        title = "state"
        parameter_name = "state"

        def lookups(self, request, model_admin):
            return (unset, done)

        def queryset(self, request, queryset):
            if self.value() in (unset[0], done[0]):
                return queryset.filter(**{f"{field}__isnull": self.value() == unset[0]})
            return queryset

    return StateFilter


# --- rows a service writes ----------------------------------------------------------------


class RefusalAsMessage:
    """For an admin whose saves go through a service: the service's refusal (a quota, a
    limit, a rule of the ledger) reaches staff as a message instead of an error page, and
    the admin's transaction writes nothing."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BillingError as refusal:
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ServiceAddAdmin(RefusalAsMessage, AuditedAdmin):
    """Rows only a service writes: staff add them through it (which records them in the audit
    log), its refusal is shown as a message, and nothing is ever changed or deleted
    afterwards."""

    audited_by_service = True

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def adopt(obj: Model, created: Model) -> None:
    """Turn the admin's unsaved form instance into the row a service created, for the
    admin's log entry, message and redirect."""
    for field in created._meta.concrete_fields:
        setattr(obj, field.attname, getattr(created, field.attname))
    obj._state.adding = False


# --- billing's objects, as every app's admin shows them -----------------------------------


def invoice_timezone(invoice: Invoice) -> ZoneInfo:
    # Finalized invoices froze the customer's timezone; drafts use the organization's.
    return ZoneInfo(invoice.customer_timezone or invoice.organization.timezone)


def invoice_link(invoice: Invoice) -> str:
    url = reverse("admin:billing_invoice_change", args=[invoice.pk])
    return format_html('<a href="{}">{}</a>', url, invoice)


# --- actions behind a confirmation page ---------------------------------------------------


def confirmation_page(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    original: Model,
    template: str,
    title: str,
    **context,
) -> TemplateResponse:
    """A staff action's page about `original`: `template` extends "admin/confirmation.html",
    which links back to `original` and posts its form (if any) back to the same address."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": original._meta,
            "original": original,
            "title": title,
            "can_submit": True,
            **context,
        },
    )


def action_confirmed(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    original: Model,
    template: str,
    title: str,
    perform: Callable[[], Result],
    done: Callable[[Result], str],
    form: forms.Form | None = None,
    succeeded: Callable[[Result], bool] = lambda result: True,
    redirect_to: Callable[[Result], str] | None = None,
    **context: Any,
) -> HttpResponse:
    """Run a staff action on `original` through its confirmation page.

    A GET, or a POST whose `form` is not valid, shows the page: what the action does, and
    the form with its errors. A POST with a valid form (or none to fill) calls `perform`,
    which calls one service. Its refusal (a `BillingError`) becomes an error message on the
    page again, and nothing is written. Otherwise `done(result)` is the message, and staff
    go back to `original`'s page (or to `redirect_to(result)`). A result that did not get
    what was asked, though the service ran (a declined charge), makes that message an error
    when `succeeded(result)` says so.
    """
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            with transaction.atomic():
                result = perform()
        except BillingError as refusal:
            model_admin.message_user(request, refusal.message, messages.ERROR)
        else:
            level = messages.SUCCESS if succeeded(result) else messages.ERROR
            model_admin.message_user(request, done(result), level)
            if redirect_to is not None:
                return redirect(redirect_to(result))
            opts = original._meta
            return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", original.pk)
    return confirmation_page(
        model_admin,
        request,
        original=original,
        template=template,
        title=title,
        form=form,
        **context,
    )
