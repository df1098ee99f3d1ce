"""Writes of the platform's service tokens: made by staff in the admin, revoked there."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from billing.errors import BillingError, ErrorCode
from billing.models import Organization
from usage.models import ServiceToken


@transaction.atomic
def service_token_create(
    *,
    name: str,
    all_organizations: bool = False,
    organizations: Sequence[Organization] = (),
    expires_at: dt.datetime | None = None,
    created_by=None,
) -> tuple[ServiceToken, str]:
    """A new platform token, reaching every organization (`all_organizations`, said
    explicitly) or only the `organizations` named, never both and never none; refused from
    `expires_at` on, when given. Returns the token itself, which is not stored and cannot be
    shown again: only its hash is kept."""
    if all_organizations == bool(organizations):
        raise BillingError(ErrorCode.TOKEN_SCOPE_UNCLEAR)
    token = ServiceToken.PREFIX + secrets.token_urlsafe(32)
    service_token = ServiceToken.objects.create(
        name=name,
        token_hash=ServiceToken.hash(token),
        hint=token[:10],
        all_organizations=all_organizations,
        expires_at=expires_at,
        created_by=created_by,
    )
    service_token.organizations.set(organizations)
    return service_token, token


def service_token_revoke(*, service_token: ServiceToken, now: dt.datetime | None = None) -> None:
    ServiceToken.objects.filter(pk=service_token.pk, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now()
    )
