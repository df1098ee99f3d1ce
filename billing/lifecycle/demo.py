"""Demo organizations, people and subscriptions for `seed_demo`: enough to click through."""

from __future__ import annotations

import datetime as dt
from base64 import b32decode
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice
from djmoney.money import Money

from billing.accounts import services as account_services
from billing.accounts.roles import Role
from billing.catalog import definitions
from billing.catalog import services as catalog_services
from billing.invoicing import services as invoicing_services
from billing.lifecycle.renewals import RENEWING, renew_subscriptions_if_needed
from billing.models import (
    BalanceEntry,
    Coupon,
    Feature,
    InvoiceLine,
    Membership,
    Organization,
    Plan,
    Subscription,
    TaxRate,
)
from billing.money import round_money
from billing.subscriptions import services as subscription_services
from billing.support import services as support_services

DEMO_PASSWORD = "billing-demo"  # noqa: S105 - printed for people to sign in to the demo
# The demo staff logins' authenticator secret (one for all of them) (base32), printed in the README: staff give a
# code after the password, and anyone trying the demo can add this secret to an
# authenticator app or ask `manage.py demo_totp_code` for the current code.
DEMO_TOTP_SECRET = "DEMOSTAFFBILLINGDEMOSTAFFBILLING"  # noqa: S105 - public, demo only
DEMO_TOTP_KEY = b32decode(DEMO_TOTP_SECRET).hex()


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
    region: str = ""


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
        region="NY",
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

# (name, country, region, percentage): New York's sales tax on every charge, so Acme
# Dental's invoices show a tax line.
DEMO_TAX_RATES = [("New York sales tax", "US", "NY", Decimal("8.875"))]


@dataclass(frozen=True)
class DemoDiscount:
    """A coupon support gave an organization some days after it subscribed: it discounts the
    invoices issued from then on."""

    slug: str
    code: str
    name: str
    percent_off: Decimal
    periods: int
    on_day: int


@dataclass(frozen=True)
class DemoCredit:
    """Credit support granted some days after the organization subscribed: it pays the next
    invoice, after tax."""

    slug: str
    amount: Decimal
    description: str
    on_day: int


# Both given in the first month, so the second invoice shows them.
DEMO_DISCOUNTS = [
    DemoDiscount("acme-dental", "welcome-20", "Welcome offer", Decimal("20"), 2, on_day=10)
]
DEMO_CREDITS = [
    DemoCredit(
        "acme-dental",
        Decimal("30.00"),
        "Goodwill: calls could not connect for two hours",
        on_day=20,
    )
]
# The renewal job runs every five minutes: the demo's past periods are renewed as it would
# have renewed them, so every invoice carries the day it would have been issued.
RENEWAL_JOB_DELAY = dt.timedelta(minutes=5)


# The staff logins: a superuser, and one person in each role.
DEMO_STAFF = [
    ("staff", None, "superuser: the whole admin, users and groups, the task queue"),
    ("support", Role.SUPPORT, "Support: reads every organization, retries, trials, resends"),
    ("finance", Role.FINANCE, "Finance: Support plus credit notes, credits, refunds, voids"),
    ("catalog", Role.CATALOG, "Catalog: plans, versions, features, the number price list"),
]


def _user(username: str, *, staff: bool = False, superuser: bool = False):
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={
            "email": f"{username}@example.com",
            "first_name": username.capitalize(),
            "is_staff": staff,
            "is_superuser": superuser,
        },
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


def _staff_ensure(username: str, role: Role | None):
    user = _user(username, staff=True, superuser=role is None)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    _demo_authenticator_ensure(user)


def _demo_authenticator_ensure(user) -> None:
    TOTPDevice.objects.get_or_create(
        user=user,
        key=DEMO_TOTP_KEY,
        defaults={"name": "Demo authenticator", "confirmed": True},
    )


def _start(spec: DemoOrg, now: dt.datetime) -> dt.datetime:
    """Ten in the morning, local time, on the anchor day `months_ago` months back
    (relativedelta clamps the day to the month's last, like the billing anchor does)."""
    local = now.astimezone(ZoneInfo(spec.timezone))
    start = local - relativedelta(months=spec.months_ago) + relativedelta(day=spec.anchor_day)
    return start.replace(hour=10, minute=0, second=0, microsecond=0)


@transaction.atomic
def _feature_trial_ensure(*, slug: str, code: str, now: dt.datetime) -> None:
    """Support let one organization try a feature its plan lacks (once, for the demo)."""
    organization = Organization.objects.get(slug=slug)
    if not organization.feature_trials.exists():
        catalog_services.feature_trial_grant(
            organization=organization,
            feature=Feature.objects.get(code=code),
            days=14,
            note="Evaluating before an upgrade to Business",
            now=now,
        )


def _tax_rates_ensure() -> None:
    for name, country, region, percentage in DEMO_TAX_RATES:
        TaxRate.objects.get_or_create(
            name=name,
            country=country,
            region=region,
            defaults={"percentage": percentage, "applies_to": list(InvoiceLine.CHARGES)},
        )


def _day_after_start(subscription: Subscription, day: int, now: dt.datetime) -> dt.datetime:
    """Ten in the morning, local time, `day` days after the subscription began; never after
    `now`."""
    local = subscription.anchor.astimezone(subscription.tzinfo) + dt.timedelta(days=day, hours=10)
    return min(local.astimezone(dt.UTC), now)


