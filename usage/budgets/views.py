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
from usage.plan_fit.selectors import Scenario


def _page(request, access, form=None, status=200) -> HttpResponse:
    state = selectors.budget_state(organization=access.organization, now=timezone.now())
    cost_centers = (
        selectors.cost_center_budgets(organization=access.organization, forecast=state.forecast)
        if state
        else []
    )
    if form is None:
        initial = {"monthly_budget": state.budget.amount.amount if state and state.budget else None}
        form = forms.BudgetForm(initial=initial, cost_centers=cost_centers)
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
        "changes": selectors.budget_changes(organization=access.organization),
    }
    return render_org_page(request, access, "usage/budgets.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@posts_by_admins_only("usage/admins_change_only.html")
def budgets(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    if request.method == "GET":
        return _page(request, access)
    state = selectors.budget_state(organization=access.organization, now=timezone.now())
    if state is None:
        messages.error(request, "Without a live subscription there is nothing to budget.")
        return redirect("usage:budgets", org_slug=access.organization.slug)
    form = forms.BudgetForm(
        request.POST,
        cost_centers=selectors.cost_center_budgets(
            organization=access.organization, forecast=state.forecast
        ),
    )
    if not form.is_valid():
        return _page(request, access, form, status=400)
    try:
        services.budgets_replace(
            organization=access.organization,
            amount=form.cleaned_data["monthly_budget"],
            cost_centers=form.cost_center_amounts(),
            actor=request.user,
        )
    except BillingError as error:
        field = error.details.get("field")
        form.add_error(field if field in form.fields else None, error.message)
        return _page(request, access, form, status=400)
    messages.success(request, "The budgets are saved: you are alerted as spending nears them.")
    return redirect("usage:budgets", org_slug=access.organization.slug)
