"""Changing plans from the pages: the change-plan page with its preview, downgrades over the
new plan's limits, the plans page, a switch during a trial, and what recent usage would
have met on the new plan."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from djmoney.money import Money

from billing.lifecycle import renewals
from billing.models import Plan
from billing.subscriptions import services as subscription_services
from tests.billing.conftest import PAGES, cancel_subscription, professional_with_staff
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from tests.helpers import APRIL, MAY, MID_APRIL, messages_of, signed_in, subscription_of, usd, utc
from usage.models import AIEmployee

pytestmark = pytest.mark.django_db


# --- the change-plan page -----------------------------------------------------------------


def test_upgrade_preview_shows_the_guides_proration_and_the_billing_date_staying(
    client, acme, catalog
):
    # Given Starter ($49) since 1 Apr, at the exact middle of its 30-day period
    client = signed_in(client, "admin")

    # When the admin opens the change to Professional ($199)
    response = client.get(PAGES["plan_change"](acme, catalog))

    # Then the preview shows each proration line with its dates, the net, and when
    assert response.status_code == 200
    preview = response.context["preview"]
    assert [(line.description, line.amount) for line in preview.proration] == [
        ("Unused time on Starter (monthly), 16 Apr – 30 Apr 2026", usd("-24.50")),
        ("Remaining time on Professional (monthly), 16 Apr – 30 Apr 2026", usd("99.50")),
    ]
    page = response.content.decode()
    assert "Upgrade to Professional (Monthly)" in page
    assert "-$24.50" in page
    assert "$99.50" in page
    assert 'Net</th><td class="num">$75.00</td>' in page
    assert "your billing date stays 1 May 2026" in page
    assert "On your next invoice, on 1 May 2026." in page
    assert "Analytics dashboards" in page  # a feature gained
    assert "18,000 s (300 min)" in page and "180,000 s (3,000 min)" in page
    assert "Confirm the upgrade" in page


def test_the_preview_says_when_prorations_are_invoiced_at_once(client, acme, catalog, settings):
    settings.BILLING_INVOICE_PRORATIONS_IMMEDIATELY = True

    page = signed_in(client, "admin").get(PAGES["plan_change"](acme, catalog)).content.decode()

    assert "Invoiced now, on an invoice of its own." in page


def test_confirming_the_upgrade_changes_the_plan_at_once(client, acme, catalog):
    client = signed_in(client, "admin")

    response = client.post(PAGES["plan_change"](acme, catalog), follow=True)

    assert response.redirect_chain == [(reverse("billing:overview", args=[acme.slug]), 302)]
    subscription = subscription_of(acme)
    assert subscription.plan == catalog["professional"]
    assert (subscription.current_period_start, subscription.current_period_end) == (APRIL, MAY)
    assert messages_of(response) == [
        "You are now on Professional: its allowances and features apply from now on. "
        "The proration, $75.00, goes on your next invoice, on 1 May 2026."
    ]
    assert "Professional" in response.content.decode()


def test_downgrade_over_the_new_limits_asks_whom_to_let_go_and_schedules_when_enough_are_chosen(
    client, acme, catalog
):
    # Given Professional with 5 active AI employees and 3 numbers; Starter allows 3 and 2
    employees, numbers = professional_with_staff(acme, catalog, employees=5, numbers=3)
    url = reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk])
    client = signed_in(client, "admin")

    # The preview says when, what is lost, and how many must be chosen
    page = client.get(url).content.decode()
    assert "Downgrade to Starter (Monthly)" in page
    assert (
        "On 1 May 2026</strong>, when your current billing period (1 Apr – 30 Apr 2026) ends"
        in page
    )
    assert "You keep everything Professional includes until then" in page
    assert "Features you lose" in page and "Analytics dashboards" in page
    assert "Choose at least 2." in page
    assert "Choose at least 1." in page
    assert page.count('name="deactivate_employee_ids"') == 5
    assert page.count('name="release_number_ids"') == 3

    # When too few are ticked, the page comes back with the refusal and the ticks kept
    refused = client.post(
        url, {"deactivate_employee_ids": [employees[0].pk], "release_number_ids": [numbers[2].pk]}
    )
    assert refused.status_code == 400
    assert messages_of(refused) == ["Choose 1 more AI employee to deactivate (Starter allows 3)."]
    assert subscription_of(acme).scheduled_plan is None

    # When enough are ticked, the change is scheduled for the end of the period
    response = client.post(
        url,
        {
            "deactivate_employee_ids": [employees[0].pk, employees[1].pk],
            "release_number_ids": [numbers[2].pk],
        },
        follow=True,
    )
    subscription = subscription_of(acme)
    assert (subscription.plan, subscription.scheduled_plan) == (
        catalog["professional"],
        catalog["starter"],
    )
    assert subscription.scheduled_change_at == MAY
    assert messages_of(response) == [
        "Your plan changes to Starter on 1 May 2026. Until then you keep everything "
        "Professional includes."
    ]
    assert AIEmployee.objects.filter(organization=acme, is_active=True).count() == 5


def test_the_over_limits_refusal_keeps_what_was_ticked(client, acme, catalog):
    employees, _ = professional_with_staff(acme, catalog, employees=5)
    url = reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk])

    refused = signed_in(client, "admin").post(url, {"deactivate_employee_ids": [employees[3].pk]})

    assert refused.status_code == 400
    form = refused.context["form"]
    assert form["deactivate_employee_ids"].value() == [str(employees[3].pk)]
    assert f'value="{employees[3].pk}"' in refused.content.decode()
    assert "checked" in refused.content.decode()


def test_a_plan_not_offered_is_not_found(client, acme, catalog):
    private = PlanFactory(is_public=False, organization=OrganizationFactory(), name="Their deal")
    retired = PlanFactory(name="Old", is_available=False)
    euro = PlanFactory(
        name="Euro",
        price=Money(Decimal("199.00"), "EUR"),
        overage_rate_per_second=Money(Decimal("0.004"), "EUR"),
        overage_rate_per_gb=Money(Decimal("0.25"), "EUR"),
        overage_cap=Money(Decimal("500.00"), "EUR"),
    )
    client = signed_in(client, "admin")

    for plan_id in (private.pk, retired.pk, euro.pk, 999_999):
        url = reverse("billing:plan_change", args=[acme.slug, plan_id])
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404


def test_the_current_plan_leads_back_to_the_plans(client, acme, catalog):
    url = reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk])

    response = signed_in(client, "admin").get(url, follow=True)

    assert response.redirect_chain == [(reverse("billing:plans", args=[acme.slug]), 302)]
    assert messages_of(response) == ["Acme Dental is already on Starter."]


def test_a_refused_change_comes_back_with_the_services_message(client, acme, catalog):
    cancel_subscription(acme, catalog)
    client = signed_in(client, "admin")

    page = client.get(PAGES["plan_change"](acme, catalog)).content.decode()
    refused = client.post(PAGES["plan_change"](acme, catalog))

    assert "keep it before changing plans" in page
    assert "Keep my subscription" in page
    assert refused.status_code == 400
    assert messages_of(refused) == [
        "The subscription is set to end with this period: keep it before changing plans."
    ]
    assert subscription_of(acme).plan == catalog["starter"]


# --- the plans page -----------------------------------------------------------------------


def test_plans_page_offers_each_plan_but_the_current_one_to_admins_only(client, acme, catalog):
    url = reverse("billing:plans", args=[acme.slug])
    business = PlanFactory(code="business", name="Business", tier=Plan.Tier.BUSINESS)

    page = signed_in(client, "admin").get(url).content.decode()

    assert reverse("billing:plan_change", args=[acme.slug, catalog["professional"].pk]) in page
    assert reverse("billing:plan_change", args=[acme.slug, business.pk]) in page
    assert reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk]) not in page
    assert "Upgrade<span" in page
    assert "Current plan" in page


def test_plans_page_offers_downgrades_switches_and_subscribing(client, acme, catalog):
    annual_starter = PlanFactory(
        code="starter-annual",
        name="Starter",
        tier=Plan.Tier.STARTER,
        interval=Plan.Interval.YEAR,
        price=usd("499.80"),
    )
    professional_with_staff(acme, catalog, employees=0)
    client = signed_in(client, "admin")
    url = reverse("billing:plans", args=[acme.slug])

    monthly = client.get(url).content.decode()
    annual = client.get(url, {"interval": "year"}).content.decode()
    assert "Downgrade<span" in monthly
    assert "Downgrade<span" in annual  # Starter annual is a lower tier

    subscription_services.subscription_cancel(subscription=subscription_of(acme), reason="Other")
    renewals.subscription_renew_if_needed(subscription_id=subscription_of(acme).pk, now=MAY)
    with time_machine.travel(MAY, tick=False):
        after = signed_in(client, "admin").get(url, {"interval": "year"}).content.decode()

    assert "Subscribe<span" in after
    assert reverse("billing:plan_change", args=[acme.slug, annual_starter.pk]) in after


def test_in_a_trial_every_other_plan_is_a_switch(client, catalog, mid_april):
    trial_plan = PlanFactory(code="pro-trial", trial_days=14)
    membership = MembershipFactory()
    SubscriptionFactory(
        organization=membership.organization, plan=trial_plan, trial=True, now=MID_APRIL
    )
    client.force_login(membership.user)

    page = client.get(reverse("billing:plans", args=[membership.organization.slug])).content
    assert b"Switch<span" in page
    assert b"Upgrade<span" not in page


def test_in_a_trial_changing_plans_switches_at_once_without_proration(client, catalog, mid_april):
    trial_plan = PlanFactory(code="pro-trial", trial_days=14)
    business = PlanFactory(code="business", name="Business", tier=Plan.Tier.BUSINESS)
    membership = MembershipFactory()
    SubscriptionFactory(
        organization=membership.organization, plan=trial_plan, trial=True, now=MID_APRIL
    )
    client.force_login(membership.user)
    url = reverse("billing:plan_change", args=[membership.organization.slug, business.pk])

    page = client.get(url).content.decode()
    response = client.post(url, follow=True)

    assert "Switch to Business (Monthly)" in page
    assert "Your free trial continues on Business until 30 Apr 2026" in page
    assert "What you pay for the rest of this period" not in page
    assert messages_of(response) == [
        "You are now on Business: its allowances and features apply from now on."
    ]
    subscription = subscription_of(membership.organization)
    assert (subscription.plan, subscription.status) == (business, "trialing")


# --- what the last months' usage would have met on the new plan ---------------------------


def test_a_downgrade_preview_warns_what_recent_usage_would_have_met(client, catalog, mid_april):
    # Given Globex on Professional since 1 Mar: 25,000 s of calls in March, 19,000 s so far
    # in April
    globex = OrganizationFactory(slug="globex")
    subscription = SubscriptionFactory(
        organization=globex,
        plan=catalog["professional"],
        start=utc(2026, 3, 1),
        now=utc(2026, 3, 1),
    )
    MembershipFactory(organization=globex, user=UserFactory(username="admin"))
    ava = EmployeeFactory(organization=globex, created_at=utc(2026, 3, 1))
    for day, seconds in ((3, 21_600), (4, 3_400), (33, 19_000)):
        record_call(
            employee=ava, seconds=seconds, connected_at=utc(2026, 3, 1) + dt.timedelta(days=day)
        )
    renewals.subscription_renew_if_needed(
        subscription_id=subscription.pk, now=APRIL
    )  # closes March
    lite = PlanFactory(
        name="Lite", tier=Plan.Tier.STARTER, price=usd("99.00"), included_call_seconds=20_000
    )
    client = signed_in(client, "admin")

    # When the admin previews a change to Starter (calls pause at its 18,000 s)
    to_starter = client.get(reverse("billing:plan_change", args=["globex", catalog["starter"].pk]))
    # or to Lite (20,000 s, then $0.004/s)
    to_lite = client.get(reverse("billing:plan_change", args=["globex", lite.pk]))

    # Then each preview says, month by month, what that usage would have met
    starter_page = " ".join(to_starter.content.decode().split())
    assert "Your recent usage goes past what Starter includes" in starter_page
    assert (
        "<strong>1 Mar – 31 Mar 2026:</strong> 25,000 s (416.7 min) of calls, 7,000 s (116.7 min) "
        "more than the 18,000 s (300 min) Starter includes. On Starter those calls would have "
        "been refused"
    ) in starter_page
    assert "<strong>This month so far (1 Apr – 30 Apr 2026):</strong> 19,000 s" in starter_page
    lite_page = " ".join(to_lite.content.decode().split())
    assert "5,000 s (83.3 min) more than the 20,000 s (333.3 min) Lite includes" in lite_page
    assert "On Lite they would have cost $20.00 in overage" in lite_page
    assert "This month so far" not in lite_page  # 19,000 s fit in Lite


def test_a_change_to_a_plan_the_usage_fits_warns_of_nothing(client, acme, catalog):
    professional_with_staff(acme, catalog, employees=1)

    page = signed_in(client, "admin").get(
        reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk])
    )

    assert page.context["usage_beyond"] == []
    assert "Your recent usage goes past" not in page.content.decode()
