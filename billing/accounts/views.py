"""The billing settings page: administrators edit the billing details; support staff see
them and their history read-only; members are told whom to ask."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from billing.accounts import billing_details
from billing.accounts.forms import BillingDetailsForm
from billing.selectors import OrgAccess
from billing.views import admins_post_only, org_page, render_org_page


def _page(request, access, form, status=200) -> HttpResponse:
    context = {
        "form": form,
        "changes": billing_details.billing_details_changes(organization=access.organization),
    }
    return render_org_page(request, access, "billing/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def billing_settings(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    if request.method == "GET":
        return _page(request, access, BillingDetailsForm(instance=organization))
    form = BillingDetailsForm(request.POST, instance=organization)
    if not form.is_valid():
        return _page(request, access, form, status=400)
    try:
        billing_details.organization_billing_details_update(
            organization=organization,
            actor=request.user,
            **{name: form.cleaned_data[name] for name in billing_details.FIELDS},
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _page(request, access, form, status=400)
    messages.success(
        request,
        "Your billing details are saved. Invoices issued from now on use them; earlier "
        "invoices keep the details they were issued with.",
    )
    return redirect("billing:settings", org_slug=organization.slug)
