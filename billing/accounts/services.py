"""Writes about organizations and their people."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from billing.accounts.roles import Role, roles_granting
from billing.accounts.selectors import BILLING_DETAILS
from billing.errors import BillingError, ErrorCode
from billing.locks import organization_lock
from billing.models import AuditEntry, Membership, Organization

# Who made a change: a person, or None for the system (a scheduled job, a webhook).
Actor = AbstractBaseUser | None


def staff_action_begin(
    *,
    actor: Actor,
    permission: str,
    action: str,
    subject: Model,
    organization_id: int | None = None,
    admins_may: bool = False,
    reason: str = "",
    changes: dict[str, Any] | None = None,
    audited: bool = True,
) -> None:
    """Refuse `action` ("Voiding an invoice") on `subject` unless `actor` may take it, and
    record it in the audit log when staff take it (unless not `audited`: nothing changed).

    The system (None: a job, a webhook) always may; staff need `permission` ("app.codename")
    through their role; with `admins_may`, the administrators of `organization_id` may too
    (the customer's own pages). The refusal names the roles that would allow it. The audit
    entry is written in the caller's transaction: an action that fails leaves none."""
    if actor is None:
        return
    if actor.is_active and actor.is_staff and actor.has_perm(permission):
        if not audited:
            return
        audit_record(
            actor=actor,
            action=action,
            subject=subject,
            organization_id=organization_id,
            reason=reason,
            changes=changes,
        )
        return
    if (
        admins_may
        and organization_id is not None
        and Membership.objects.filter(
            user=actor, organization_id=organization_id, role=Membership.Role.ADMIN
        ).exists()
    ):
        return
    raise BillingError(ErrorCode.ROLE_REQUIRED, f"{action} needs {_roles_named(permission)}.")


def staff_record_save(*, record: Model, actor: Actor, changes: dict[str, Any]) -> Model:
    """Save a record staff edit field by field (a plan, a feature, a coupon, a tax rate, a
    number price): refused unless `actor`'s role may add or change that kind of record,
    recorded in the audit log with `changes` ({field: [before, after]})."""
    opts = record._meta
    adding = record._state.adding
    # Saved first so that an added record's entry names it; a refusal undoes the save.
    with transaction.atomic():
        record.save()
        staff_action_begin(
            actor=actor,
            permission=f"{opts.app_label}.{'add' if adding else 'change'}_{opts.model_name}",
            action=f"{'Adding' if adding else 'Changing'} a {opts.verbose_name}",
            subject=record,
            organization_id=getattr(record, "organization_id", None),
            changes=changes,
            audited=adding or bool(changes),
        )
    return record


def audit_record(
    *,
    actor: AbstractBaseUser,
    action: str,
    subject: Model,
    organization_id: int | None = None,
    reason: str = "",
    changes: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AuditEntry:
    """Append what a staff member did to `subject` to the audit log. `changes` maps a field
    to its [before, after] (or a fact of the action to its value); both are kept as text."""
    return AuditEntry.objects.create(
        at=now or timezone.now(),
        actor=actor,
        actor_name=actor.get_username(),
        action=action,
        organization_id=organization_id,
        object_type=subject._meta.label_lower,
        object_id=str(subject.pk or ""),
        object_repr=str(subject)[:200],
        changes={
            str(name): [_text(value) for value in value]
            if isinstance(value, list | tuple)
            else _text(value)
            for name, value in (changes or {}).items()
        },
        reason=reason,
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


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
