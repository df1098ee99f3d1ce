"""Writes about organizations and their people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from billing.models import Membership, Organization

# Who made a change: a person, or None for the system (a scheduled job, a webhook).
Actor = AbstractBaseUser | None


@transaction.atomic
def organization_create(
    *, name: str, slug: str, billing_emails: str, admin: Actor = None, **details: Any
) -> Organization:
    organization = Organization(name=name, slug=slug, billing_emails=billing_emails, **details)
    organization.full_clean()
    organization.save()
    if admin is not None:
        membership_set(organization=organization, user=admin, role=Membership.Role.ADMIN)
    return organization


def membership_set(*, organization: Organization, user: AbstractBaseUser, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership
