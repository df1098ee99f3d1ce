"""Cost control pages: the upcoming invoice. Adapters only."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing.accounts.selectors import OrgAccess
from billing.web.pages import org_page, render_org_page
from usage.costs import selectors


@require_GET
@org_page(finances=True)
def upcoming(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    upcoming = selectors.upcoming_invoice(organization=access.organization, now=timezone.now())
    return render_org_page(request, access, "usage/upcoming.html", {"upcoming": upcoming})
