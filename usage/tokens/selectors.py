"""Reads of the platform's service tokens: the token a request carries and what it reaches."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef

from billing.errors import BillingError, ErrorCode
from usage.models import ServiceToken


class ServiceTokenRefused(BillingError):
    """A valid service token that may not be used here: expired (401 `token_expired`), or
    for an organization it does not reach (403 `token_out_of_scope`)."""


def service_token_for_request(
    *, token: str, organization_slug: str | None, now: dt.datetime
) -> ServiceToken | None:
    """The active (not revoked) token with this secret, or None; in one query, with whether
    it reaches the organization of the request's path. Raises `ServiceTokenRefused` for an
    expired token or an organization outside its scope."""
    tokens = ServiceToken.objects.filter(
        token_hash=ServiceToken.hash(token), revoked_at__isnull=True
    ).only("pk", "all_organizations", "expires_at")
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
    if service_token.expires_at is not None and service_token.expires_at <= now:
        raise ServiceTokenRefused(
            ErrorCode.TOKEN_EXPIRED,
            f"This service token expired at {service_token.expires_at.isoformat()}: ask "
            "for a new one.",
        )
    if organization_slug is not None and not (
        service_token.all_organizations or service_token.reaches
    ):
        raise _out_of_scope([organization_slug])
    return service_token


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
