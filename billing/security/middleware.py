"""Middleware for signed-in sessions: the second factor before any page, and the staff
idle timeout."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils import timezone

from billing.security import selectors

# When the staff member's last request came (a Unix timestamp), for the idle timeout.
STAFF_LAST_SEEN = "staff_last_seen"
# How stale the stored time may get before a request writes it again: a session write on
# every request would be a database write on every admin page.
LAST_SEEN_PRECISION_SECONDS = 60


class SecondFactorMiddleware:
    """Until the second factor is verified, a person whose code is due (staff, or whoever
    turned two-factor authentication on) reaches only the pages that ask for it (views
    marked `second_factor_exempt`: the code, setting up an authenticator, signing in and
    out); every other page sends them there and back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "second_factor_exempt", False):
            return None
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if not selectors.second_factor_due(user=user, session=request.session):
            return None
        return redirect_to_login(request.get_full_path(), reverse("security:verify"))


class StaffIdleTimeoutMiddleware:
    """Staff sessions end after STAFF_IDLE_TIMEOUT_MINUTES without a request; each request
    moves the deadline (to within a minute). Organization users are left alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and user.is_staff:
            now = timezone.now().timestamp()
            last_seen = request.session.get(STAFF_LAST_SEEN, now)
            if now - last_seen > settings.STAFF_IDLE_TIMEOUT_MINUTES * 60:
                logout(request)
                messages.info(
                    request,
                    f"You were signed out after {settings.STAFF_IDLE_TIMEOUT_MINUTES} minutes "
                    "without activity. Sign in again to go on.",
                )
                return redirect_to_login(request.get_full_path())
            if now - last_seen >= LAST_SEEN_PRECISION_SECONDS or STAFF_LAST_SEEN not in (
                request.session
            ):
                request.session[STAFF_LAST_SEEN] = now
        return self.get_response(request)
