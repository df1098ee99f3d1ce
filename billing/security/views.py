"""Pages of the second factor: the code asked after the password, setting up an
authenticator app, recovery codes shown once, and the account's security page."""

from __future__ import annotations

import logging
from base64 import b32encode
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from billing.errors import BillingError
from billing.security import selectors, services
from billing.security.forms import CodeForm

logger = logging.getLogger(__name__)

# The recovery codes just made, kept in the session until the page that shows them once.
RECOVERY_CODES_TO_SHOW = "recovery_codes_to_show"


def second_factor_exempt(view):
    """A page a person whose code is due may open before giving it."""
    view.second_factor_exempt = True
    return view


login = second_factor_exempt(auth_views.LoginView.as_view())
logout = second_factor_exempt(auth_views.LogoutView.as_view())


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """What a sign-in gets while its username and address are locked out (django-axes)."""
    return render(
        request,
        "registration/locked_out.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
            "username": (credentials or {}).get("username") or request.POST.get("username", ""),
        },
        status=429,
    )


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(url: str, request: HttpRequest) -> str:
    return f"{url}?{urlencode({'next': _next_url(request)})}"


@second_factor_exempt
@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The code from the authenticator app, or a recovery code, after the password."""
    user = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    if not selectors.second_factor_enabled(user=user):
        return redirect(_with_next(reverse("security:setup"), request))
    form = CodeForm(request.POST or None)
    if form.is_valid():
        device = services.second_factor_verify(user=user, code=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = selectors.recovery_codes_left(user=user)
                messages.warning(
                    request,
                    f"You used a recovery code: {left} left. Make new ones on your "
                    "account's security page if you are running out.",
                )
            return redirect(_next_url(request))
        logger.warning("Two-factor code refused for %s", user.get_username())
        form.add_error(
            "code",
            "That code is not right, or was used already. After several wrong codes, "
            "wait a little before the next try.",
        )
    return render(
        request, "registration/two_factor_verify.html", {"form": form, "next": _next_url(request)}
    )


@second_factor_exempt
@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the secret), then confirm
    with the code it shows."""
    user = request.user
    if selectors.second_factor_enabled(user=user) and not user.is_verified():
        # A password alone never replaces an authenticator that is already set up.
        return redirect(_with_next(reverse("security:verify"), request))
    device = services.authenticator_start(user=user)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        try:
            codes = services.authenticator_confirm(device=device, code=form.cleaned_data["code"])
        except BillingError as refusal:
            form.add_error("code", refusal.message)
        else:
            otp_login(request, device)
            request.session[selectors.SECOND_FACTOR_DUE] = True
            request.session[RECOVERY_CODES_TO_SHOW] = codes
            return redirect(_with_next(reverse("security:recovery_codes"), request))
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "registration/two_factor_setup.html",
        {
            "form": form,
            "next": _next_url(request),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "otpauth_uri": device.config_url,
            "qr_code": segno.make(device.config_url).svg_inline(
                scale=5, dark="#1c2330", svgclass="qr-code", title="QR code for your app"
            ),
            "required": selectors.second_factor_due(user=user, session=request.session),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """GET: the codes just made, once. POST: new codes, the earlier ones stop working."""
    if request.method == "POST":
        if not request.user.is_verified():
            return redirect(_with_next(reverse("security:verify"), request))
        request.session[RECOVERY_CODES_TO_SHOW] = services.recovery_codes_renew(user=request.user)
        return redirect("security:recovery_codes")
    codes = request.session.pop(RECOVERY_CODES_TO_SHOW, None)
    if codes is None:
        return redirect("security:account")
    return render(
        request, "registration/recovery_codes.html", {"codes": codes, "next": _next_url(request)}
    )


@login_required
@require_http_methods(["GET"])
def account(request: HttpRequest) -> HttpResponse:
    """The account's security page: whether two-factor authentication is on, the recovery
    codes left, and the ways to turn it on or off."""
    user = request.user
    return render(
        request,
        "registration/account_security.html",
        {
            "enabled": selectors.second_factor_enabled(user=user),
            "required": user.is_staff and settings.OTP_REQUIRED_FOR_STAFF,
            "recovery_codes_left": selectors.recovery_codes_left(user=user),
            "form": CodeForm(),
        },
    )


@login_required
@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor authentication off, confirmed with a current code."""
    user = request.user
    if user.is_staff and settings.OTP_REQUIRED_FOR_STAFF:
        messages.error(request, "Staff accounts need two-factor authentication.")
        return redirect("security:account")
    form = CodeForm(request.POST)
    if not (
        form.is_valid() and services.second_factor_verify(user=user, code=form.cleaned_data["code"])
    ):
        messages.error(request, "That code is not right: two-factor authentication is still on.")
        return redirect("security:account")
    services.second_factor_disable(user=user)
    request.session[selectors.SECOND_FACTOR_DUE] = False
    messages.success(request, "Two-factor authentication is off: your password alone signs in.")
    return redirect("security:account")