def _discounts_and_credits_ensure(subscription: Subscription, now: dt.datetime) -> None:
    organization = subscription.organization
    for discount in DEMO_DISCOUNTS:
        if discount.slug != organization.slug or organization.discounts.exists():
            continue
        coupon, _ = Coupon.objects.get_or_create(
            code=discount.code,
            defaults={
                "name": discount.name,
                "percent_off": discount.percent_off,
                "duration": Coupon.Duration.REPEATING,
                "duration_in_periods": discount.periods,
            },
        )
        invoicing_services.discount_apply(
            organization=organization,
            coupon=coupon,
            now=_day_after_start(subscription, discount.on_day, now),
        )
    for credit in DEMO_CREDITS:
        if credit.slug != organization.slug:
            continue
        if organization.balance_entries.filter(kind=BalanceEntry.Kind.GOODWILL).exists():
            continue
        invoicing_services.balance_credit_grant(
            organization=organization,
            kind=BalanceEntry.Kind.GOODWILL,
            amount=Money(credit.amount, organization.currency),
            description=credit.description,
            now=_day_after_start(subscription, credit.on_day, now),
        )


def billing_request_demo_ensure(*, now: dt.datetime) -> None:
    """Once its invoices are issued: Northwind's administrator questions part of its call overage; billing support has
    answered, and the decision is left to staff in the admin."""
    line = (
        InvoiceLine.objects.filter(
            invoice__organization__slug="northwind", kind=InvoiceLine.Kind.OVERAGE_CALLS
        )
        .select_related("invoice__organization")
        .order_by("-invoice__issued_at")
        .first()
    )
    if line is None or line.billing_requests.exists():
        return
    asked_at = min(line.invoice.issued_at + dt.timedelta(days=2), now)
    request = support_services.billing_request_open(
        organization=line.invoice.organization,
        kind="dispute",
        body="Our office was closed that week: could half of these calls be robocalls?",
        actor=_user("carol"),
        invoice=line.invoice,
        line=line,
        amount=round_money(line.amount / 2),
        now=asked_at,
    )
    support_services.billing_request_reply(
        request=request,
        author=_user("staff", staff=True),
        body="We are checking the call logs of that week with the carrier.",
        kind="staff",
        now=min(asked_at + dt.timedelta(hours=3), now),
    )


def renewals_replay(*, now: dt.datetime) -> int:
    """Renew the periods that ended before `now`, each a few minutes after its end, as the
    renewal job would have; returns how many invoices were issued."""
    issued, previous_run = 0, None
    while True:
        ends = [
            min(subscription.current_period_end, subscription.usage_period_end)
            for subscription in Subscription.objects.filter(status__in=RENEWING)
        ]
        ran_at = min((end + RENEWAL_JOB_DELAY for end in ends), default=now)
        if ran_at >= now or ran_at == previous_run:  # caught up (or nothing more renews)
            return issued + renew_subscriptions_if_needed(now=now)
        issued += renew_subscriptions_if_needed(now=ran_at)
        previous_run = ran_at


def seed_demo(
    *, now: dt.datetime, say=print, usage_seed: Callable[[], None] = lambda: None
) -> list[tuple[str, str, str]]:
    """Create whatever of the demo is missing; returns (login, role, organization) rows.

    Subscriptions begin in the order they did, each after the renewals of the others up to
    that day, so invoice numbers follow the dates; `usage_seed` then gives the new one its AI
    employees, numbers and calls, before any of its usage months is closed."""
    say("Loading the catalog…")
    catalog_services.catalog_load()
    _tax_rates_ensure()
    logins = []
    for username, role, who in DEMO_STAFF:
        _staff_ensure(username, role)
        logins.append((username, f"{who} (admin site, 2FA)", "all"))
    for spec in DEMO_ORGS:
        say(f"Organization {spec.name}…")
        admin, member = _user(spec.admin), _user(spec.member)
        organization = Organization.objects.filter(slug=spec.slug).first()
        if organization is None:
            organization = account_services.organization_create(
                name=spec.name,
                slug=spec.slug,
                billing_emails=f"billing@{spec.slug}.example.com, {admin.email}",
                address_line1="1 Main Street",
                city=spec.city,
                postal_code="10001",
                country=spec.country,
                timezone=spec.timezone,
                payment_terms=spec.payment_terms,
                region=spec.region,
            )
        account_services.membership_set(
            organization=organization, user=admin, role=Membership.Role.ADMIN
        )
        account_services.membership_set(
            organization=organization, user=member, role=Membership.Role.MEMBER
        )
        if spec.plan_code == definitions.ENTERPRISE_EXAMPLE["code"]:
            terms = {
                k: v for k, v in definitions.ENTERPRISE_EXAMPLE.items() if k != "organization_slug"
            }
            catalog_services.plan_ensure(organization=organization, **terms)
        logins += [(spec.admin, "admin", spec.name), (spec.member, "member", spec.name)]
    for spec in sorted(DEMO_ORGS, key=lambda spec: _start(spec, now)):
        organization = Organization.objects.get(slug=spec.slug)
        if organization.subscriptions.exclude(status=Subscription.Status.CANCELED).exists():
            continue
        start = _start(spec, now)
        say(f"{spec.name} subscribes on {start:%-d %b %Y}…")
        renewals_replay(now=start)
        # Subscribed back then, before trials: the renewal job brings it up to date with
        # real invoices.
        subscription = subscription_services.subscription_create(
            organization=organization,
            plan=Plan.objects.filter(code=spec.plan_code).order_by("-version").first(),
            start=start,
            trial=False,
            now=start,
        )
        usage_seed()
        _discounts_and_credits_ensure(subscription, now)
    _feature_trial_ensure(slug="northwind", code="audit_log", now=now)
    for username, slug, role in EXTRA_MEMBERSHIPS:
        account_services.membership_set(
            organization=Organization.objects.get(slug=slug), user=_user(username), role=role
        )
    return logins
