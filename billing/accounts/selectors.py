"""Reads about organizations and their people: who may see an organization's billing pages,
and which organizations a person or support staff can open."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Prefetch, Q, Subquery

from billing.models import Membership, Organization, Subscription

# What an organization's administrators change themselves (the billing settings page).
BILLING_DETAILS = (
    "billing_emails",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "tax_id",
)


@dataclass(frozen=True)
class OrgAccess:
    """What a signed-in person may do in one organization's billing pages."""

    organization: Organization
    role: str  # "admin", "member", or "staff" (support staff who are not members)
    subscription_status: str | None = None  # of the live subscription, read with the access
    # Every organization the person belongs to, by name (the page header switches between
    # them), read with the access.
    memberships: tuple[Membership, ...] = ()

    @property
    def in_arrears(self) -> bool:
        return self.subscription_status in (
            Subscription.Status.PAST_DUE,
            Subscription.Status.SUSPENDED,
        )

    @property
    def sees_finances(self) -> bool:
        return self.role in ("admin", "staff")

    @property
    def can_manage(self) -> bool:
        """Changes (plans, payment methods) are for the organization's own administrators."""
        return self.role == "admin"


def _live_status(organization: str) -> Subquery:
    """The status of the live subscription of the organization `organization` refers to."""
    return Subquery(
        Subscription.objects.filter(organization=OuterRef(organization))
        .exclude(status=Subscription.Status.CANCELED)
        .values("status")[:1]
    )


def org_access_for(*, user: AbstractBaseUser, slug: str) -> OrgAccess | None:
    """Who the person is in the organization, with its subscription's status (which every
    page's payment banner needs) and the person's other memberships (the header's), in one
    query; two for support staff who are not members."""
    memberships = tuple(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .annotate(subscription_status=_live_status("organization"))
        .order_by("organization__name")
    )
    membership = next((m for m in memberships if m.organization.slug == slug), None)
    if membership is not None:
        return OrgAccess(
            membership.organization, membership.role, membership.subscription_status, memberships
        )
    if staff_reads_billing(user=user):
        organization = (
            Organization.objects.filter(slug=slug)
            .annotate(subscription_status=_live_status("pk"))
            .first()
        )
        if organization is not None:
            return OrgAccess(organization, "staff", organization.subscription_status, memberships)
    return None


def staff_reads_billing(*, user: AbstractBaseUser) -> bool:
    """Support and Finance read every organization's billing; staff in no such role, none."""
    return user.is_staff and user.has_perm("billing.view_billing")


def memberships_for_user(*, user: AbstractBaseUser) -> list[Membership]:
    return list(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )


ORGANIZATIONS_PAGE_SIZE = 25


def organizations_for_staff(*, query: str, page_number: str | None) -> Page:
    """Support staff's way in: every organization by name, or those whose name or slug holds
    `query`, each with its live subscription (plan and status), a page at a time. Three
    queries whatever the number of organizations."""
    organizations = Organization.objects.order_by("name", "pk").prefetch_related(
        Prefetch(
            "subscriptions",
            queryset=Subscription.objects.exclude(
                status=Subscription.Status.CANCELED
            ).select_related("plan", "organization"),
            to_attr="live_subscriptions",
        )
    )
    if query:
        organizations = organizations.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    return Paginator(organizations, ORGANIZATIONS_PAGE_SIZE).get_page(page_number)


def organization_admins(*, organization: Organization) -> list[AbstractBaseUser]:
    return [
        membership.user
        for membership in organization.memberships.filter(role=Membership.Role.ADMIN)
        .select_related("user")
        .order_by("user__first_name", "user__username")
    ]


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
            for name in BILLING_DETAILS
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
