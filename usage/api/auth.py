"""The platform API's authentication: a service token in `Authorization: Bearer`."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from usage.models import ServiceToken
from usage.tokens import selectors as token_selectors


class ServiceTokenAuth(HttpBearer):
    """The token, checked against the organization in the path (`{org}`), when there is
    one: an expired token gets 401 `token_expired`, one that does not reach the
    organization 403 `token_out_of_scope`."""

    def __call__(self, request: HttpRequest) -> ServiceToken | None:
        """ninja's reading of the header, from `META`: `request.headers` would first
        gather every header of the request, for this one."""
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ServiceToken | None:
        route = request.resolver_match
        slug = route.kwargs.get("org") if route else None
        # A slug holding NUL names no organization, and PostgreSQL cannot even compare it:
        # the token is checked alone, and the path's own validation refuses it (422).
        if slug is not None and "\x00" in slug:
            slug = None
        return token_selectors.service_token_for_request(
            token=token, organization_slug=slug, now=timezone.now()
        )
