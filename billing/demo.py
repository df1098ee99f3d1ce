"""Demo organizations, people and subscriptions for `seed_demo`: enough to click through."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.db import transaction

from billing import catalog, services
from billing.models import Feature, Membership, Organization, Plan, Subscription

DEMO_PASSWORD = "billing-demo"  # noqa: S105 - printed for people to sign in to the demo


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    name: str
    plan_code: str
    timezone: str
    country: str
    city: str
    admin: str
    member: str
    months_ago: int
    anchor_day: int
    payment_terms: str = "automatic"


DEMO_ORGS = [
    DemoOrg(
        "acme-dental",
        "Acme Dental",
        "starter-monthly",
        "America/New_York",
        "US",
        "New York",
        admin="alice",
        member="bob",
        months_ago=5,
        anchor_day=15,
    ),
    DemoOrg(
        "northwind",
        "Northwind Realty",
        "professional-annual",
        "Europe/Berlin",
        "DE",
        "Berlin",
        admin="carol",
        member="dave",
        months_ago=7,
        anchor_day=31,
    ),
    DemoOrg(
        "initech",
        "Initech",
        "enterprise-initech",
        "America/Chicago",
        "US",
        "Austin",
        admin="erin",
        member="frank",
        months_ago=9,
        anchor_day=1,
        payment_terms="invoice",
    ),
]
# People in more than one organization, to show switching between them.
EXTRA_MEMBERSHIPS = [("alice", "northwind", Membership.Role.MEMBER)]


def _user(username: str, *, staff: bool = False):
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={
            "email": f"{username}@example.com",
            "first_name": username.capitalize(),
            "is_staff": staff,
            "is_superuser": staff,
        },
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _start(spec: DemoOrg, now: dt.datetime) -> dt.datetime:
    # relativedelta clamps the day to the month's last, like the billing anchor does.
    return now - relativedelta(months=spec.months_ago) + relativedelta(day=spec.anchor_day)


@transaction.atomic
def _feature_trial_ensure(*, slug: str, code: str, now: dt.datetime) -> None:
    """Support let one organization try a feature its plan lacks (once, for the demo)."""
    organization = Organization.objects.get(slug=slug)
    if not organization.feature_trials.exists():
        services.feature_trial_grant(
            organization=organization,
            feature=Feature.objects.get(code=code),
            days=14,
            note="Evaluating before an upgrade to Business",
            now=now,
        )


def seed_demo(*, now: dt.datetime, say=print) -> list[tuple[str, str, str]]:
    """Create whatever of the demo is missing; returns (login, role, organization) rows."""
    say("Loading the catalog…")
    services.catalog_load()
    logins = [("staff", "support staff (admin site)", "all")]
    _user("staff", staff=True)
    for spec in DEMO_ORGS:
        say(f"Organization {spec.name}…")
        admin, member = _user(spec.admin), _user(spec.member)
        organization = Organization.objects.filter(slug=spec.slug).first()
        if organization is None:
            organization = services.organization_create(
                name=spec.name,
                slug=spec.slug,
                billing_emails=f"billing@{spec.slug}.example.com, {admin.email}",
                address_line1="1 Main Street",
                city=spec.city,
                postal_code="10001",
                country=spec.country,
                timezone=spec.timezone,
                payment_terms=spec.payment_terms,
            )
        services.membership_set(organization=organization, user=admin, role=Membership.Role.ADMIN)
        services.membership_set(organization=organization, user=member, role=Membership.Role.MEMBER)
        if spec.plan_code == catalog.ENTERPRISE_EXAMPLE["code"]:
            terms = {
                k: v for k, v in catalog.ENTERPRISE_EXAMPLE.items() if k != "organization_slug"
            }
            services.plan_ensure(organization=organization, **terms)
        if (
            not Subscription.objects.filter(organization=organization)
            .exclude(status="canceled")
            .exists()
        ):
            # Subscribed back then, before trials: the renewal job brings it up to date with
            # real invoices.
            start = _start(spec, now)
            services.subscription_create(
                organization=organization,
                plan=Plan.objects.filter(code=spec.plan_code).order_by("-version").first(),
                start=start,
                trial=False,
                now=start,
            )
        logins += [(spec.admin, "admin", spec.name), (spec.member, "member", spec.name)]
    _feature_trial_ensure(slug="northwind", code="audit_log", now=now)
    for username, slug, role in EXTRA_MEMBERSHIPS:
        services.membership_set(
            organization=Organization.objects.get(slug=slug), user=_user(username), role=role
        )
    return logins
