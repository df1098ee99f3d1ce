"""Cost control pages: the upcoming invoice, and costs by team and AI employee (the page, its
CSV, and the rule for the plan's fee). Adapters only; administrators change the rule, support
staff look."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.web.pages import org_page, posts_by_admins_only, render_org_page
from usage.costs import forms, selectors, services

admins_post_only = posts_by_admins_only("usage/admins_change_only.html")


@require_GET
@org_page(finances=True)
def upcoming(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    upcoming = selectors.upcoming_invoice(organization=access.organization, now=timezone.now())
    return render_org_page(request, access, "usage/upcoming.html", {"upcoming": upcoming})


def _costs_page(request, access, rule, rule_form, status=200) -> HttpResponse:
    month_form = forms.CostMonthForm(request.GET)
    context = {"month_form": month_form, "rule_form": rule_form, "rule": rule}
    if not month_form.is_valid():
        return render_org_page(request, access, "usage/costs.html", context, status=400)
    context["costs"] = selectors.cost_month(
        organization=access.organization, month=month_form.cleaned_data["month"]
    )
    return render_org_page(request, access, "usage/costs.html", context, status=status)


@require_GET
@org_page(finances=True)
def costs(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    rule = selectors.allocation_rule_for(organization=access.organization)
    initial = {"fixed_fee": rule.fixed_fee, "cost_center": rule.cost_center} if rule else {}
    return _costs_page(request, access, rule, forms.AllocationRuleForm(initial=initial))


@require_GET
@org_page(finances=True)
def costs_csv(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    month_form = forms.CostMonthForm(request.GET)
    if not month_form.is_valid():
        return HttpResponse(
            "month: " + " ".join(month_form.errors["month"]),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    costs = selectors.cost_month(
        organization=access.organization, month=month_form.cleaned_data["month"]
    )
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{access.organization.slug}-costs-'
            f'{costs.month:%Y-%m}.csv"'
        },
    )
    writer = csv.writer(response)
    writer.writerow(
        ["month", "cost_center", "ai_employee", "call_seconds", "usage", "phone_numbers",
         "plan_fee", "discount_taxes_credits", "total", "currency", "invoice"]
    )  # fmt: skip
    for share in costs.shares:
        writer.writerow(
            [
                f"{costs.month:%Y-%m}",
                share.cost_center,
                share.employee_name,
                share.call_seconds,
                share.usage.amount,
                share.numbers.amount,
                share.fixed.amount,
                share.adjustments.amount,
                share.total.amount,
                share.total.currency,
                share.invoice.number,
            ]
        )
    return response


@require_POST
@org_page(finances=True)
@admins_post_only
def allocation_rule(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = forms.AllocationRuleForm(request.POST)
    rule = selectors.allocation_rule_for(organization=access.organization)
    if not form.is_valid():
        return _costs_page(request, access, rule, form, status=400)
    try:
        services.cost_allocation_rule_set(
            organization=access.organization, actor=request.user, **form.cleaned_data
        )
    except BillingError as error:
        form.add_error(None, error.message)
        return _costs_page(request, access, rule, form, status=error.status)
    messages.success(request, "Saved: months invoiced from now on are split this way.")
    return redirect("usage:costs", org_slug=access.organization.slug)


@require_GET
@org_page(finances=True)
def costs_history(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    history = selectors.cost_history(organization=access.organization, now=timezone.now())
    return render_org_page(request, access, "usage/costs_history.html", {"history": history})
