"""The usage page: the allowance left, the projection and the overage, earlier periods,
the charts and their tables, the allowances against the plan, and the way to the page."""

import pytest
from django.urls import reverse

from billing.catalog import services as catalog_services
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from tests.helpers import signed_in, utc
from tests.usage.conftest import subscribe
from usage.metering import services as metering

pytestmark = pytest.mark.django_db


# --- the usage page -----------------------------------------------------------------------


def test_charge_plan_headline_shows_the_allowance_left_then_the_rate(client, acme, now):
    # 1,766 of Professional's 3,000 minutes used this month, by five AI employees at once
    for seconds in (21_600, 21_600, 21_600, 21_600, 19_560):
        record_call(
            employee=EmployeeFactory(organization=acme),
            seconds=seconds,
            connected_at=utc(2026, 3, 16, 0, 10),
        )
    client = signed_in(client, "admin")

    dashboard = client.get(reverse("usage:dashboard", args=["acme"])).content.decode()
    overview = client.get(reverse("billing:overview", args=["acme"])).content.decode()

    assert "No limit" not in dashboard
    assert "1,234 min left <small>of 3,000 included</small>" in dashboard
    assert "Then $0.004/s." in dashboard
    assert (
        "<dt>Call time this month</dt><dd>1,234 min left of 3,000 included, then $0.004/s</dd>"
        in overview
    )


def test_block_plan_shows_the_seconds_and_minutes_left_and_when_calls_would_pause(client, now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    ava = EmployeeFactory(organization=organization)
    # 1,200 s in the 10 hours since 16 Mar began: the rest of the 18,000 s lasts 140 hours more.
    record_call(employee=ava, seconds=1_200, connected_at=utc(2026, 3, 16, 1))

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["tiny"]))
    text = text.content.decode()

    assert "280 min left <small>of 300 included</small>" in text
    assert "Then calls pause until the allowance resets on 16 Apr" in text
    assert "calls pause on <strong>22 Mar, 06:00</strong>" in text
    assert "7% of 18,000 s (300 min)" in text


def test_charge_plan_projects_use_at_the_period_end_and_the_overage_it_would_cost(
    client, acme, now
):
    ava = EmployeeFactory(organization=acme, name="Ava")
    # 3,000 s in the first 10 hours of a 31-day month: 223,200 s by its end at this rate,
    # 43,200 s over the 180,000 s allowance, at $0.004 a second.
    record_call(employee=ava, seconds=3_000, connected_at=utc(2026, 3, 16, 1))

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
    text = text.content.decode()

    assert "223,200 s" in text
    assert "43,200 s (720 min) over the allowance" in text
    assert "<strong>$172.80</strong> in overage" in text


def test_overage_so_far_and_its_cost(client, acme, now):
    ava = EmployeeFactory(organization=acme, name="Ava")
    record_call(employee=ava, seconds=80_000, connected_at=utc(2026, 2, 20, 9))
    record_call(employee=ava, seconds=80_000, connected_at=utc(2026, 2, 25, 9))
    record_call(employee=ava, seconds=30_000, connected_at=utc(2026, 3, 1, 9))

    response = signed_in(client, "admin").get(
        reverse("usage:dashboard", args=["acme"]), {"period": "2026-02-16"}
    )

    text = response.content.decode()
    assert "10,000 s <small>166.7 min</small>" in text  # overage: 190,000 - 180,000
    assert "Costs <strong>$40.00</strong>" in text


def test_an_earlier_period_shows_its_own_numbers(client, acme, now):
    ava = EmployeeFactory(organization=acme, name="Ava", cost_center="Front desk")
    record_call(employee=ava, seconds=2_400, connected_at=utc(2026, 2, 20, 9))
    record_call(employee=ava, seconds=600, connected_at=utc(2026, 3, 16, 1))
    signed_in(client, "admin")
    url = reverse("usage:dashboard", args=["acme"])

    current = client.get(url)
    earlier = client.get(url, {"period": "2026-02-16"})

    assert current.context["dashboard"].summary.call_seconds.used == 600
    assert earlier.context["dashboard"].summary.call_seconds.used == 2_400
    earlier_page = earlier.content.decode()
    assert "usage month 16 Feb – 15 Mar 2026" in earlier_page
    assert "2,400 s <small>40 min</small>" in earlier_page
    assert "earlier usage month" in earlier_page
    assert "Call time left" not in earlier_page
    assert f'href="{url}?period=2026-01-16"' in earlier_page
    assert f'href="{url}?period=2026-03-16"' in earlier_page


