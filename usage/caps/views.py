"""The spend caps page: administrators set the caps, members and support staff read them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.web.pages import org_page, posts_by_admins_only, render_org_page
from usage.caps import forms, selectors, services


@require_http_methods(["GET", "POST"])
@org_page(finances=False)
@posts_by_admins_only("usage/caps_admins_only.html")
def caps(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    overview = selectors.spend_caps_overview(organization=access.organization, now=timezone.now())
    form = forms.SpendCapsForm(request.POST or None, overview=overview)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                changes = services.spend_caps_replace(
                    organization=access.organization,
                    overage_spend=form.cleaned_data["overage_spend"],
                    employees=form.employee_seconds(),
                    cost_centers=form.cost_center_seconds(),
                    actor=request.user,
                )
            except BillingError as error:
                field = error.details.get("field")
                form.add_error(field if field in form.fields else None, error.message)
            else:
                messages.success(
                    request,
                    "The caps are saved: they apply from the next call."
                    if changes
                    else "Nothing changed.",
                )
                return redirect("usage:caps", org_slug=access.organization.slug)
    context = {"overview": overview, "form": form}
    return render_org_page(request, access, "usage/caps.html", context, status=status)
