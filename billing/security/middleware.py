"""Middleware for signed-in sessions: the second factor before any page, and the staff
idle timeout; the browser's middleware, skipped by the platform API; and the
Content-Security-Policy, built once for the platform API's answers."""

from __future__ import annotations

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.exception import convert_exception_to_response
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from billing.security import selectors

# When the staff member's last request came (a Unix timestamp), for the idle timeout.
STAFF_LAST_SEEN = "staff_last_seen"
# How stale the stored time may get before a request writes it again: a session write on
# every request would be a database write on every admin page.
LAST_SEEN_PRECISION_SECONDS = 60


def is_api_request(request) -> bool:
    """A request to the platform API (`API_PATH_PREFIX`)."""
    return request.path_info.startswith(settings.API_PATH_PREFIX)


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


class BrowserMiddleware:
    """`BROWSER_MIDDLEWARE` (sessions, CSRF, signing in and its second factor, messages,
    framing, the history's user, the lockout), in that order, for every path but the
    platform API's (`API_PATH_PREFIX`): its requests carry a bearer token and nothing else,
    and its answers need none of them. Their hooks (`process_view`, `process_exception`,
    `process_template_response`) run as Django runs them when they are in `MIDDLEWARE`."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.view_hooks, self.template_hooks, self.exception_hooks = [], [], []
        handler = get_response
        for path in reversed(settings.BROWSER_MIDDLEWARE):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self.view_hooks.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self.template_hooks.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self.exception_hooks.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self.browser = handler

    def __call__(self, request):
        return self.get_response(request) if is_api_request(request) else self.browser(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_api_request(request):
            return None
        for hook in self.view_hooks:
            if (response := hook(request, view_func, view_args, view_kwargs)) is not None:
                return response
        return None

    def process_template_response(self, request, response):
        if not is_api_request(request):
            for hook in self.template_hooks:
                response = hook(request, response)
        return response

    def process_exception(self, request, exception):
        if is_api_request(request):
            return None
        for hook in self.exception_hooks:
            if (response := hook(request, exception)) is not None:
                return response
        return None


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's, except for the platform API's answers: they carry no nonce (the API
    renders no page) and no view's own policy, so their headers are the settings' policies,
    built once here instead of on every request, where building them cost as much as the
    authorization's query. In development (`DEBUG`) django-csp answers alone, to leave its
    debug pages unconstrained."""

    async_capable = False  # `__call__` is synchronous; under ASGI Django adapts it

    def __init__(self, get_response):
        super().__init__(get_response)
        self.api_policies = None
        if not settings.DEBUG:
            self.api_policies = [
                (header, policy)
                for header, policy in (
                    (HEADER, build_policy()),
                    (HEADER_REPORT_ONLY, build_policy(report_only=True)),
                )
                if policy
            ]

    def __call__(self, request):
        if self.api_policies is None or not is_api_request(request):
            return super().__call__(request)
        response = self.get_response(request)
        for header, policy in self.api_policies:
            if header not in response:
                response[header] = policy
        return response
