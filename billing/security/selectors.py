"""Reads for signing in: whose second factor is due, and what a person has set up."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

# Set in the session at sign-in: this person turned on two-factor authentication, so a code
# is asked before any page.
SECOND_FACTOR_DUE = "second_factor_due"


def client_address(request: HttpRequest) -> str | None:
    """The address sign-in throttling counts: the connection's, or behind
    TRUSTED_PROXY_COUNT proxies the one the outermost proxy saw (each proxy appends the
    address it was connected from to X-Forwarded-For, so only the last entries can be
    trusted; the ones before them are whatever the client sent)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def second_factor_enabled(*, user) -> bool:
    """Whether the person has a confirmed authenticator app."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_due(*, user, session) -> bool:
    """Whether a signed-in person must give a code before any page: staff always (while
    OTP_REQUIRED_FOR_STAFF), anyone else once they turned two-factor authentication on."""
    if user.is_staff and settings.OTP_REQUIRED_FOR_STAFF:
        return True
    return bool(session.get(SECOND_FACTOR_DUE))


def authenticator_pending(*, user) -> TOTPDevice | None:
    """The authenticator being set up: made, not yet confirmed with a code."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def recovery_codes_left(*, user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