@pytest.mark.parametrize("period", ["nonsense", "2026-02-17", "2025-01-16", ""])
def test_an_unknown_period_shows_the_current_one(client, acme, period):
    response = signed_in(client, "admin").get(
        reverse("usage:dashboard", args=["acme"]), {"period": period}
    )

    assert response.status_code == 200
    assert response.context["dashboard"].summary.is_current
    assert "usage month 16 Mar – 15 Apr 2026" in response.content.decode()


def test_usage_is_charted_by_day_week_employee_and_cost_center_with_tables(client, acme, now):
    ava = EmployeeFactory(organization=acme, name="Ava", cost_center="Front desk")
    max_ = EmployeeFactory(organization=acme, name="Max", cost_center="Billing desk")
    record_call(employee=ava, seconds=1_800, connected_at=utc(2026, 3, 16, 1))
    record_call(employee=max_, seconds=600, connected_at=utc(2026, 3, 16, 2))

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
    text = text.content.decode()

    assert text.count('<svg viewBox="0 0') == 4  # the charts (the meters are SVG too)
    assert "Call time by day, 16 Mar – 15 Apr 2026" in text  # the day chart's title
    assert "16 Mar: 1,800 s (30 min)" not in text  # one bar per day, both calls in it
    assert "16 Mar: 2,400 s (40 min)" in text
    assert "16–22 Mar" in text  # first week
    assert "13–15 Apr" in text  # the short last week of a 31-day month
    assert '<th scope="row">Ava</th>' in text
    assert '<th scope="row">Front desk</th>' in text
    assert "75%" in text  # Ava's and the front desk's share


def test_allowances_are_shown_against_the_plan(client, acme, now):
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=acme, name=name)
    EmployeeFactory(organization=acme, name="Dan", is_active=False)
    metering.usage_report_record(
        organization=acme,
        kind="storage",
        report_id="s-1",
        quantity=1_342_177_280,  # 1.25 GiB: 1.25 × 2^30 bytes
        measured_at=now,
    )
    metering.usage_report_record(
        organization=acme, kind="api_calls", report_id="a-1", quantity=1_234, measured_at=now
    )

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["acme"]))
    text = text.content.decode()

    assert "3 of 15 AI employees active" in text
    assert "0 of 10 in use · first 3 free" in text
    assert "1.25 GiB of 50 GiB" in text
    assert " GB" not in text
    assert "1,234 of 100,000 this month" in text


def test_unlimited_plan_says_there_is_no_limit_to_run_out_of(client, now):
    organization = OrganizationFactory(slug="big")
    SubscriptionFactory(
        organization=organization,
        plan=PlanFactory(name="Enterprise", included_call_seconds=None, max_active_employees=None),
        now=now,
    )
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    record_call(
        employee=EmployeeFactory(organization=organization),
        seconds=600,
        connected_at=utc(2026, 3, 16, 1),
    )

    text = signed_in(client, "admin").get(reverse("usage:dashboard", args=["big"]))
    text = text.content.decode()

    assert "No limit" in text
    assert "This plan includes unlimited call time." in text
    assert "Unlimited call time: no overage." in text
    assert "1 AI employee active (no limit)" in text


def test_organization_without_a_subscription_gets_a_friendly_empty_page(client, now):
    membership = MembershipFactory(organization=OrganizationFactory(slug="new"))
    client.force_login(membership.user)

    response = client.get(reverse("usage:dashboard", args=["new"]))

    assert response.status_code == 200
    assert "No usage to show yet" in response.content.decode()
    assert reverse("billing:plans", args=["new"]) in response.content.decode()


def test_admins_find_the_usage_pages_from_the_tabs_and_the_overview(client, acme):
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=acme, name=name)

    overview = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    text = overview.content.decode()
    for name in ("dashboard", "employees", "phone_numbers"):
        # the tab, and the overview's usage card
        assert text.count(f'href="{reverse(f"usage:{name}", args=["acme"])}"') == 2
    assert "3 of 15 AI employees active" in text


def test_members_see_no_usage_tabs(client, acme):
    text = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    assert reverse("usage:dashboard", args=["acme"]) not in text.content.decode()
