"""The budgets page: this month's spend against the budget, the forecast with its band and
the days left, the budget form, and scenarios. Administrators change; staff look."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.web.pages import org_page, posts_by_admins_only, render_org_page
from usage.budgets import forms, selectors, services
from usage.selectors import Scenario


def _page(request, access, form, status=200) -> HttpResponse:
    state = selectors.budget_state(organization=access.organization, now=timezone.now())
    scenario_form = forms.ScenarioForm(request.GET if "calls_percent" in request.GET else None)
    scenario = None
    if scenario_form.is_bound:
        if scenario_form.is_valid():
            scenario = selectors.scenario_costs(
                organization=access.organization,
                scenario=Scenario(
                    calls_percent=scenario_form.cleaned_data["calls_percent"] or Decimal(0),
                    more_employees=scenario_form.cleaned_data["more_employees"] or 0,
                ),
            )
        elif status == 200:
            status = 400
    context = {
        "state": state,
        "form": form,
        "budget_percents": sorted(settings.BUDGET_ALERT_PERCENTS),
        "scenario_form": scenario_form,
        "scenario": scenario,
    }
    return render_org_page(request, access, "usage/budgets.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@posts_by_admins_only("usage/admins_change_only.html")
def budgets(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    if request.method == "GET":
        budget = selectors.organization_budget(organization=access.organization)
        initial = {"monthly_budget": budget.amount.amount if budget else None}
        return _page(request, access, forms.BudgetForm(initial=initial))
    form = forms.BudgetForm(request.POST)
    if not form.is_valid():
        return _page(request, access, form, status=400)
    try:
        budget = services.budget_set(
            organization=access.organization,
            amount=form.cleaned_data["monthly_budget"],
            actor=request.user,
        )
    except BillingError as error:
        form.add_error("monthly_budget", error.message)
        return _page(request, access, form, status=400)
    messages.success(
        request,
        f"The monthly budget is {budget.amount}: you are alerted as spending nears it."
        if budget
        else "The monthly budget is removed.",
    )
    return redirect("usage:budgets", org_slug=access.organization.slug)
