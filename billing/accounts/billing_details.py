"""The billing details an organization's administrators control: the billing contacts (who
receive invoices and notices), the billing address and the tax ID. Every change is recorded
(who, when, what: the organization's history); invoices copy the details when they are
finalized, so a change applies to the invoices finalized after it and never to those before.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from billing.models import Organization

FIELDS = (
    "billing_emails",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "tax_id",
)


def organization_billing_details_update(
    *, organization: Organization, actor: AbstractBaseUser | None, **details: str
) -> Organization:
    """Change the billing details named in `details` (any of `FIELDS`), validated as the
    model validates them, and record who changed them."""
    unknown = set(details) - set(FIELDS)
    if unknown:
        raise TypeError(f"Not billing details: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        organization = Organization.objects.select_for_update().get(pk=organization.pk)
        for name, value in details.items():
            setattr(organization, name, value)
        organization.full_clean()
        organization._history_user = actor
        organization.save(update_fields=list(details))
    return organization


@dataclass(frozen=True)
class DetailsChange:
    changed_at: dt.datetime
    changed_by: str
    fields: list[tuple[str, str, str]]  # label, before, after


def billing_details_changes(*, organization: Organization, limit: int = 20) -> list[DetailsChange]:
    """The latest changes of the billing details, newest first (two queries)."""
    records = list(
        organization.history.select_related("history_user").order_by("-history_date")[: limit + 1]
    )
    changes = []
    for newer, older in itertools.pairwise(records):
        differing = [
            (
                str(Organization._meta.get_field(name).verbose_name).capitalize(),
                getattr(older, name),
                getattr(newer, name),
            )
            for name in FIELDS
            if getattr(older, name) != getattr(newer, name)
        ]
        if differing:
            user = newer.history_user
            changes.append(
                DetailsChange(
                    newer.history_date,
                    (user.get_full_name() or user.username) if user else "Support staff",
                    differing,
                )
            )
    return changes
