"""The pages of the subscription lifecycle: changing plans (with the preview), subscribing
again, the scheduled-change and cancellation panels, cancelling and keeping the subscription."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from djmoney.money import Money

from billing.lifecycle import services as lifecycle_services
from billing.models import Plan, Subscription
from billing.subscriptions import services as subscription_services
from tests.factories import (
    EmployeeFactory,
    FeatureFactory,
    MembershipFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    record_call,
)
from tests.helpers import APRIL, MAY, MID_APRIL, people_of, signed_in, starter, usd, utc
from usage import services as usage_services
from usage.models import AIEmployee

pytestmark = pytest.mark.django_db


@pytest.fixture
def mid_april():
    with time_machine.travel(MID_APRIL, tick=False):
        yield MID_APRIL


@pytest.fixture
def catalog():
    """Starter $49 and Professional $199, monthly, with a feature only Professional has."""
    analytics = FeatureFactory(code="analytics", name="Analytics dashboards")
    calling = FeatureFactory(code="calling", name="Core calling")
    starter_plan = starter(code="starter")
    starter_plan.features.set([calling])
    professional = PlanFactory(code="professional")
    professional.features.set([calling, analytics])
    return {"starter": starter_plan, "professional": professional}


@pytest.fixture
def acme(catalog, mid_april):
    """Acme on Starter since 1 Apr, with an admin, a member, a rival organization's admin
    and support staff."""
    organization = OrganizationFactory(
        name="Acme Dental", slug="acme", billing_emails="ap@acme.example.com"
    )
    SubscriptionFactory(organization=organization, plan=catalog["starter"], start=APRIL, now=APRIL)
    people_of(organization)
    return organization


def subscription_of(organization):
    return Subscription.objects.exclude(status="canceled").get(organization=organization)


def texts(response):
    return [str(message) for message in response.context["messages"]]


# --- who may do what ----------------------------------------------------------------------


def _schedule_downgrade(acme, catalog):
    subscription = subscription_of(acme)
    lifecycle_services.subscription_plan_change(
        subscription=subscription, plan=catalog["professional"]
    )
    lifecycle_services.subscription_plan_change(
        subscription=subscription_of(acme), plan=catalog["starter"], now=MID_APRIL
    )


def _cancel(acme, catalog):
    subscription_services.subscription_cancel(
        subscription=subscription_of(acme), reason="Too expensive"
    )


PAGES = {
    "plan_change": lambda acme, catalog: reverse(
        "billing:plan_change", args=[acme.slug, catalog["professional"].pk]
    ),
    "cancel": lambda acme, catalog: reverse("billing:cancel", args=[acme.slug]),
}

# Each action: its URL, what it is sent, and what must be true for an admin's POST to work.
ACTIONS = {
    "plan_change": (PAGES["plan_change"], {}, None),
    "cancel": (PAGES["cancel"], {"reason": "too_expensive"}, None),
    "scheduled_change_cancel": (
        lambda acme, catalog: reverse("billing:scheduled_change_cancel", args=[acme.slug]),
        {},
        _schedule_downgrade,
    ),
    "reactivate": (
        lambda acme, catalog: reverse("billing:reactivate", args=[acme.slug]),
        {},
        _cancel,
    ),
}


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, acme, catalog, name):
    url = PAGES[name](acme, catalog)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_action(client, acme, catalog, name):
    url, data, _ = ACTIONS[name]

    response = client.post(url(acme, catalog), data)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("support", 200), ("admin", 200)],
)
def test_page_access_matrix(client, acme, catalog, name, username, status):
    response = signed_in(client, username).get(PAGES[name](acme, catalog))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("support", 403), ("admin", 302)],
)
def test_action_access_matrix(client, acme, catalog, name, username, status):
    url, data, prepare = ACTIONS[name]
    if prepare:
        prepare(acme, catalog)
    before = Subscription.objects.values().get(pk=subscription_of(acme).pk)

    response = signed_in(client, username).post(url(acme, catalog), data)

    assert response.status_code == status
    after = Subscription.objects.values().get(pk=before["id"])
    assert (after == before) == (status != 302)


def test_staff_who_post_anyway_are_told_changes_are_for_administrators(client, acme, catalog):
    response = signed_in(client, "support").post(
        PAGES["cancel"](acme, catalog), {"reason": "other"}
    )

    assert response.status_code == 403
    assert "Only administrators can make changes" in response.content.decode()


def test_staff_see_the_pages_without_the_buttons_that_would_change_anything(client, acme, catalog):
    client = signed_in(client, "support")

    preview = client.get(PAGES["plan_change"](acme, catalog)).content.decode()
    cancel = client.get(PAGES["cancel"](acme, catalog)).content.decode()
    plans = client.get(reverse("billing:plans", args=[acme.slug])).content.decode()
    overview = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()

    assert "Net" in preview
    assert '<form method="post" class="plan-change-form">' not in preview
    assert "Only the organization's administrators can change plans." in preview
    assert "30 Apr 2026" in cancel
    assert "Cancel my subscription" not in cancel
    assert "/change/" not in plans
    assert reverse("billing:cancel", args=[acme.slug]) not in overview


@pytest.mark.parametrize("name", ACTIONS)
def test_every_action_refuses_posts_without_a_csrf_token(acme, catalog, name):
    url, data, prepare = ACTIONS[name]
    if prepare:
        prepare(acme, catalog)
    before = Subscription.objects.values().get(pk=subscription_of(acme).pk)
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    response = client.post(url(acme, catalog), data)

    assert response.status_code == 403
    assert Subscription.objects.values().get(pk=before["id"]) == before


def test_every_form_carries_a_csrf_token(client, acme, catalog):
    client = signed_in(client, "admin")
    pages = [client.get(PAGES[name](acme, catalog)).content.decode() for name in PAGES]
    _schedule_downgrade(acme, catalog)  # the overview gets its "Keep my current plan" form
    pages.append(client.get(reverse("billing:overview", args=[acme.slug])).content.decode())

    for page in pages:
        assert page.count('<form method="post"') == page.count("csrfmiddlewaretoken")
        assert page.count('<form method="post"') >= 1


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
    assert texts(response) == [
        "You are now on Professional: its allowances and features apply from now on. "
        "The proration, $75.00, goes on your next invoice, on 1 May 2026."
    ]
    assert "Professional" in response.content.decode()


def _professional_with_staff(acme, catalog, employees=5, numbers=0):
    """Move Acme to Professional with `employees` active AI employees and `numbers` numbers."""
    lifecycle_services.subscription_plan_change(
        subscription=subscription_of(acme), plan=catalog["professional"], now=APRIL
    )
    names = ["Ava", "Ben", "Cy", "Dee", "Eve", *[f"Agent {n}" for n in range(employees)]]
    staff = [
        EmployeeFactory(organization=acme, name=name, created_at=APRIL)
        for name in names[:employees]
    ]
    PhoneNumberRateFactory()
    held = [
        usage_services.phone_number_provision(
            organization=acme,
            number=f"+1415555{acme.pk % 1000:03d}{n}",
            number_type="local",
            country="US",
            now=APRIL,
        )
        for n in range(numbers)
    ]
    return staff, held


def test_downgrade_over_the_new_limits_asks_whom_to_let_go_and_schedules_when_enough_are_chosen(
    client, acme, catalog
):
    # Given Professional with 5 active AI employees and 3 numbers; Starter allows 3 and 2
    employees, numbers = _professional_with_staff(acme, catalog, employees=5, numbers=3)
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
    assert texts(refused) == ["Choose 1 more AI employee to deactivate (Starter allows 3)."]
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
    assert texts(response) == [
        "Your plan changes to Starter on 1 May 2026. Until then you keep everything "
        "Professional includes."
    ]
    assert AIEmployee.objects.filter(organization=acme, is_active=True).count() == 5


def test_the_over_limits_refusal_keeps_what_was_ticked(client, acme, catalog):
    employees, _ = _professional_with_staff(acme, catalog, employees=5)
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
    assert texts(response) == ["Acme Dental is already on Starter."]


def test_a_refused_change_comes_back_with_the_services_message(client, acme, catalog):
    _cancel(acme, catalog)
    client = signed_in(client, "admin")

    page = client.get(PAGES["plan_change"](acme, catalog)).content.decode()
    refused = client.post(PAGES["plan_change"](acme, catalog))

    assert "keep it before changing plans" in page
    assert "Keep my subscription" in page
    assert refused.status_code == 400
    assert texts(refused) == [
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
    _professional_with_staff(acme, catalog, employees=0)
    client = signed_in(client, "admin")
    url = reverse("billing:plans", args=[acme.slug])

    monthly = client.get(url).content.decode()
    annual = client.get(url, {"interval": "year"}).content.decode()
    assert "Downgrade<span" in monthly
    assert "Downgrade<span" in annual  # Starter annual is a lower tier

    subscription_services.subscription_cancel(subscription=subscription_of(acme), reason="Other")
    lifecycle_services.subscription_renew_if_needed(
        subscription_id=subscription_of(acme).pk, now=MAY
    )
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


# --- the overview's panels ----------------------------------------------------------------


def test_the_pending_change_panel_says_what_goes_and_can_be_called_off(client, acme, catalog):
    employees, numbers = _professional_with_staff(acme, catalog, employees=5, numbers=3)
    lifecycle_services.subscription_plan_change(
        subscription=subscription_of(acme),
        plan=catalog["starter"],
        now=MID_APRIL,
        deactivate_employee_ids=[employees[0].pk, employees[1].pk],
        release_number_ids=[numbers[2].pk],
    )
    client = signed_in(client, "admin")
    overview_url = reverse("billing:overview", args=[acme.slug])

    page = client.get(overview_url).content.decode()

    assert "Your plan changes to Starter (Monthly) on 1 May 2026." in page
    assert "Features you will lose: Analytics dashboards." in page
    assert "AI employees that will be deactivated: Ava, Ben." in page
    assert f"Phone numbers that will be released: {numbers[2].number}." in page
    assert "Keep my current plan" in page

    response = client.post(
        reverse("billing:scheduled_change_cancel", args=[acme.slug]), follow=True
    )

    assert texts(response) == ["You keep Professional: the change to Starter is called off."]
    assert subscription_of(acme).scheduled_plan is None
    assert "Your plan changes to" not in response.content.decode()
    assert "Keep my current plan" not in response.content.decode()


def test_the_pending_change_panel_warns_of_removals_nobody_chose(client, acme, catalog):
    _professional_with_staff(acme, catalog, employees=3)
    lifecycle_services.subscription_plan_change(
        subscription=subscription_of(acme), plan=catalog["starter"], now=MID_APRIL
    )
    # a fourth arrives while Professional still applies
    usage_services.employee_create(organization=acme, name="Late", now=MID_APRIL)

    page = signed_in(client, "admin").get(reverse("billing:overview", args=[acme.slug]))

    assert "AI employees that will be deactivated: 1 more, the most recently added." in (
        page.content.decode()
    )


def test_calling_off_when_nothing_is_scheduled_says_so(client, acme, catalog):
    response = signed_in(client, "admin").post(
        reverse("billing:scheduled_change_cancel", args=[acme.slug]), follow=True
    )

    assert texts(response) == ["No plan change is scheduled."]


def test_a_trial_shows_when_it_ends_and_the_first_invoice(client, catalog, mid_april):
    membership = MembershipFactory()
    plan = PlanFactory(code="pro-trial", trial_days=14)
    SubscriptionFactory(organization=membership.organization, plan=plan, trial=True, now=MID_APRIL)
    client.force_login(membership.user)

    page = client.get(reverse("billing:overview", args=[membership.organization.slug]))

    assert "Free trial until 30 Apr 2026; first invoice $199.00 on 30 Apr 2026." in (
        page.content.decode()
    )


# --- cancelling and keeping the subscription ----------------------------------------------


def test_the_cancellation_page_says_what_happens_and_offers_the_export_and_a_downgrade(
    client, acme, catalog
):
    page = signed_in(client, "admin").get(PAGES["cancel"](acme, catalog)).content.decode()

    assert "Cancel your Starter subscription?" in page
    assert "until the end of <strong>30 Apr 2026</strong>" in page
    assert "nothing more is charged" in page
    assert "There is no refund for the rest of the period" in page
    assert "kept for 60 days, until 30 Jun 2026" in page
    assert "Invoices and payment records are always kept" in page
    assert reverse("billing:export", args=[acme.slug]) in page
    assert "Downgrade to a smaller plan" in page
    for label in ("Too expensive", "Missing features", "Switching to another provider"):
        assert label in page


def test_the_retention_setting_is_what_the_page_promises(client, acme, catalog, settings):
    settings.DATA_RETENTION_DAYS = 30

    page = signed_in(client, "admin").get(PAGES["cancel"](acme, catalog)).content.decode()

    assert "kept for 30 days, until 31 May 2026" in page


def test_cancelling_needs_a_reason(client, acme, catalog):
    response = signed_in(client, "admin").post(PAGES["cancel"](acme, catalog), {"detail": "x"})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not subscription_of(acme).cancel_at_period_end


def test_cancel_then_the_overview_shows_the_end_then_keep_the_subscription(
    client, acme, catalog, mailoutbox, django_capture_on_commit_callbacks
):
    client = signed_in(client, "admin")
    overview_url = reverse("billing:overview", args=[acme.slug])
    assert "Cancel subscription" in client.get(overview_url).content.decode()

    # When the admin cancels with a reason and a detail
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            PAGES["cancel"](acme, catalog),
            {"reason": "switching_provider", "detail": "Moving to a call center"},
            follow=True,
        )

    # Then the subscription ends with the period, the reason is kept, the contacts are told
    assert response.redirect_chain == [(overview_url, 302)]
    assert texts(response) == [
        "Your subscription is canceled and ends on 30 Apr 2026. "
        "A confirmation was e-mailed to ap@acme.example.com."
    ]
    subscription = subscription_of(acme)
    assert subscription.cancel_at_period_end
    assert subscription.cancel_reason == "Switching to another provider: Moving to a call center"
    assert mailoutbox[-1].to == ["ap@acme.example.com"]
    page = response.content.decode()
    assert "Your subscription ends on 30 Apr 2026." in page
    assert "no refund" in page
    assert "Keep my subscription" in page
    assert "Cancel subscription</a>" not in page
    assert "Next renewal" not in page

    # The cancellation page now offers to keep it instead
    again = client.get(PAGES["cancel"](acme, catalog)).content.decode()
    assert "Your subscription ends on 30 Apr 2026" in again
    assert "Cancel my subscription" not in again

    # When the admin keeps it
    kept = client.post(reverse("billing:reactivate", args=[acme.slug]), follow=True)

    assert texts(kept) == ["Your subscription continues and renews on 1 May 2026."]
    assert not subscription_of(acme).cancel_at_period_end
    assert "Next renewal" in kept.content.decode()
    assert "Keep my subscription" not in kept.content.decode()


def test_cancelling_with_a_scheduled_downgrade_puts_it_on_hold_and_keeping_brings_it_back(
    client, acme, catalog
):
    # Given Professional with a downgrade to Starter scheduled for 1 May
    _schedule_downgrade(acme, catalog)
    client = signed_in(client, "admin")
    overview_url = reverse("billing:overview", args=[acme.slug])

    # The cancellation page says what becomes of the change before the admin confirms
    page = client.get(PAGES["cancel"](acme, catalog)).content.decode()
    assert (
        "Your change to Starter (Monthly), scheduled for 1 May 2026, is put on hold: the "
        "subscription ends first. If you keep your subscription before then, the change takes "
        "effect on 1 May 2026 as scheduled." in page
    )

    # When the admin cancels, the overview shows the end and the change on hold
    cancelled = client.post(
        PAGES["cancel"](acme, catalog), {"reason": "too_expensive"}, follow=True
    )
    page = cancelled.content.decode()
    assert "Your subscription ends on 30 Apr 2026." in page
    assert (
        "Your change to Starter (Monthly) on 1 May 2026 is on hold: it takes effect as "
        "scheduled if you keep your subscription." in page
    )

    # When the admin keeps the subscription, the change is back on the overview
    kept = client.post(reverse("billing:reactivate", args=[acme.slug]), follow=True)

    assert texts(kept) == [
        "Your subscription continues: your plan changes to Starter (Monthly) on 1 May 2026, "
        "as scheduled."
    ]
    assert kept.redirect_chain == [(overview_url, 302)]
    assert "Your plan changes to Starter (Monthly) on 1 May 2026." in kept.content.decode()
    assert subscription_of(acme).scheduled_plan == catalog["starter"]


def test_keeping_a_subscription_that_is_not_ending_says_so(client, acme, catalog):
    response = signed_in(client, "admin").post(
        reverse("billing:reactivate", args=[acme.slug]), follow=True
    )

    assert texts(response) == ["The subscription is not set to end."]


def test_after_the_period_ended_the_org_resubscribes_from_the_same_page(client, acme, catalog):
    # Given Acme cancelled and its period ended
    _cancel(acme, catalog)
    lifecycle_services.subscription_renew_if_needed(
        subscription_id=subscription_of(acme).pk, now=MAY
    )
    url = PAGES["plan_change"](acme, catalog)

    with time_machine.travel(utc(2026, 5, 4, 15), tick=False):
        client = signed_in(client, "admin")
        overview = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()
        kept = client.post(reverse("billing:reactivate", args=[acme.slug]), follow=True)
        page = client.get(url).content.decode()
        response = client.post(url, follow=True)

    assert "No active subscription" in overview
    assert texts(kept) == ["The subscription has ended: choose a plan to subscribe again."]
    assert "Subscribe to Professional (Monthly)" in page
    assert "$199.00 today" in page
    assert "4 May – 3 Jun 2026" in page
    assert texts(response) == [
        "You are subscribed to Professional. The first invoice, $199.00, is issued now."
    ]
    subscription = subscription_of(acme)
    assert (subscription.plan, subscription.status) == (catalog["professional"], "active")
    assert subscription.invoices.get().total == usd("199.00")


def test_a_first_subscription_starts_the_plans_trial(client, catalog, mid_april):
    plan = PlanFactory(code="pro-trial", trial_days=14)
    membership = MembershipFactory()
    client.force_login(membership.user)
    url = reverse("billing:plan_change", args=[membership.organization.slug, plan.pk])

    page = client.get(url).content.decode()
    response = client.post(url, follow=True)

    assert "14-day free trial, first invoice on 30 Apr 2026" in page
    assert texts(response) == [
        "You are subscribed to Professional. Your free trial runs until 30 Apr 2026; "
        "the first invoice, $199.00, comes then."
    ]
    assert subscription_of(membership.organization).status == "trialing"


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
    assert texts(response) == [
        "You are now on Business: its allowances and features apply from now on."
    ]
    subscription = subscription_of(membership.organization)
    assert (subscription.plan, subscription.status) == (business, "trialing")


def test_a_suspended_subscription_ends_as_soon_as_it_is_cancelled(client, acme, catalog):
    for status in ("past_due", "suspended"):
        subscription_services.subscription_set_status(
            subscription=subscription_of(acme), status=status, reason="Card declined"
        )
    client = signed_in(client, "admin")

    page = client.get(PAGES["cancel"](acme, catalog)).content.decode()
    response = client.post(PAGES["cancel"](acme, catalog), {"reason": "other"}, follow=True)

    assert "it ends as soon as you confirm" in page
    assert "kept for 60 days, until 15 Jun 2026" in page
    assert texts(response) == [
        "Your subscription is canceled and has ended. "
        "A confirmation was e-mailed to ap@acme.example.com."
    ]
    assert Subscription.objects.get(organization=acme).status == "canceled"


# --- what the last months' usage would have met on the new plan -------------------------


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
    lifecycle_services.subscription_renew_if_needed(
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
    _professional_with_staff(acme, catalog, employees=1)

    page = signed_in(client, "admin").get(
        reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk])
    )

    assert page.context["usage_beyond"] == []
    assert "Your recent usage goes past" not in page.content.decode()


# --- a constant number of queries ---------------------------------------------------------


def _crowd(acme, catalog, employees):
    """Other organizations, and `employees` more AI employees at Acme."""
    for _ in range(10):
        organization = OrganizationFactory()
        SubscriptionFactory(organization=organization, plan=catalog["starter"], now=APRIL)
        MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for n in range(employees):
        EmployeeFactory(organization=acme, name=f"Crowd {n}", created_at=APRIL)


@pytest.mark.parametrize(
    ("page", "most"),
    [
        # each with the bell's unread notices
        ("plan_change_up", 12),  # with the last months' usage against the new plan
        ("plan_change_down", 12),
        ("cancel", 6),
        # with the scheduled change's panel, this month's use, the upcoming invoice, the
        # payment method, the latest invoices, the open alerts, the plans offered and the
        # budgets
        ("overview", 24),
        ("plans", 9),  # the change buttons add none
    ],
)
def test_pages_run_a_constant_number_of_queries(
    client, acme, catalog, page, most, django_assert_max_num_queries
):
    employees, numbers = _professional_with_staff(acme, catalog, employees=5, numbers=3)
    lifecycle_services.subscription_plan_change(
        subscription=subscription_of(acme),
        plan=catalog["starter"],
        now=MID_APRIL,
        deactivate_employee_ids=[employees[0].pk, employees[1].pk],
        release_number_ids=[numbers[0].pk],
    )
    urls = {
        "plan_change_up": reverse(
            "billing:plan_change",
            args=[acme.slug, PlanFactory(name="Business", tier=Plan.Tier.BUSINESS).pk],
        ),
        "plan_change_down": reverse("billing:plan_change", args=[acme.slug, catalog["starter"].pk]),
        "cancel": reverse("billing:cancel", args=[acme.slug]),
        "overview": reverse("billing:overview", args=[acme.slug]),
        "plans": reverse("billing:plans", args=[acme.slug]),
    }
    client = signed_in(client, "admin")

    for employees in (0, 30):
        _crowd(acme, catalog, employees)
        with django_assert_max_num_queries(most):
            response = client.get(urls[page])
        assert response.status_code == 200
