"""Usage alerts: thresholds crossed where usage changes, once per usage period, with one
notice naming every threshold a write crossed; custom thresholds, snoozing, advice after
three periods in a row, and the alert state `calls/authorize` answers with."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from billing.lifecycle import renewals
from billing.models import Notification, Plan
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    sign_in,
)
from usage import selectors, services
from usage.alerts import services as alert_services
from usage.metering import services as metering
from usage.models import UsageAlert
from usage.tokens.services import service_token_create

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def subscribe(plan=None, **organization):
    """Subscribed on 1 Mar 2026: the usage month runs 1 Mar – 31 Mar."""
    subscription = SubscriptionFactory(
        plan=plan or PlanFactory(), start=START, now=START, organization__name="Acme Dental"
    )
    return subscription, EmployeeFactory(organization=subscription.organization)


def calls(employee, *seconds, at=NOW, prefix="c"):
    """Finished calls of these lengths reported in one batch, ending before `at`."""
    reports = [
        metering.CallReport(
            f"{prefix}-{n}",
            employee.organization.slug,
            employee.pk,
            "outbound",
            at - dt.timedelta(hours=n + 1, seconds=length),
            at - dt.timedelta(hours=n + 1),
        )
        for n, length in enumerate(seconds)
    ]
    return metering.calls_record(reports=reports, now=at)


def alerts(organization, metric="call_seconds"):
    return [
        (alert.unit, int(alert.value))
        for alert in UsageAlert.objects.filter(organization=organization, metric=metric).order_by(
            "value"
        )
    ]


def usage_notices(organization):
    return list(Notification.objects.filter(organization=organization, kind="usage_alert"))


# --- crossing the default thresholds -------------------------------------------------------


def test_crossing_half_of_the_call_time_alerts_once_with_the_facts(clock, committed, mailoutbox):
    # Given Professional's 180,000 included seconds, 80,000 used
    subscription, employee = subscribe()
    organization = subscription.organization
    with committed():
        calls(employee, 40_000, 40_000)
    assert alerts(organization) == []

    # When a call takes it to 100,000 seconds (55%), then another to 110,000
    with committed():
        calls(employee, 20_000, prefix="d")
    with committed():
        calls(employee, 10_000, prefix="e")

    # Then the 50% threshold fired once, with one notice saying what, how much, and what next
    assert alerts(organization) == [("percent", 50)]
    [notice] = usage_notices(organization)
    assert notice.title == "Call time: 55% of your allowance used"
    [email] = [mail for mail in mailoutbox if "Call time" in mail.subject]
    assert email.subject == "Call time: 55% of your allowance used – Acme Dental"
    body = email.body
    assert (
        "You have used 1,666 minutes of the 3,000 minutes the Professional plan "
        "includes (55%) in the usage period 1 Mar – 31 Mar 2026." in body
    )
    assert "This crosses your alert threshold at 50%." in body
    assert "At this month's pace the included call time runs out on 28 Mar 2026." in body
    assert "Overage so far: $0.00; projected by the end of the period: $" in body
    assert "Compare plans and preview an upgrade: http" in body
    assert "/billing/org-" in body and "/usage/alerts/" in body


def test_a_batch_crossing_two_thresholds_sends_one_notice_naming_both(clock, committed):
    subscription, employee = subscribe()

    with committed():
        calls(employee, 50_000, 50_000, 40_000)  # 140,000 s: 77%

    assert alerts(subscription.organization) == [("percent", 50), ("percent", 75)]
    [notice] = usage_notices(subscription.organization)
    assert "This crosses your alert thresholds at 50% and 75%." in notice.summary
    assert [t["value"] for t in notice.data["thresholds"]] == ["50", "75"]


def test_a_block_plan_reaching_its_allowance_alerts_then_refuses(clock, committed):
    # Given Starter: 18,000 seconds, calls blocked beyond them
    starter = PlanFactory(
        name="Starter",
        tier=Plan.Tier.STARTER,
        price=Money("49.00", "USD"),
        included_call_seconds=18_000,
        overage_policy=Plan.OveragePolicy.BLOCK,
    )
    subscription, employee = subscribe(starter)
    organization = subscription.organization

    # When calls use all of it
    with committed():
        calls(employee, 9_000, 9_000)

    # Then every threshold up to 100% fired, the notice says calls are now refused...
    assert alerts(organization) == [
        ("percent", 50),
        ("percent", 75),
        ("percent", 90),
        ("percent", 100),
    ]
    [notice] = usage_notices(organization)
    assert "new calls are refused until the period ends on 31 Mar 2026" in notice.summary
    # ...and they are, with the alert state in the answer
    answer = selectors.call_authorize(
        organization_slug=organization.slug, employee_id=employee.pk, now=NOW
    )
    assert (answer.allowed, answer.reason) == (False, "balance_exhausted")
    assert (answer.usage_percent, answer.warning) == (100, "allowance_used")


def test_overage_spend_and_the_cap_alert_on_plans_that_charge_overage(clock, committed):
    # Given $0.004/s beyond 180,000 s, capped at $100 (25,000 s of overage)
    plan = PlanFactory(overage_cap=Money("100.00", "USD"))
    subscription, employee = subscribe(plan)

    # When calls reach 180,000 + 20,000 s: $80 of overage
    with committed():
        calls(employee, 50_000, 50_000, 50_000, 50_000)

    # Then the cap's 50% and 75% fired, and overage reached 40% of the $199 price (none)
    organization = subscription.organization
    assert alerts(organization, "overage_cap") == [("percent", 50), ("percent", 75)]
    assert alerts(organization, "overage_spend") == []
    cap_notice = next(n for n in usage_notices(organization) if n.data["metric"] == "overage_cap")
    assert cap_notice.title == "Overage at 80% of your $100.00 cap"
    answer = selectors.call_authorize(
        organization_slug=organization.slug, employee_id=employee.pk, now=NOW
    )
    assert (answer.allowed, answer.warning, answer.usage_percent) == (True, "overage_cap_near", 111)


def test_the_allowance_used_up_says_the_rate_each_second_beyond_it_costs(
    clock, committed, mailoutbox
):
    # Given Professional's 180,000 included seconds, then $0.004 a second
    _, employee = subscribe()

    # When calls use all of it
    with committed():
        calls(employee, 60_000, 60_000, 60_000)

    # Then the e-mail gives the rate as billed, not rounded to the cent
    [email] = [mail for mail in mailoutbox if "100% of your allowance" in mail.subject]
    assert "each second beyond it is charged at $0.004." in email.body
    assert "$0.004." in email.alternatives[0][0]


def test_ai_employees_and_phone_numbers_alert_as_they_are_added(clock, committed):
    subscription, _ = subscribe(
        PlanFactory(max_active_employees=4, max_phone_numbers=2, free_phone_numbers=1)
    )
    organization = subscription.organization
    PhoneNumberRateFactory()

    with committed():
        services.employee_create(organization=organization, name="Second")  # 2 of 4
        services.phone_number_provision(
            organization=organization, number="+14155550100", number_type="local", country="US"
        )  # 1 of 2

    assert alerts(organization, "active_employees") == [("percent", 50)]
    assert alerts(organization, "phone_numbers") == [("percent", 50)]
    titles = {notice.title for notice in usage_notices(organization)}
    assert titles == {
        "Active AI employees: 50% of your allowance used",
        "Phone numbers: 50% of your allowance used",
    }


def test_storage_alerts_when_the_reported_level_crosses_a_threshold(clock, committed):
    subscription, _ = subscribe(PlanFactory(storage_gb=10))
    organization = subscription.organization

    with committed():
        metering.usage_report_record(
            organization=organization,
            kind="storage",
            report_id="s1",
            quantity=8 * 1024**3,
            measured_at=NOW,
        )

    assert alerts(organization, "storage") == [("percent", 50), ("percent", 75)]


# --- the organization's own thresholds -----------------------------------------------------


def test_a_custom_threshold_in_minutes_fires_and_a_default_switched_off_does_not(clock, committed):
    subscription, employee = subscribe()
    organization = subscription.organization
    alert_services.alert_threshold_add(
        organization=organization, metric="call_seconds", unit="absolute", value=Decimal(1000)
    )
    alert_services.alert_threshold_switch(
        organization=organization,
        metric="call_seconds",
        unit="percent",
        value=Decimal(50),
        enabled=False,
    )

    with committed():
        calls(employee, 50_000, 50_000)  # 1,666 minutes, 55%

    assert alerts(organization) == [("absolute", 1000), ("percent", 50)][:1]
    [notice] = usage_notices(organization)
    assert "This crosses your alert threshold at 1,000 minutes." in notice.summary


def test_a_snoozed_resource_records_its_alerts_without_notices(clock, committed):
    subscription, employee = subscribe()
    organization = subscription.organization
    with committed():
        calls(employee, 50_000, 50_000)  # 55%: one notice
    alert_services.alert_snooze(subscription=subscription, metric="call_seconds", now=NOW)

    with committed():
        calls(employee, 50_000, prefix="d")  # 83%

    assert alerts(organization) == [("percent", 50), ("percent", 75)]
    assert len(usage_notices(organization)) == 1


def test_the_same_threshold_three_periods_in_a_row_suggests_a_plan_that_fits(committed):
    # Given Professional, and a Business plan the organization's months would fit better
    PlanFactory(
        name="Business",
        tier=Plan.Tier.BUSINESS,
        price=Money("799.00", "USD"),
        included_call_seconds=1_200_000,
    )
    subscription, employee = subscribe()
    organization = subscription.organization

    # When 90% is crossed in March, April and May, well into overage each time
    for month in (3, 4, 5):
        moment = dt.datetime(2026, month, 20, tzinfo=dt.UTC)
        with time_machine.travel(moment, tick=False), committed():
            renewals.renew_subscriptions_if_needed(now=moment)
            calls(employee, *[50_000] * 8, at=moment, prefix=f"m{month}")

    # Then May's notice says so, with the plan that fits
    may, april, _ = [n for n in usage_notices(organization) if n.data["metric"] == "call_seconds"]
    assert "This threshold was crossed three usage periods in a row." in may.summary
    assert "The Business plan fits your recent usage better" in may.summary
    assert "three usage periods in a row" not in april.summary


# --- calls/authorize ---------------------------------------------------------------------


def test_authorize_answers_the_alert_state_in_as_many_queries_as_before(clock, committed):
    subscription, employee = subscribe()
    with committed():
        calls(employee, 50_000, 50_000)
    slug = subscription.organization.slug

    with CaptureQueriesContext(connection) as queries:
        answer = selectors.call_authorize(organization_slug=slug, employee_id=employee.pk, now=NOW)

    assert len(queries) == 1
    assert (answer.allowed, answer.usage_percent, answer.warning) == (
        True,
        55,
        "approaching_allowance",
    )


def test_authorize_without_alerts_has_no_warning(clock):
    subscription, employee = subscribe()

    answer = selectors.call_authorize(
        organization_slug=subscription.organization.slug, employee_id=employee.pk, now=NOW
    )

    assert (answer.usage_percent, answer.warning) == (0, None)


# --- the alerts page -----------------------------------------------------------------------


@pytest.fixture
def admin_client(client, clock):
    subscription, employee = subscribe()
    organization = subscription.organization
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    client.force_login(UserFactory(username="admin"))
    client.organization, client.employee = organization, employee
    return client


def test_an_administrator_adds_a_threshold_on_the_alerts_page(admin_client, committed):
    slug = admin_client.organization.slug

    response = admin_client.post(
        reverse("usage:alert_add", args=[slug]),
        {"metric": "call_seconds", "unit": "percent", "value": "30"},
    )

    assert response.status_code == 302
    page = admin_client.get(reverse("usage:alerts", args=[slug])).text
    assert "30%" in page
    with committed():
        calls(admin_client.employee, 60_000)
    assert alerts(admin_client.organization) == [("percent", 30)]


def test_a_default_threshold_is_switched_off_on_the_alerts_page(admin_client):
    slug = admin_client.organization.slug

    admin_client.post(
        reverse("usage:alert_threshold", args=[slug]),
        {"metric": "call_seconds", "unit": "percent", "value": "50", "action": "off"},
    )

    section = admin_client.get(reverse("usage:alerts", args=[slug])).text
    assert "Switch on" in section


@pytest.mark.parametrize(
    ("username", "status"), [("member", 403), ("rival", 404), ("support", 200)]
)
def test_who_sees_the_alerts_page(client, clock, username, status):
    subscription, _ = subscribe()
    organization = subscription.organization
    MembershipFactory(organization=organization, user=UserFactory(username="member"), role="member")
    MembershipFactory(user=UserFactory(username="rival"))
    StaffFactory(username="support")
    sign_in(client, UserFactory(username=username))

    response = client.get(reverse("usage:alerts", args=[organization.slug]))

    assert response.status_code == status


def test_support_staff_cannot_change_thresholds(client, clock):
    subscription, _ = subscribe()
    sign_in(client, StaffFactory(username="support"))

    response = client.post(
        reverse("usage:alert_add", args=[subscription.organization.slug]),
        {"metric": "call_seconds", "unit": "percent", "value": "30"},
    )

    assert response.status_code == 403


# --- the platform API ----------------------------------------------------------------------


def test_the_api_lists_each_metrics_thresholds_and_what_fired_this_month(
    client, clock, committed, django_assert_max_num_queries
):
    subscription, employee = subscribe()
    organization = subscription.organization
    alert_services.alert_threshold_add(
        organization=organization, metric="call_seconds", unit="absolute", value=Decimal(2000)
    )
    with committed():
        calls(employee, 50_000, 50_000)
    _, token = service_token_create(name="platform", organizations=[organization])

    with django_assert_max_num_queries(9):  # whatever the number of thresholds and alerts
        response = client.get(
            f"/api/v1/orgs/{organization.slug}/alerts", HTTP_AUTHORIZATION=f"Bearer {token}"
        )

    assert response.status_code == 200
    body = response.json()
    call_time = next(metric for metric in body["metrics"] if metric["metric"] == "call_seconds")
    assert (call_time["used"], call_time["limit"], call_time["percent"]) == (
        "100000",
        "180000",
        55,
    )
    crossed = {t["value"]: t["crossed_at"] is not None for t in call_time["thresholds"]}
    assert crossed == {
        "50": True,
        "75": False,
        "90": False,
        "100": False,
        "2000": False,
    }
    assert {metric["metric"] for metric in body["metrics"]} == {
        "call_seconds",
        "active_employees",
        "phone_numbers",
        "storage",
        "api_calls",
        "overage_spend",
    }
