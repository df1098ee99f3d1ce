"""The organization administrator's usage pages: call time, AI employees, phone numbers.

Adapters only: parse the request, call one selector or service, render. Every change is a
POST form that works without JavaScript, made by the organization's administrators; support
staff see the pages read-only. After a change the browser is sent back (post/redirect/get).
"""

from __future__ import annotations

import csv
import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from billing.accounts.selectors import OrgAccess
from billing.catalog.selectors import feature_status
from billing.errors import BillingError
from billing.web.attachments import attachment_of
from billing.web.pages import org_page, posts_by_admins_only, render_org_page
from usage import selectors, services
from usage.dashboard import selectors as dashboard_selectors
from usage.disputes import selectors as dispute_selectors
from usage.disputes import services as dispute_services
from usage.disputes.selectors import CallFilters
from usage.forms import (
    CallDisputeForm,
    CallFilterForm,
    EmployeeCreateForm,
    PhoneNumberAssignForm,
    PhoneNumberProvisionForm,
)
from usage.models import AIEmployee, PhoneNumber

# Ways out of a refusal whose service does not name them in `details["ways_out"]`.
WAYS_OUT = {"phone_number_limit_reached": ["release", "upgrade"]}


admins_post_only = posts_by_admins_only("usage/admins_change_only.html")


def _refused(request: HttpRequest, access: OrgAccess, error: BillingError) -> None:
    """Show a refusal as the service words it, its ways out as links."""
    context = {
        "error": error,
        "ways_out": error.details.get("ways_out") or WAYS_OUT.get(error.code, []),
        "organization": access.organization,
    }
    messages.error(request, render_to_string("usage/_refusal.html", context))


