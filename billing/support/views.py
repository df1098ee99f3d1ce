"""The organization's billing support page: how to reach billing support and how fast it
answers, a new request (a question, an invoice copy, a dispute, enterprise pricing), and the
requests with their conversation. Administrators write; support staff read."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from djmoney.money import Money

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError, ErrorCode
from billing.invoicing import selectors as invoicing_selectors
from billing.models import BillingRequestMessage
from billing.support import selectors, services
from billing.support.forms import BillingRequestForm, CustomerReplyForm
from billing.web.attachments import attachment_of, attachment_response
from billing.web.pages import org_page, posts_by_admins_only, render_org_page

admins_post_only = posts_by_admins_only("billing/admins_change_only.html")


def _form_error(form, refusal: BillingError) -> None:
    """A service's refusal shown on the field it names, or above the form."""
    field = refusal.details.get("field")
    form.add_error(field if field in form.fields else None, refusal.message)


def _open_request(access: OrgAccess, form: BillingRequestForm, request: HttpRequest):
    organization = access.organization
    data = form.cleaned_data
    invoice = line = None
    if data["invoice"]:
        invoice = invoicing_selectors.invoice_for(
            organization=organization, number=data["invoice"].strip()
        )
        if invoice is None:
            raise BillingError(
                ErrorCode.INVOICE_NOT_FOUND,
                f"{organization.name} has no invoice {data['invoice']}.",
                field="invoice",
            )
        if data["line"]:
            line = invoice.lines.filter(pk=data["line"]).first()
            if line is None:
                raise BillingError(ErrorCode.LINE_NOT_FOUND, field="line")
    return services.billing_request_open(
        organization=organization,
        kind=data["kind"],
        subject=data["subject"],
        body=data["body"],
        actor=request.user,
        invoice=invoice,
        line=line,
        amount=Money(data["amount"], organization.currency) if data["amount"] else None,
        attachment=attachment_of(form),
    )


def _initial(request: HttpRequest) -> dict:
    """What a link prefills: "Question this charge" (invoice and line) or "Talk to us"."""
    initial = {key: request.GET[key] for key in ("kind", "invoice", "line") if key in request.GET}
    if "invoice" in initial and "kind" not in initial:
        initial["kind"] = "dispute"
    return initial


@org_page(finances=True)
@admins_post_only
def support(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    form = BillingRequestForm(
        request.POST or None, request.FILES or None, initial=_initial(request)
    )
    if request.method == "POST" and form.is_valid():
        try:
            opened = _open_request(access, form, request)
        except BillingError as refusal:
            _form_error(form, refusal)
        else:
            messages.success(
                request,
                f"Request #{opened.pk} sent: billing support answers by "
                f"{timezone.localtime(opened.respond_by, organization.tzinfo):%-d %b %Y, %H:%M}."
                if opened.is_open
                else f"Request #{opened.pk} approved at once: credit note {opened.credit_note}.",
            )
            return redirect("billing:support", org_slug=organization.slug)
    hours = selectors.response_hours(organization=organization, now=timezone.now())
    context = {
        "form": form,
        "requests": selectors.billing_requests_for(organization=organization),
        "response_time": selectors.response_time_label(hours),
        "priority": hours == settings.BILLING_SUPPORT_PRIORITY_RESPONSE_HOURS,
        "support_email": settings.BILLING_SELLER["email"],
        "reply_form": CustomerReplyForm(),
    }
    status = 422 if request.method == "POST" else 200
    return render_org_page(request, access, "billing/support.html", context, status=status)


@org_page(finances=True)
@admins_post_only
@require_POST
def support_reply(request: HttpRequest, access: OrgAccess, request_id: int) -> HttpResponse:
    billing_request = selectors.billing_request_for(
        organization=access.organization, request_id=request_id
    )
    if billing_request is None:
        raise Http404("No such request.")
    form = CustomerReplyForm(request.POST, request.FILES)
    try:
        if not form.is_valid():
            raise BillingError(ErrorCode.MESSAGE_REQUIRED, field="body")
        services.billing_request_reply(
            request=billing_request,
            author=request.user,
            body=form.cleaned_data["body"],
            kind="customer",
            attachment=attachment_of(form),
        )
    except BillingError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, f"Reply added to request #{billing_request.pk}.")
    return redirect("billing:support", org_slug=access.organization.slug)


@org_page(finances=True)
@require_GET
def support_attachment(request: HttpRequest, access: OrgAccess, message_id: int) -> HttpResponse:
    message = (
        BillingRequestMessage.objects.filter(
            pk=message_id, request__organization=access.organization
        )
        .exclude(kind=BillingRequestMessage.Kind.INTERNAL)
        .exclude(attachment="")
        .first()
    )
    if message is None:
        raise Http404("No such attachment.")
    return attachment_response(message)
