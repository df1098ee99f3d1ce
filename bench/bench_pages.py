"""Billing pages as an organization admin sees them: time, and queries as organizations grow;
the upcoming invoice against the overview. The organization measured has a year of history
(monthly invoices, calls each month)."""

from __future__ import annotations

import datetime as dt
import time

from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from bench.common import Report, best_median_ms, count_queries, progress, sized
from billing.catalog import services as catalog_services
from billing.invoicing import services as invoicing_services
from billing.lifecycle import renewals
from billing.models import BalanceEntry, Membership, Organization, Plan
from billing.subscriptions import services as subscription_services
from usage.metering import services as metering
from usage.models import AIEmployee

FEW_ORGANIZATIONS = sized(10, smoke=2)
MANY_ORGANIZATIONS = sized(1_000, smoke=5)
HISTORY_MONTHS = sized(12, smoke=2)


def run(report: Report) -> None:
    progress("loading the plan catalog")
    plan = next(
        plan for plan in catalog_services.catalog_load() if plan.code == "professional-monthly"
    )

    progress(f"seeding {FEW_ORGANIZATIONS} organizations")
    progress(f"giving the organization measured {HISTORY_MONTHS} months of history")
    start = timezone.now() - relativedelta(months=HISTORY_MONTHS)
    membership = seed_organizations(first=0, count=1, plan=plan, start=start)[0]
    give_history(organization=membership.organization, start=start, months=HISTORY_MONTHS)
    seed_organizations(first=1, count=FEW_ORGANIZATIONS - 1, plan=plan)
    client = Client()
    client.force_login(membership.user)
    organization = membership.organization
    overview_url = reverse("billing:overview", args=[organization.slug])
    plans_url = reverse("billing:plans", args=[organization.slug])
    upcoming_url = reverse("usage:upcoming", args=[organization.slug])
    queries_few = count_queries(lambda: get_ok(client, overview_url))

    progress(f"seeding up to {MANY_ORGANIZATIONS} organizations")
    seed_organizations(
        first=FEW_ORGANIZATIONS, count=MANY_ORGANIZATIONS - FEW_ORGANIZATIONS, plan=plan
    )
    queries_many = count_queries(lambda: get_ok(client, overview_url))

    report.add(
        f"overview_queries_{FEW_ORGANIZATIONS}_orgs", queries_few, "queries", floor=queries_few
    )
    report.add(
        f"overview_queries_{MANY_ORGANIZATIONS}_orgs", queries_many, "queries", floor=queries_few
    )
    report.add("overview_query_growth", queries_many / queries_few, "x", floor=1.0, goal=1.0)

    # Timed with all organizations in place. The floor, /healthz on the same client, is a
    # request through the same middleware to a view that does nothing.
    progress("timing /healthz, the overview, upcoming invoice and plans pages")
    healthz_url = reverse("healthz")
    healthz_ms = best_median_ms(lambda: get_ok(client, healthz_url))
    overview_ms = best_median_ms(lambda: get_ok(client, overview_url))
    # The goal: at most thirty times a request that does nothing. In CPU time too: the wall
    # clock of so short a request as /healthz moves most with what else the machine runs.
    report.add("overview_page_ms", overview_ms, "ms", floor=healthz_ms, goal=30 * healthz_ms)
    healthz_cpu_ms = best_median_ms(lambda: get_ok(client, healthz_url), clock=time.process_time)
    report.add(
        "overview_page_cpu_ms",
        best_median_ms(lambda: get_ok(client, overview_url), clock=time.process_time),
        "ms",
        floor=healthz_cpu_ms,
        goal=30 * healthz_cpu_ms,
    )
    # The upcoming invoice prices a whole invoice twice (so far and projected): at most
    # twice the overview's time, which shows it in a panel.
    upcoming_ms = best_median_ms(lambda: get_ok(client, upcoming_url))
    report.add("upcoming_invoice_page_ms", upcoming_ms, "ms", floor=healthz_ms)
    report.add("upcoming_invoice_vs_overview", upcoming_ms / overview_ms, "x", floor=1.0, goal=2.0)
    report.add(
        "plans_page_ms", best_median_ms(lambda: get_ok(client, plans_url)), "ms", floor=healthz_ms
    )


def get_ok(client: Client, url: str) -> None:
    """GET `url`; anything but 200 would time an error page instead of the real one."""
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}, not 200.")


@transaction.atomic
def seed_organizations(
    *, first: int, count: int, plan: Plan, start: dt.datetime | None = None
) -> list[Membership]:
    """`count` organizations, each with its own admin and a live subscription on `plan`
    (from `start`, default now).

    Users, organizations and memberships are plain rows, so they are bulk-created;
    subscriptions go through the service, which computes periods and records history.
    Returns the admin memberships, with their users and organizations loaded.
    """
    user_model = get_user_model()
    numbers = range(first, first + count)
    admins = user_model.objects.bulk_create(
        # An unusable password skips hashing; the benchmark signs in with force_login.
        user_model(
            username=f"admin{n:04d}",
            email=f"admin{n:04d}@example.com",
            password=make_password(None),
        )
        for n in numbers
    )
    organizations = Organization.objects.bulk_create(
        Organization(
            name=f"Organization {n:04d}",
            slug=f"org-{n:04d}",
            billing_emails=f"billing@org-{n:04d}.example.com",
            country="US",
        )
        for n in numbers
    )
    memberships = Membership.objects.bulk_create(
        Membership(user=admin, organization=organization, role=Membership.Role.ADMIN)
        for admin, organization in zip(admins, organizations, strict=True)
    )
    for organization in organizations:
        if start is not None:
            # Credit pays its invoices, so it stays a paying customer through its history.
            invoicing_services.balance_credit_grant(
                organization=organization,
                kind=BalanceEntry.Kind.PROMOTIONAL,
                amount=Money(100_000, organization.currency),
                description="Benchmark history",
                now=start,
            )
        # An organization subscribed a year ago is long past its trial.
        subscription_services.subscription_create(
            organization=organization, plan=plan, start=start, trial=start is None, now=start
        )
    return memberships


def give_history(*, organization: Organization, start: dt.datetime, months: int) -> None:
    """The months since `start`: an hour of calls in each, each renewed as it ended."""
    employee = AIEmployee.objects.create(
        organization=organization, name="Reception", created_at=start
    )
    for month in range(months):
        connected_at = start + relativedelta(months=month) + dt.timedelta(days=1)
        metering.calls_record(
            reports=[
                metering.CallReport(
                    f"history-{month}",
                    organization.slug,
                    employee.pk,
                    "outbound",
                    connected_at,
                    connected_at + dt.timedelta(hours=1),
                )
            ],
            now=connected_at + dt.timedelta(hours=1),
        )
        renewals.renew_subscriptions_if_needed(
            now=min(start + relativedelta(months=month + 1, hours=1), timezone.now())
        )
