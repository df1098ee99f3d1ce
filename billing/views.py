from __future__ import annotations

import tempfile

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.accounts import selectors as account_selectors
from billing.accounts import services as account_services
from billing.accounts.forms import BillingDetailsForm
from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.forms import CancellationForm, PlanChangeForm, PromotionCodeForm, ReferralForm
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.invoicing.services import invoice_pdf_if_needed
from billing.lifecycle import selectors as lifecycle_selectors
from billing.lifecycle import services as lifecycle_services
from billing.models import Invoice, Membership
from billing.subscriptions import selectors as subscription_selectors
from billing.subscriptions import services as subscription_services
from billing.web.pages import org_page, posts_by_admins_only, render_org_page


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a person to their organization's billing page, or let them pick one; support
    staff pick any organization, searching by name."""
    memberships = account_selectors.memberships_for_user(user=request.user)
    if account_selectors.staff_reads_billing(user=request.user):
        query = request.GET.get("q", "").strip()
        organizations = account_selectors.organizations_for_staff(
            query=query, page_number=request.GET.get("page")
        )
        context = {"memberships": memberships, "organizations": organizations, "query": query}
        return render(request, "billing/staff_home.html", context)
    if len(memberships) == 1:
        return redirect("billing:overview", org_slug=memberships[0].organization.slug)
    return render(request, "billing/home.html", {"memberships": memberships})


@org_page(finances=False)
def overview(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    page = lifecycle_selectors.overview_page(
        organization=access.organization,
        with_finances=access.sees_finances,
        user=request.user,
        now=timezone.now(),
    )
    context = {
        "page": page,
        "summary": page.summary,
        "usage": page.usage,
        "upcoming": page.upcoming,
    }
    return render_org_page(request, access, "billing/overview.html", context)


@org_page(finances=True)
def plans(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    page = lifecycle_selectors.plans_page(
        organization=access.organization, interval=request.GET.get("interval")
    )
    context = {
        "comparison": page.comparison,
        "fit": page.fit,
        "account_manager_email": settings.BILLING_SELLER["email"],
    }
    return render_org_page(request, access, "billing/plans.html", context)


def _invoice_or_404(access: OrgAccess, number: str) -> Invoice:
    """The organization's own finalized invoice: another organization's number is a 404."""
    invoice = invoicing_selectors.invoice_for(organization=access.organization, number=number)
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def _invoices_page(request, access, promotion_form, status=200) -> HttpResponse:
    referrals = invoicing_selectors.referral_summary(organization=access.organization)
    context = {
        "rows": invoicing_selectors.invoice_history(organization=access.organization),
        "balance": invoicing_selectors.organization_balance(organization=access.organization),
        "promotion_form": promotion_form,
        "referrals": referrals,
        "referral_link": request.build_absolute_uri(
            reverse("billing:referral", args=[referrals.code])
        ),
    }
    return render_org_page(request, access, "billing/invoices.html", context, status=status)


@org_page(finances=True)
def invoices(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return _invoices_page(request, access, PromotionCodeForm())


@require_POST
@org_page(finances=True)
@posts_by_admins_only("billing/admins_change_only.html")
def promotion_redeem(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = PromotionCodeForm(request.POST)
    if not form.is_valid():
        return _invoices_page(request, access, form, status=400)
    try:
        discount = invoicing_services.promotion_code_redeem(
            organization=access.organization, code=form.cleaned_data["code"]
        )
    except BillingError as error:
        form.add_error("code", error.message)
        return _invoices_page(request, access, form, status=400)
    messages.success(
        request, f"{discount.coupon} is yours: it is taken off your next invoices before tax."
    )
    return redirect("billing:invoices", org_slug=access.organization.slug)


@login_required
@require_http_methods(["GET", "POST"])
def referral(request: HttpRequest, code: str) -> HttpResponse:
    """A referral link: an administrator says which of their organizations joins through it."""
    referrer = invoicing_selectors.referral_organization(code=code)
    if referrer is None:
        raise Http404("That referral link is not valid.")
    administered = [
        membership.organization
        for membership in account_selectors.memberships_for_user(user=request.user)
        if membership.role == Membership.Role.ADMIN
    ]
    form = ReferralForm(request.POST or None, organizations=administered)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            referred = next(o for o in administered if o.slug == form.cleaned_data["organization"])
            try:
                invoicing_services.referral_record(
                    referrer=referrer, referred=referred, actor=request.user
                )
            except BillingError as error:
                form.add_error("organization", error.message)
            else:
                messages.success(
                    request,
                    f"{referred.name} joined through {referrer.name}'s referral: both receive "
                    "a referral credit when it pays its first invoice.",
                )
                return redirect("billing:invoices", org_slug=referred.slug)
    context = {"referrer": referrer, "form": form, "administered": administered}
    return render(request, "billing/referral.html", context, status=status)


@org_page(finances=True)
def invoice(request: HttpRequest, access: OrgAccess, number: str) -> HttpResponse:
    document = invoicing_selectors.invoice_document(invoice=_invoice_or_404(access, number))
    return render_org_page(request, access, "billing/invoice_detail.html", document)


@org_page(finances=True)
def invoice_pdf(request: HttpRequest, access: OrgAccess, number: str) -> HttpResponse:
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
def export(request: HttpRequest, access: OrgAccess) -> FileResponse:
    """Everything the organization has with us, as a zip of CSVs and invoice PDFs."""
    organization = access.organization
    now = timezone.now()
    out = tempfile.SpooledTemporaryFile(max_size=EXPORT_IN_MEMORY_BYTES)  # noqa: SIM115 - the response closes it
    lifecycle_services.organization_export_write(organization=organization, out=out, now=now)
    out.seek(0)
    day = timezone.localdate(now, organization.tzinfo)
    return FileResponse(
        out,
        as_attachment=True,
        filename=f"{organization.slug}-export-{day:%Y-%m-%d}.zip",
        content_type="application/zip",
    )


# --- changing plans, subscribing and cancelling -------------------------------------------


admins_post_only = posts_by_admins_only("billing/admins_change_only.html")


def _day(moment, organization) -> str:
    return f"{timezone.localtime(moment, organization.tzinfo):%-d %b %Y}"


def _back_to_overview(access: OrgAccess) -> HttpResponse:
    return redirect("billing:overview", org_slug=access.organization.slug)


def _contact_account_manager(choice: lifecycle_selectors.PlanChoice) -> str:
    current = choice.subscription.plan
    return (
        f"{current.name} is a plan negotiated for {current.organization}: to change it, "
        f"contact your account manager at {settings.BILLING_SELLER['email']}."
    )


def _plan_change_page(request, access, choice, form, status=200) -> HttpResponse:
    page = lifecycle_selectors.plan_change_page(
        organization=access.organization, choice=choice, now=timezone.now()
    )
    context = {
        "choice": page.choice,
        "preview": page.choice.preview,
        "form": form,
        "usage_beyond": page.usage_beyond,
    }
    return render_org_page(request, access, "billing/plan_change.html", context, status=status)


def _plan_changed(choice: lifecycle_selectors.PlanChoice, subscription) -> str:
    """The confirmation, in the terms of what was previewed."""
    organization, plan = subscription.organization, choice.plan
    if choice.subscription is None and subscription.is_trialing:
        return (
            f"You are subscribed to {plan.name}. Your free trial runs until "
            f"{_day(subscription.trial_ends_at, organization)}; the first invoice, "
            f"{plan.price}, comes then."
        )
    if choice.subscription is None:
        return f"You are subscribed to {plan.name}. The first invoice, {plan.price}, is issued now."
    if subscription.scheduled_plan is not None:
        return (
            f"Your plan changes to {plan.name} on "
            f"{_day(subscription.scheduled_change_at, organization)}. Until then you keep "
            f"everything {choice.preview.current_plan.name} includes."
        )
    message = f"You are now on {plan.name}: its allowances and features apply from now on."
    if choice.preview.proration:
        where = (
            "is invoiced now"
            if choice.prorations_invoiced_now
            else f"goes on your next invoice, on {choice.next_invoice_on:%-d %b %Y}"
        )
        message += f" The proration, {choice.preview.proration_total}, {where}."
    return message


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def plan_change(request: HttpRequest, access: OrgAccess, plan_id: int) -> HttpResponse:
    """GET shows what changing to the plan (or subscribing to it) does; POST confirms."""
    organization = access.organization
    now = timezone.now()  # the preview and the change agree on the moment
    choice = lifecycle_selectors.plan_choice(organization=organization, plan_id=plan_id, now=now)
    if choice is None:
        raise Http404("No such plan.")
    if choice.action == "current":
        messages.info(request, f"{organization.name} is already on {choice.plan.name}.")
        return redirect("billing:plans", org_slug=organization.slug)
    if choice.action == "contact":
        messages.error(request, _contact_account_manager(choice))
        return redirect("billing:plans", org_slug=organization.slug)
    if request.method == "GET":
        return _plan_change_page(request, access, choice, PlanChangeForm(preview=choice.preview))
    form = PlanChangeForm(request.POST, preview=choice.preview)
    if not form.is_valid():
        return _plan_change_page(request, access, choice, form, status=400)
    try:
        if choice.subscription is None:
            subscription = subscription_services.subscription_create(
                organization=organization, plan=choice.plan, actor=request.user, now=now
            )
        else:
            subscription = lifecycle_services.subscription_plan_change(
                subscription=choice.subscription,
                plan=choice.plan,
                actor=request.user,
                now=now,
                deactivate_employee_ids=form.cleaned_data["deactivate_employee_ids"],
                release_number_ids=form.cleaned_data["release_number_ids"],
            )
    except BillingError as error:
        messages.error(request, error.message)
        return _plan_change_page(request, access, choice, form, status=400)
    messages.success(request, _plan_changed(choice, subscription))
    return _back_to_overview(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def scheduled_change_cancel(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """Keep the current plan: the scheduled change is called off."""
    subscription = subscription_selectors.subscription_live(organization=access.organization)
    if subscription is None or subscription.scheduled_plan is None:
        messages.info(request, "No plan change is scheduled.")
        return _back_to_overview(access)
    dropped = subscription.scheduled_plan
    try:
        subscription_services.subscription_scheduled_change_cancel(
            subscription=subscription, actor=request.user
        )
    except BillingError as error:  # applied or called off meanwhile
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"You keep {subscription.plan.name}: the change to {dropped.name} is called off.",
        )
    return _back_to_overview(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def reactivate(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """Keep a subscription that was set to end with its period."""
    subscription = subscription_selectors.subscription_live(organization=access.organization)
    if subscription is None:
        messages.error(request, "The subscription has ended: choose a plan to subscribe again.")
        return redirect("billing:plans", org_slug=access.organization.slug)
    try:
        subscription = subscription_services.subscription_reactivate(
            subscription=subscription, actor=request.user
        )
    except BillingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _continues(subscription, access.organization))
    return _back_to_overview(access)


def _continues(subscription, organization) -> str:
    """What keeping the subscription means: it renews, and a change put on hold is back."""
    if subscription.scheduled_plan:
        return (
            f"Your subscription continues: your plan changes to {subscription.scheduled_plan} "
            f"on {_day(subscription.scheduled_change_at, organization)}, as scheduled."
        )
    return (
        f"Your subscription continues and renews on "
        f"{_day(subscription.current_period_end, organization)}."
    )


def _cancel_page(request, access, cancellation, form, status=200) -> HttpResponse:
    context = {"cancellation": cancellation, "form": form}
    return render_org_page(request, access, "billing/cancel.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def cancel(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """GET says what cancelling means and asks why; POST cancels at the period's end."""
    organization = access.organization
    now = timezone.now()
    cancellation = subscription_selectors.cancellation_for(organization=organization, now=now)
    if cancellation is None:
        messages.info(request, f"{organization.name} has no live subscription to cancel.")
        return _back_to_overview(access)
    if request.method == "GET":
        return _cancel_page(request, access, cancellation, CancellationForm())
    form = CancellationForm(request.POST)
    if not form.is_valid():
        return _cancel_page(request, access, cancellation, form, status=400)
    try:
        subscription = subscription_services.subscription_cancel(
            subscription=cancellation.subscription,
            reason=form.reason_text,
            actor=request.user,
            now=now,
        )
    except BillingError as error:
        messages.error(request, error.message)
        return _cancel_page(request, access, cancellation, form, status=400)
    ends = (
        "has ended"
        if subscription.status == subscription.Status.CANCELED
        else f"ends on {cancellation.last_day:%-d %b %Y}"
    )
    messages.success(
        request,
        f"Your subscription is canceled and {ends}. A confirmation was e-mailed to "
        f"{', '.join(organization.billing_email_list)}.",
    )
    return _back_to_overview(access)


# --- billing settings -----------------------------------------------------------------------


def _billing_settings_page(request, access, form, status=200) -> HttpResponse:
    context = {
        "form": form,
        "changes": account_selectors.billing_details_changes(organization=access.organization),
    }
    return render_org_page(request, access, "billing/settings.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def billing_settings(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    organization = access.organization
    if request.method == "GET":
        return _billing_settings_page(request, access, BillingDetailsForm(instance=organization))
    form = BillingDetailsForm(request.POST, instance=organization)
    if not form.is_valid():
        return _billing_settings_page(request, access, form, status=400)
    try:
        account_services.organization_billing_details_update(
            organization=organization,
            actor=request.user,
            **{name: form.cleaned_data[name] for name in account_selectors.BILLING_DETAILS},
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _billing_settings_page(request, access, form, status=400)
    messages.success(
        request,
        "Your billing details are saved. Invoices issued from now on use them; earlier "
        "invoices keep the details they were issued with.",
    )
    return redirect("billing:settings", org_slug=organization.slug)
