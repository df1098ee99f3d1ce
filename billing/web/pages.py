"""Organization pages under `/billing/<org_slug>/…`, for every app: who may see them, who may
change things on them, and the context every one of them renders with."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from billing.accounts import selectors as account_selectors
from billing.accounts.selectors import OrgAccess


def org_page(*, finances: bool):
    """Resolve `/billing/<org_slug>/…` to the person's access, or 404 for outsiders.

    Members reach only pages with `finances=False`; elsewhere they are told whom to ask.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, org_slug: str, *args, **kwargs) -> HttpResponse:
            access = account_selectors.org_access_for(user=request.user, slug=org_slug)
            if access is None:
                raise Http404("No such organization.")
            if finances and not access.sees_finances:
                return render_org_page(request, access, "billing/admins_only.html", status=403)
            return view(request, access, *args, **kwargs)

        return wrapper

    return decorator


def render_org_page(request, access, template, context=None, status=200) -> HttpResponse:
    context = {
        "access": access,
        "organization": access.organization,
        "memberships": access.memberships,
        "admins": (
            account_selectors.organization_admins(organization=access.organization)
            if not access.sees_finances
            else []
        ),
        **(context or {}),
    }
    return render(request, template, context, status=status)


def posts_by_admins_only(refusal_template: str):
    """Refuse POSTs from anyone but the organization's administrators (staff read only),
    with a page that says who makes such changes (`refusal_template`)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request: HttpRequest, access: OrgAccess, *args, **kwargs) -> HttpResponse:
            if request.method == "POST" and not access.can_manage:
                return render_org_page(request, access, refusal_template, status=403)
            return view(request, access, *args, **kwargs)

        return wrapper

    return decorator
