"""What many test modules share: moments and money written short, the guide's Starter plan
beside the factory's Professional, a subscription made through the service, a renewal run,
an invoice's lines as its reader sees them, a PDF's text, the people pages are tested with,
and what a page told them."""

import datetime as dt
import subprocess
from decimal import Decimal

from django.contrib.messages import get_messages
from djmoney.money import Money

from billing.lifecycle import renewals
from billing.models import Membership, Plan, Subscription
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    sign_in,
)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def usd(amount) -> Money:
    return Money(Decimal(amount), "USD")


# April 2026 has 30 days: its exact middle is 16 Apr 00:00.
APRIL = utc(2026, 4, 1)
MID_APRIL = utc(2026, 4, 16)
MAY = utc(2026, 5, 1)


def starter(**terms) -> Plan:
    """The guide's Starter: $49 a month, 300 minutes, 3 AI employees, 2 numbers (1 free),
    calls refused once the minutes are used."""
    return PlanFactory(
        **{
            "name": "Starter",
            "tier": Plan.Tier.STARTER,
            "price": usd("49.00"),
            "included_call_seconds": 18_000,
            "max_active_employees": 3,
            "max_phone_numbers": 2,
            "free_phone_numbers": 1,
            "overage_policy": Plan.OveragePolicy.BLOCK,
            **terms,
        }
    )


def professional(**terms) -> Plan:
    """The guide's Professional ($199 a month), as the plan factory makes it."""
    return PlanFactory(**terms)


def subscribe(plan=None, organization=None, start=APRIL, *, trial=False):
    """Subscribed through the service on `start` (1 Apr 2026), Acme Dental by default (a UTC
    organization): a paying subscription, whose first invoice is issued then; with `trial`,
    as the pages subscribe, the plan's trial first if it has one."""
    return SubscriptionFactory(
        plan=plan or PlanFactory(),
        organization=organization or OrganizationFactory(name="Acme Dental"),
        start=start,
        trial=trial,
        now=start,
    )


def subscribe_with_trial(plan, organization=None, start=APRIL):
    return subscribe(plan, organization, start, trial=True)


def renew(subscription, now=MAY):
    """Run the renewal job for one subscription, as the schedule does at `now`."""
    return renewals.subscription_renew_if_needed(subscription_id=subscription.pk, now=now)


def subscription_of(organization) -> Subscription:
    """The organization's subscription, unless it was canceled."""
    return Subscription.objects.exclude(status="canceled").get(organization=organization)


def invoice_lines(invoice, kind=None) -> list[tuple[str, Money]]:
    """The invoice's lines (of one `kind`, if given) as description and amount."""
    return [
        (line.description, line.amount) for line in invoice.lines.all() if kind in (None, line.kind)
    ]


def pdf_text(pdf: bytes) -> str:
    """The PDF's text in the order it was drawn, cell after cell of each table row (poppler's
    `pdftotext -raw`), every run of whitespace made one space: a description wrapped in its
    cell reads whole, and a row reads label then amount."""
    command = ["pdftotext", "-raw", "-", "-"]
    text = subprocess.run(command, input=pdf, capture_output=True, check=True).stdout.decode()
    return " ".join(text.split())


def people_of(organization, *, rival=None):
    """The people every page's access is tested with, as usernames to sign in with
    `signed_in`: the organization's `admin` and `member`, `rival_admin` of another
    organization (`rival`, Rival Corp by default) and `support` staff. Returns the rival."""
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    MembershipFactory(
        organization=organization, user=UserFactory(username="member"), role=Membership.Role.MEMBER
    )
    rival = rival or OrganizationFactory(name="Rival Corp", slug="rival")
    MembershipFactory(organization=rival, user=UserFactory(username="rival_admin"))
    StaffFactory(username="support")  # Support: reads every organization's billing
    return rival


def signed_in(client, username):
    """`client`, signed in as `username` (staff with the second factor verified)."""
    return sign_in(client, UserFactory(username=username))


def messages_of(response) -> list[str]:
    """The messages shown once to the person who made the request, as text: on the page
    itself, or on the page a redirect leads to."""
    return [str(message) for message in get_messages(response.wsgi_request)]
