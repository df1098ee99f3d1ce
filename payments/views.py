"""The payment-methods page, its actions, and "pay now" for an open invoice.

Adapters only: parse the request, call the gateway facade to validate a new method and one
service or selector, render. Every change is a POST form that works without JavaScript
(except Stripe's own card field), made by the organization's administrators; support staff
see the page read-only. After a change the browser is sent back (post/redirect/get).
"""

from __future__ import annotations

import dataclasses
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.forms.models import model_to_dict
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from billing.accounts.selectors import OrgAccess
from billing.errors import BillingError
from billing.invoicing import selectors as invoicing_selectors
from billing.models import Invoice
from billing.web.pages import org_page, posts_by_admins_only, render_org_page
from payments import gateways, selectors, services
from payments.forms import BankAccountForm, BillingDetailsForm, CardForm, StripeMethodForm
from payments.models import PaymentMethod

# Never in an error report or a log: what would let someone else pay with the method.
SECRET_FIELDS = ("number", "cvc", "account_number")


admins_post_only = posts_by_admins_only("payments/admins_change_only.html")


def gateway_is(processor: str):
    """Each way of adding a method exists only with its gateway: sandbox cards must never be
    accepted where real money is collected."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs) -> HttpResponse:
            if processor != settings.PAYMENT_GATEWAY:
                raise Http404(f"Payment methods are not added through {processor} here.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _methods_page(
    request: HttpRequest,
    access: OrgAccess,
    *,
    card_form: CardForm | None = None,
    bank_form: BankAccountForm | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = access.organization
    context = {
        "on_file": selectors.methods_on_file(
            organization=organization, today=timezone.now().date()
        ),
        "history": selectors.payment_history(
            organization=organization, page_number=request.GET.get("page")
        ),
        "gateway": settings.PAYMENT_GATEWAY,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_method_types": gateways.METHOD_TYPES,  # the Payment Element offers what the intent takes
        "card_form": card_form or CardForm(),
        "bank_form": bank_form or BankAccountForm(),
        "test_cards": selectors.sandbox_test_cards(),
        "test_bank_accounts": selectors.sandbox_test_bank_accounts(),
    }
    return render_org_page(request, access, "payments/methods.html", context, status=status)


def _back_to_methods(access: OrgAccess) -> HttpResponse:
    return redirect("payments:methods", org_slug=access.organization.slug)


def _method_or_404(access: OrgAccess, method_id: int) -> PaymentMethod:
    method = selectors.payment_method_for(organization=access.organization, method_id=method_id)
    if method is None:
        raise Http404("No such payment method.")
    return method


def _added(request: HttpRequest, method: PaymentMethod) -> None:
    role = "the default" if method.is_default else "a backup"
    messages.success(request, f"{method.label} is added as {role} payment method.")


@org_page(finances=True)
def methods(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    return _methods_page(request, access)


@require_POST
@sensitive_post_parameters(*SECRET_FIELDS)
@org_page(finances=True)
@admins_post_only
@gateway_is("sandbox")
def method_add_card(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = CardForm(request.POST)
    if not form.is_valid():
        return _methods_page(request, access, card_form=form, status=400)
    details = form.cleaned_data
    try:
        attached = gateways.sandbox_card_attach(number=details["number"])
        method = services.payment_method_add(
            organization=access.organization,
            processor=PaymentMethod.Processor.SANDBOX,
            # The sandbox, unlike Stripe, does not read the expiry off the card: it is as typed.
            attached=dataclasses.replace(
                attached, exp_month=details["exp_month"], exp_year=details["exp_year"]
            ),
            billing_name=details["billing_name"],
            billing_address=details["billing_address"],
            billing_postal_code=details["billing_postal_code"],
            billing_country=details["billing_country"],
            make_default=details["make_default"],
        )
    except BillingError as refused:  # refused by the processor, or already on file
        form.add_error(None, refused.message)
        return _methods_page(request, access, card_form=form, status=400)
    _added(request, method)
    return _back_to_methods(access)


@require_POST
@sensitive_post_parameters(*SECRET_FIELDS)
@org_page(finances=True)
@admins_post_only
@gateway_is("sandbox")
def method_add_bank_account(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    form = BankAccountForm(request.POST)
    if not form.is_valid():
        return _methods_page(request, access, bank_form=form, status=400)
    details = form.cleaned_data
    try:
        attached = gateways.sandbox_bank_account_attach(
            routing_number=details["routing_number"], account_number=details["account_number"]
        )
        method = services.payment_method_add(
            organization=access.organization,
            processor=PaymentMethod.Processor.SANDBOX,
            attached=attached,
            billing_name=details["billing_name"],
            make_default=details["make_default"],
        )
    except BillingError as refused:  # refused by the processor, or already on file
        form.add_error(None, refused.message)
        return _methods_page(request, access, bank_form=form, status=400)
    _added(request, method)
    return _back_to_methods(access)


@require_POST
@org_page(finances=True)
@admins_post_only
@gateway_is("stripe")
def method_setup_stripe(request: HttpRequest, access: OrgAccess) -> JsonResponse:
    """Called by the page when the card is submitted, not when the page is shown: viewing
    the page never reaches Stripe. Answers the client secret of a SetupIntent, which the
    Payment Element confirms in the browser, attaching the method to our Stripe customer."""
    client_secret = gateways.stripe_setup_intent_create(organization=access.organization)
    return JsonResponse({"client_secret": client_secret})


@require_POST
@org_page(finances=True)
@admins_post_only
@gateway_is("stripe")
def method_add_stripe(request: HttpRequest, access: OrgAccess) -> HttpResponse:
    """The Payment Element has set the method up; Stripe tells us what it is."""
    form = StripeMethodForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The card details did not reach Stripe: please try again.")
        return _back_to_methods(access)
    try:
        attached = gateways.stripe_method_retrieve(
            organization=access.organization,
            payment_method_id=form.cleaned_data["payment_method_id"],
        )
        method = services.payment_method_add(
            organization=access.organization,
            processor=PaymentMethod.Processor.STRIPE,
            attached=attached,
            make_default=form.cleaned_data["make_default"],
        )
    except BillingError as refused:  # refused by Stripe, or the same card already on file
        messages.error(request, refused.message)
        return _back_to_methods(access)
    _added(request, method)
    return _back_to_methods(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def method_make_default(request: HttpRequest, access: OrgAccess, method_id: int) -> HttpResponse:
    method = services.payment_method_set_default(payment_method=_method_or_404(access, method_id))
    messages.success(
        request, f"{method.label} is now the default: it is charged first for every invoice."
    )
    return _back_to_methods(access)


def _move(request: HttpRequest, access: OrgAccess, method_id: int, step: int) -> HttpResponse:
    method = _method_or_404(access, method_id)
    on_file = selectors.methods_on_file(
        organization=access.organization, today=timezone.now().date()
    )
    order = on_file.order_moving(method.pk, step)
    if order is not None:  # the first backup cannot go up, nor the last one down
        services.payment_method_reorder(organization=access.organization, method_ids=order)
        backups = order[1:] if on_file.default else order
        messages.success(request, f"{method.label} is now backup {backups.index(method.pk) + 1}.")
    return _back_to_methods(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def method_up(request: HttpRequest, access: OrgAccess, method_id: int) -> HttpResponse:
    return _move(request, access, method_id, -1)


@require_POST
@org_page(finances=True)
@admins_post_only
def method_down(request: HttpRequest, access: OrgAccess, method_id: int) -> HttpResponse:
    return _move(request, access, method_id, +1)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def method_edit(request: HttpRequest, access: OrgAccess, method_id: int) -> HttpResponse:
    """Change the expiry or billing address in place; a new number is a new method."""
    method = _method_or_404(access, method_id)
    is_card = method.kind == PaymentMethod.Kind.CARD
    if request.method == "GET":
        initial = model_to_dict(method, fields=BillingDetailsForm.base_fields)
        form = BillingDetailsForm(initial=initial, expiry_required=is_card)
        return _edit_page(request, access, method, form)
    form = BillingDetailsForm(request.POST, expiry_required=is_card)
    if not form.is_valid():
        return _edit_page(request, access, method, form, status=400)
    try:
        services.payment_method_update(
            payment_method=method,
            exp_month=form.cleaned_data.get("exp_month"),
            exp_year=form.cleaned_data.get("exp_year"),
            billing_name=form.cleaned_data["billing_name"],
            billing_address=form.cleaned_data["billing_address"],
            billing_postal_code=form.cleaned_data["billing_postal_code"],
            billing_country=form.cleaned_data["billing_country"],
        )
    except BillingError as refused:
        form.add_error(None, refused.message)
        return _edit_page(request, access, method, form, status=400)
    messages.success(request, f"{method.label} is updated.")
    return _back_to_methods(access)


def _edit_page(request, access, method, form, status=200) -> HttpResponse:
    context = {"method": method, "form": form}
    return render_org_page(request, access, "payments/method_edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@org_page(finances=True)
@admins_post_only
def method_remove(request: HttpRequest, access: OrgAccess, method_id: int) -> HttpResponse:
    """GET asks for confirmation; POST removes the method, unless it is still needed."""
    method = _method_or_404(access, method_id)
    if request.method == "GET":
        context = {"method": method}
        return render_org_page(request, access, "payments/method_remove.html", context)
    try:
        services.payment_method_remove(payment_method=method)
    except BillingError as refused:
        messages.error(request, refused.message)
    else:
        messages.success(
            request, f"{method.label} is removed. Past payments made with it stay in the history."
        )
    return _back_to_methods(access)


@require_POST
@org_page(finances=True)
@admins_post_only
def pay_now(request: HttpRequest, access: OrgAccess, number: str) -> HttpResponse:
    """Charge an open invoice at once: the default method, then the backups."""
    invoice = invoicing_selectors.invoice_for(organization=access.organization, number=number)
    if invoice is None:
        raise Http404("No such invoice.")
    back = redirect("billing:invoice", org_slug=access.organization.slug, number=invoice.number)
    if invoice.status != Invoice.Status.OPEN:
        status = invoice.get_status_display().lower()
        messages.info(request, f"Invoice {invoice.number} is {status}: there is nothing to pay.")
        return back
    now = timezone.now()
    attempt = services.invoice_collect(
        invoice=invoice, now=now, on_request=True, actor=request.user
    )
    if attempt is None:
        reason = selectors.collection_failure_at(invoice=invoice, attempted_at=now)
        messages.error(request, f"Invoice {invoice.number} is not paid. {reason}")
    else:
        # No method: a bank transfer staff recorded while this request waited for the lock.
        paid_with = attempt.payment_method or "a bank transfer"
        messages.success(
            request,
            f"Invoice {invoice.number} is paid: {attempt.amount} from {paid_with}. "
            f"Confirmation number {attempt.processor_reference}.",
        )
    return back
