"""Reads about organizations and their people: who may see an organization's billing pages,
and which organizations a person or support staff can open."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Page, Paginator
from django.db.models import OuterRef, Prefetch, Q, Subquery

from billing.models import Membership, Organization, Subscription


@dataclass(frozen=True)
class OrgAccess:
    """What a signed-in person may do in one organization's billing pages."""

    organization: Organization
    role: str  # "admin", "member", or "staff" (support staff who are not members)
    subscription_status: str | None = None  # of the live subscription, read with the access

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
    page's payment banner needs), in one query."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=slug)
        .annotate(subscription_status=_live_status("organization"))
        .first()
    )
    if membership is not None:
        return OrgAccess(membership.organization, membership.role, membership.subscription_status)
    if user.is_staff:
        organization = (
            Organization.objects.filter(slug=slug)
            .annotate(subscription_status=_live_status("pk"))
            .first()
        )
        if organization is not None:
            return OrgAccess(organization, "staff", organization.subscription_status)
    return None


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
