"""The organization's billing support page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from billing.accounts.selectors import OrgAccess
from billing.web.pages import org_page, render_org_page


@org_page(finances=True)
def support(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return render_org_page(request, access, "billing/support.html", {})
