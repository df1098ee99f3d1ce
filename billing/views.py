from __future__ import annotations

import tempfile
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import exports, selectors, services
from billing.models import Invoice, Plan
from billing.services.documents import invoice_pdf_if_needed


def org_page(*, finances: bool):
    """Resolve `/billing/<org_slug>/…` to the person's access, or 404 for outsiders.

    Members reach only pages with `finances=False`; elsewhere they are told whom to ask.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, org_slug: str, *args, **kwargs) -> HttpResponse:
            access = selectors.org_access_for(user=request.user, slug=org_slug)
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
        "memberships": selectors.memberships_for_user(user=request.user),
        "admins": (
            selectors.organization_admins(organization=access.organization)
            if not access.sees_finances
            else []
        ),
        **(context or {}),
    }
    return render(request, template, context, status=status)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a person to their organization's billing page, or let them pick one."""
    memberships = selectors.memberships_for_user(user=request.user)
    if len(memberships) == 1:
        return redirect("billing:overview", org_slug=memberships[0].organization.slug)
    return render(request, "billing/home.html", {"memberships": memberships})


@org_page(finances=False)
def overview(request: HttpRequest, access: selectors.OrgAccess) -> HttpResponse:
    summary = selectors.billing_summary(organization=access.organization)
    return render_org_page(request, access, "billing/overview.html", {"summary": summary})


@org_page(finances=True)
def plans(request: HttpRequest, access: selectors.OrgAccess) -> HttpResponse:
    interval = request.GET.get("interval", Plan.Interval.MONTH)
    if interval not in Plan.Interval.values:
        interval = Plan.Interval.MONTH
    comparison = selectors.plan_comparison(organization=access.organization, interval=interval)
    return render_org_page(request, access, "billing/plans.html", {"comparison": comparison})


def _invoice_or_404(access: selectors.OrgAccess, number: str) -> Invoice:
    """The organization's own finalized invoice: another organization's number is a 404."""
    invoice = selectors.invoice_for(organization=access.organization, number=number)
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


@org_page(finances=True)
def invoices(request: HttpRequest, access: selectors.OrgAccess) -> HttpResponse:
    context = {
        "rows": selectors.invoice_history(organization=access.organization),
        "balance": services.organization_balance(organization=access.organization),
    }
    return render_org_page(request, access, "billing/invoices.html", context)


@org_page(finances=True)
def invoice(request: HttpRequest, access: selectors.OrgAccess, number: str) -> HttpResponse:
    document = selectors.invoice_document(invoice=_invoice_or_404(access, number))
    return render_org_page(request, access, "billing/invoice_detail.html", document)


@org_page(finances=True)
def invoice_pdf(request: HttpRequest, access: selectors.OrgAccess, number: str) -> HttpResponse:
    invoice = _invoice_or_404(access, number)
    return HttpResponse(
        invoice_pdf_if_needed(invoice=invoice),
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
    )


# Past this size the export goes to a temporary file on disk: a calls table can be large.
EXPORT_IN_MEMORY_BYTES = 16 * 1024 * 1024


@org_page(finances=True)
@require_GET
def export(request: HttpRequest, access: selectors.OrgAccess) -> FileResponse:
    """Everything the organization has with us, as a zip of CSVs and invoice PDFs."""
    organization = access.organization
    now = timezone.now()
    out = tempfile.SpooledTemporaryFile(max_size=EXPORT_IN_MEMORY_BYTES)  # noqa: SIM115 - the response closes it
    exports.organization_export_write(organization=organization, out=out, now=now)
    out.seek(0)
    day = timezone.localdate(now, organization.tzinfo)
    return FileResponse(
        out,
        as_attachment=True,
        filename=f"{organization.slug}-export-{day:%Y-%m-%d}.zip",
        content_type="application/zip",
    )