def _period_start(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None  # an unknown period shows the current one


# --- usage --------------------------------------------------------------------------------


# The per-AI-employee and per-cost-center breakdowns are this feature of the plan.
ANALYTICS = "analytics_dashboards"


@org_page(finances=True)
def dashboard(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    now = timezone.now()
    analytics = feature_status(organization=access.organization, code=ANALYTICS, now=now)
    dashboard = dashboard_selectors.usage_dashboard(
        organization=access.organization,
        now=now,
        period_start=_period_start(request.GET.get("period")),
        breakdowns=analytics is not None and analytics.enabled,
    )
    context = {"dashboard": dashboard, "analytics": analytics}
    return render_org_page(request, access, "usage/dashboard.html", context)


# --- AI employees -------------------------------------------------------------------------


def _employees_page(
    request: HttpRequest, access: OrgAccess, form: EmployeeCreateForm, status: int = 200
) -> HttpResponse:
    roster = selectors.employee_roster(organization=access.organization)
    context = {"roster": roster, "form": form}
    return render_org_page(request, access, "usage/employees.html", context, status=status)


def _back_to_employees(access: OrgAccess) -> HttpResponse:
    return redirect("usage:employees", org_slug=access.organization.slug)


@org_page(finances=True)
def employees(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return _employees_page(request, access, EmployeeCreateForm())


@require_POST
@org_page(finances=True)
@admins_post_only
def employee_create(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = EmployeeCreateForm(request.POST)
    if not form.is_valid():
        return _employees_page(request, access, form, status=400)
    try:
        employee = services.employee_create(organization=access.organization, **form.cleaned_data)
    except BillingError as error:
        # Shown on the page with what was typed, so nothing is lost while choosing a way out.
        _refused(request, access, error)
        return _employees_page(request, access, form, status=409)
    messages.success(request, f"{employee.name} is active.")
    return _back_to_employees(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def employee_deactivate(request: HttpRequest, access: OrgAccess, employee_id: int) -> HttpResponse:
    employee = get_object_or_404(AIEmployee, pk=employee_id, organization=access.organization)
    services.employee_deactivate(employee=employee)
    messages.success(
        request,
        f"{employee.name} is deactivated. Its settings and call history are kept, "
        "and its place on the plan is free.",
    )
    return _back_to_employees(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def employee_reactivate(request: HttpRequest, access: OrgAccess, employee_id: int) -> HttpResponse:
    employee = get_object_or_404(AIEmployee, pk=employee_id, organization=access.organization)
    try:
        services.employee_reactivate(employee=employee)
    except BillingError as error:
        _refused(request, access, error)
    else:
        messages.success(request, f"{employee.name} is active again.")
    return _back_to_employees(access)


# --- phone numbers ------------------------------------------------------------------------


def _numbers_page(
    request: HttpRequest, access: OrgAccess, form: PhoneNumberProvisionForm, status: int = 200
) -> HttpResponse:
    roster = selectors.phone_number_roster(organization=access.organization, now=timezone.now())
    context = {"roster": roster, "form": form}
    return render_org_page(request, access, "usage/phone_numbers.html", context, status=status)


def _back_to_numbers(access: OrgAccess) -> HttpResponse:
    return redirect("usage:phone_numbers", org_slug=access.organization.slug)


def _number(access: OrgAccess, number_id: int) -> PhoneNumber:
    return get_object_or_404(
        PhoneNumber.objects.select_related("employee"),
        pk=number_id,
        organization=access.organization,
    )


@org_page(finances=True)
def phone_numbers(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = PhoneNumberProvisionForm(organization=access.organization)
    return _numbers_page(request, access, form)


@require_POST
@org_page(finances=True)
@admins_post_only
def number_provision(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = PhoneNumberProvisionForm(request.POST, organization=access.organization)
    if not form.is_valid():
        return _numbers_page(request, access, form, status=400)
    try:
        phone_number = services.phone_number_provision(
            organization=access.organization, **form.cleaned_data
        )
    except BillingError as error:
        _refused(request, access, error)
        return _numbers_page(request, access, form, status=409)
    messages.success(
        request,
        f"{phone_number} is provisioned at {phone_number.monthly_fee} a month; "
        "this month is charged for the days left.",
    )
    return _back_to_numbers(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def number_assign(request: HttpRequest, access: OrgAccess, number_id: int) -> HttpResponse:
    phone_number = _number(access, number_id)
    form = PhoneNumberAssignForm(request.POST, organization=access.organization)
    if not form.is_valid():
        messages.error(request, "Choose an active AI employee that answers calls.")
        return _back_to_numbers(access)
    employee = form.cleaned_data["employee"]
    try:
        services.phone_number_assign(phone_number=phone_number, employee=employee)
    except BillingError as error:
        _refused(request, access, error)
    else:
        messages.success(
            request,
            f"Calls to {phone_number} now ring {employee}."
            if employee
            else f"{phone_number} no longer rings an AI employee.",
        )
    return _back_to_numbers(access)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def number_release(request: HttpRequest, access: OrgAccess, number_id: int) -> HttpResponse:
    """GET asks for confirmation, saying what is lost; POST releases the number."""
    phone_number = _number(access, number_id)
    if request.method == "GET":
        context = {"phone_number": phone_number}
        return render_org_page(request, access, "usage/number_release.html", context)
    services.phone_number_release(phone_number=phone_number)
    messages.success(
        request,
        f"{phone_number} is released. This month's fee is not refunded, nothing more is "
        "charged for it, and it cannot be provisioned again.",
    )
    return _back_to_numbers(access)


# --- the calls of a call overage line ----------------------------------------------------

CALLS_PER_PAGE = 50
CSV_COLUMNS = ["call_id", "connected_at", "ai_employee", "direction", "billable_seconds"]


def _calls_csv(line, calls, tzinfo) -> StreamingHttpResponse:
    """Every filtered call, read in chunks: a month can hold many."""

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for call in calls.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    call.platform_call_id,
                    call.connected_at.astimezone(tzinfo).isoformat(),
                    call.employee.name,
                    call.direction,
                    call.billable_seconds,
                ]
            )

    return StreamingHttpResponse(
        rows(),
        content_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{line.invoice.number}-line-{line.pk}-calls.csv"'
        },
    )


@org_page(finances=True)
@admins_post_only
@require_http_methods(["GET", "POST"])
def line_calls(request: HttpRequest, access: OrgAccess, number: str, line_id: int) -> HttpResponse:
    """The calls of a call overage line's month: filter, page, download as CSV, and dispute
    the chosen ones."""
    organization = access.organization
    try:
        line = dispute_selectors.call_line_for(
            organization=organization, number=number, line_id=line_id
        )
    except BillingError as refusal:
        raise Http404(refusal.message) from refusal
    filters = CallFilterForm(request.GET or None, organization=organization)
    calls = dispute_selectors.line_calls(
        line=line, filters=filters.filters() if filters.is_valid() else CallFilters()
    )
    if request.GET.get("format") == "csv" and not filters.errors:
        return _calls_csv(line, calls, organization.tzinfo)
    dispute = CallDisputeForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if dispute.is_valid():
            try:
                opened = dispute_services.calls_dispute(
                    line=line,
                    call_ids=dispute.cleaned_data["calls"],
                    reason=dispute.cleaned_data["reason"],
                    body=dispute.cleaned_data["body"],
                    actor=request.user,
                    attachment=attachment_of(dispute),
                )
            except BillingError as refusal:
                field = refusal.details.get("field")
                dispute.add_error(field if field in dispute.fields else None, refusal.message)
            else:
                messages.success(
                    request,
                    f"Request #{opened.pk}: {opened.seconds_in_question} s of calls, "
                    f"{opened.amount_in_question}, sent to billing support.",
                )
                return redirect(
                    f"{reverse('billing:support', args=[organization.slug])}#request-{opened.pk}"
                )
        status = 422
    page = Paginator(calls, CALLS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "line": line,
        "invoice": line.invoice,
        "filters": filters,
        "page": page,
        "dispute": dispute,
        "query": query.urlencode(),
        "chosen": set(request.POST.getlist("calls")),
    }
    return render_org_page(request, access, "usage/line_calls.html", context, status=status)
