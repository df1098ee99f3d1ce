"""Revenue metrics and the organization 360 page for support staff: time, and queries as
organizations and their months of history grow."""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bench import bench_pages
from bench.common import Report, best_median_ms, count_queries, progress, sized
from billing.accounts.roles import ROLE_PERMISSIONS, Role
from billing.catalog import services as catalog_services
from billing.lifecycle import revenue
from billing.models import Organization, Plan, Subscription
from billing.subscriptions import services as subscription_services

FEW_ORGANIZATIONS = sized(10, smoke=2)
MANY_ORGANIZATIONS = sized(1_000, smoke=5)
MONTHS_OF_HISTORY = 12


def run(report: Report) -> None:
    progress("loading the plan catalog")
    plans = [plan for plan in catalog_services.catalog_load() if plan.is_public]
    now = timezone.now()
    month = (now - relativedelta(months=1)).date()

    progress(f"seeding {FEW_ORGANIZATIONS} organizations with {MONTHS_OF_HISTORY} months")
    seed_organizations(first=0, count=FEW_ORGANIZATIONS, plans=plans, now=now)
    history_months = bench_pages.HISTORY_MONTHS
    progress(f"giving the organization measured {history_months} months of invoices and calls")
    start = now - relativedelta(months=history_months)
    professional = next(plan for plan in plans if plan.code == "professional-monthly")
    [membership] = bench_pages.seed_organizations(
        first=MANY_ORGANIZATIONS, count=1, plan=professional, start=start
    )
    bench_pages.give_history(
        organization=membership.organization, start=start, months=history_months
    )
    client = finance_client()
    revenue_url = reverse("admin:billing_revenue_metrics") + f"?month={month:%Y-%m}"
    overview_url = reverse("admin:billing_organization_360", args=[membership.organization_id])
    drill_down_url = (
        reverse("admin:billing_revenue_organizations") + f"?month={month:%Y-%m}&figure=net_new"
    )
    get_ok(client, revenue_url)  # the session and the role's permissions, read once
    revenue_few = count_queries(lambda: get_ok(client, revenue_url))
    overview_few = count_queries(lambda: get_ok(client, overview_url))
    drill_down_few = count_queries(lambda: get_ok(client, drill_down_url))

    progress(f"seeding up to {MANY_ORGANIZATIONS} organizations")
    seed_organizations(
        first=FEW_ORGANIZATIONS,
        count=MANY_ORGANIZATIONS - FEW_ORGANIZATIONS,
        plans=plans,
        now=now,
    )
    # The idle timeout's last-seen time is written at most once a minute: a first request
    # after the seeding writes it, so it is not counted against the organizations.
    get_ok(client, revenue_url)
    revenue_many = count_queries(lambda: get_ok(client, revenue_url))
    overview_many = count_queries(lambda: get_ok(client, overview_url))
    drill_down_many = count_queries(lambda: get_ok(client, drill_down_url))

    for name, few, many in (
        ("revenue_page", revenue_few, revenue_many),
        ("organization_360", overview_few, overview_many),
        ("revenue_drill_down", drill_down_few, drill_down_many),
    ):
        report.add(f"{name}_queries_{FEW_ORGANIZATIONS}_orgs", few, "queries", floor=few)
        report.add(f"{name}_queries_{MANY_ORGANIZATIONS}_orgs", many, "queries", floor=few)
        report.add(f"{name}_query_growth", many / few, "x", floor=1.0, goal=1.0)

    # The floor: reading every subscription's id, the least any figure over all of them does.
    progress("timing the month's figures against reading every subscription's id")
    floor_ms = best_median_ms(lambda: list(Subscription.objects.values_list("pk", flat=True)))
    report.add(
        "revenue_report_ms",
        best_median_ms(lambda: revenue.revenue_report(month=month, now=now)),
        "ms",
        floor=floor_ms,
    )
    report.add(
        "revenue_page_ms", best_median_ms(lambda: get_ok(client, revenue_url)), "ms", floor=floor_ms
    )


def finance_client() -> Client:
    """A Finance staff member, signed in with the second factor verified."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    # Each benchmark starts from a flushed database: the role's group is made again.
    finance, _ = Group.objects.get_or_create(name=Role.FINANCE)
    finance.permissions.set(
        Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for app_label, codename in (label.split(".") for label in ROLE_PERMISSIONS[Role.FINANCE])
    )
    user = get_user_model().objects.create(username="bench-finance", is_staff=True)
    user.groups.add(finance)
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def get_ok(client: Client, url: str) -> None:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}, not 200.")


def seed_organizations(*, first: int, count: int, plans: list[Plan], now: dt.datetime) -> None:
    """`count` organizations subscribed through the service over the last months, each on
    one of `plans` in its currency; one in eight ended and one in five fell past due, so the
    history holds every movement. Each subscription in its own transactions, as the service
    takes its row locks in the lock order."""
    numbers = range(first, first + count)
    organizations = Organization.objects.bulk_create(
        Organization(
            name=f"Organization {n:04d}",
            slug=f"org-{n:04d}",
            billing_emails=f"billing@org-{n:04d}.example.com",
            country="US",
            currency=plans[n % len(plans)].currency,
        )
        for n in numbers
    )
    for n, organization in zip(numbers, organizations, strict=True):
        plan = plans[n % len(plans)]
        start = now - relativedelta(months=n % MONTHS_OF_HISTORY, days=n % 27)
        subscription = subscription_services.subscription_create(
            organization=organization, plan=plan, start=start, trial=False, now=start
        )
        later = start + (now - start) / 2
        if n % 8 == 0:
            set_status(subscription, Subscription.Status.CANCELED, later)
        elif n % 5 == 0:
            set_status(subscription, Subscription.Status.PAST_DUE, later)


def set_status(subscription: Subscription, status: str, at: dt.datetime) -> None:
    subscription_services.subscription_set_status(
        subscription=subscription, status=status, reason="benchmark history", now=at
    )
