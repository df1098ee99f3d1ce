"""Reads of the platform's service tokens: the token a request carries and what it reaches."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import NamedTuple

from django.conf import settings
from django.db.models import Exists, OuterRef

from billing.errors import BillingError, ErrorCode
from usage.models import ServiceToken


class ServiceTokenRefused(BillingError):
    """A valid service token that may not be used here: expired (401 `token_expired`), or
    for an organization it does not reach (403 `token_out_of_scope`)."""


class _Recent(NamedTuple):
    read_at: float  # time.monotonic()
    service_token: ServiceToken
    reaches: bool


# Tokens read by this process: (token hash, organization slug) → the token and whether it
# reaches that organization, for `SERVICE_TOKEN_CACHE_SECONDS`. Only tokens found active are
# kept. Revoking forgets a token here at once; other processes forget it within the TTL.
_recent: dict[tuple[str, str | None], _Recent] = {}
_recent_lock = threading.Lock()
RECENT_MAX = 10_000  # emptied when full: each token is read again, once


def _clock() -> float:
    return time.monotonic()


def service_token_for_request(
    *, token: str, organization_slug: str | None, now: dt.datetime
) -> ServiceToken | None:
    """The active (not revoked) token with this secret, or None; in one query, with whether
    it reaches the organization of the request's path, and in none when this process read it
    within `SERVICE_TOKEN_CACHE_SECONDS`. Raises `ServiceTokenRefused` for an expired token
    or an organization outside its scope."""
    token_hash = ServiceToken.hash(token)
    key = (token_hash, organization_slug)
    recent = _recent.get(key)
    if recent is None or _clock() - recent.read_at >= settings.SERVICE_TOKEN_CACHE_SECONDS:
        recent = _token_read(token_hash, organization_slug)
        if recent is None:
            return None
        if settings.SERVICE_TOKEN_CACHE_SECONDS > 0:
            with _recent_lock:
                if len(_recent) >= RECENT_MAX:
                    _recent.clear()
                _recent[key] = recent
    service_token = recent.service_token
    if service_token.expires_at is not None and service_token.expires_at <= now:
        raise ServiceTokenRefused(
            ErrorCode.TOKEN_EXPIRED,
            f"This service token expired at {service_token.expires_at.isoformat()}: ask "
            "for a new one.",
        )
    if organization_slug is not None and not recent.reaches:
        raise _out_of_scope([organization_slug])
    return service_token


def service_token_forget(*, token_hash: str) -> None:
    """Drop what this process keeps of the token (it was revoked)."""
    with _recent_lock:
        for key in [key for key in _recent if key[0] == token_hash]:
            del _recent[key]


def _token_read(token_hash: str, organization_slug: str | None) -> _Recent | None:
    tokens = ServiceToken.objects.filter(token_hash=token_hash, revoked_at__isnull=True).only(
        "pk", "all_organizations", "expires_at"
    )
    if organization_slug is not None:
        tokens = tokens.annotate(
            reaches=Exists(
                ServiceToken.organizations.through.objects.filter(
                    servicetoken=OuterRef("pk"), organization__slug=organization_slug
                )
            )
        )
    service_token = tokens.first()
    if service_token is None:
        return None
    reaches = service_token.all_organizations or bool(getattr(service_token, "reaches", False))
    return _Recent(_clock(), service_token, reaches)


def service_token_check_reach(*, service_token: ServiceToken, organization_slugs: set[str]):
    """Raises `ServiceTokenRefused` unless the token reaches every one of these
    organizations (a batch names them in its body). No query for an all-organizations
    token."""
    if service_token.all_organizations:
        return
    reached = set(
        service_token.organizations.filter(slug__in=organization_slugs).values_list(
            "slug", flat=True
        )
    )
    if outside := sorted(organization_slugs - reached):
        raise _out_of_scope(outside)


def _out_of_scope(slugs: list[str]) -> ServiceTokenRefused:
    return ServiceTokenRefused(
        ErrorCode.TOKEN_OUT_OF_SCOPE,
        f"This service token does not reach {', '.join(map(repr, slugs))}: it reaches only "
        "the organizations it was made for.",
    )
