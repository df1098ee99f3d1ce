"""Writes about organizations and their people."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from billing.accounts.roles import Role, roles_granting
from billing.accounts.selectors import BILLING_DETAILS
from billing.errors import BillingError, ErrorCode
from billing.locks import organization_lock
from billing.models import Membership, Organization

# Who made a change: a person, or None for the system (a scheduled job, a webhook).
Actor = AbstractBaseUser | None


def role_require(
    *, actor: Actor, permission: str, action: str, organization_id: int | None = None
) -> None:
    """Refuse `action` ("Voiding an invoice") unless `actor` may take it: the system (None, a
    job) always may; staff need `permission` ("app.codename") through their role; with
    `organization_id`, its own administrators may too (the customer's self-service pages).
    The refusal names the roles that would allow it."""
    if actor is None:
        return
    if actor.is_active and actor.is_staff and actor.has_perm(permission):
        return
    if (
        organization_id is not None
        and Membership.objects.filter(
            user=actor, organization_id=organization_id, role=Membership.Role.ADMIN
        ).exists()
    ):
        return
    raise BillingError(ErrorCode.ROLE_REQUIRED, f"{action} needs {_roles_named(permission)}.")


def _roles_named(permission: str) -> str:
    roles = roles_granting(permission)
    if not roles:
        return "a superuser"
    # Finance holds every Support permission: naming Support is enough.
    if Role.SUPPORT in roles:
        roles = [Role.SUPPORT]
    return " or ".join(f"the {role} role" for role in roles)


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


def organization_billing_details_update(
    *, organization: Organization, actor: Actor, **details: str
) -> Organization:
    """Change the billing details named in `details` (any of `BILLING_DETAILS`: the billing
    contacts, address and tax ID), validated as the model validates them, and record who
    changed them (the organization's history). Invoices copy them when finalized, so the
    change applies to invoices finalized afterwards and never to those before."""
    unknown = set(details) - set(BILLING_DETAILS)
    if unknown:
        raise TypeError(f"Not billing details: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        organization = organization_lock().get(pk=organization.pk)
        for name, value in details.items():
            setattr(organization, name, value)
        organization.full_clean()
        organization._history_user = actor
        organization.save(update_fields=list(details))
    return organization
