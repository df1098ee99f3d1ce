"""The overview's panels for a scheduled change and a trial, cancelling and keeping the
subscription, and subscribing (again after it ended, or a first time with a trial)."""

import pytest
import time_machine
from django.urls import reverse

from billing.lifecycle import renewals
from billing.lifecycle import services as lifecycle_services
from billing.models import Subscription
from billing.subscriptions import services as subscription_services
from tests.billing.conftest import (
    PAGES,
    cancel_subscription,
    professional_with_staff,
    schedule_downgrade,
)
from tests.factories import MembershipFactory, PlanFactory, SubscriptionFactory
from tests.helpers import MAY, MID_APRIL, messages_of, signed_in, subscription_of, usd, utc
from usage import services as usage_services

pytestmark = pytest.mark.django_db


# --- the overview's panels ----------------------------------------------------------------


def test_the_pending_change_panel_says_what_goes_and_can_be_called_off(client, acme, catalog):
    employees, numbers = professional_with_staff(acme, catalog, employees=5, numbers=3)
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

    assert messages_of(response) == ["You keep Professional: the change to Starter is called off."]
    assert subscription_of(acme).scheduled_plan is None
    assert "Your plan changes to" not in response.content.decode()
    assert "Keep my current plan" not in response.content.decode()


def test_the_pending_change_panel_warns_of_removals_nobody_chose(client, acme, catalog):
    professional_with_staff(acme, catalog, employees=3)
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

    assert messages_of(response) == ["No plan change is scheduled."]


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
    assert messages_of(response) == [
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

    assert messages_of(kept) == ["Your subscription continues and renews on 1 May 2026."]
    assert not subscription_of(acme).cancel_at_period_end
    assert "Next renewal" in kept.content.decode()
    assert "Keep my subscription" not in kept.content.decode()


def test_cancelling_with_a_scheduled_downgrade_puts_it_on_hold_and_keeping_brings_it_back(
    client, acme, catalog
):
    # Given Professional with a downgrade to Starter scheduled for 1 May
    schedule_downgrade(acme, catalog)
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

    assert messages_of(kept) == [
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

    assert messages_of(response) == ["The subscription is not set to end."]


def test_after_the_period_ended_the_org_resubscribes_from_the_same_page(client, acme, catalog):
    # Given Acme cancelled and its period ended
    cancel_subscription(acme, catalog)
    renewals.subscription_renew_if_needed(subscription_id=subscription_of(acme).pk, now=MAY)
    url = PAGES["plan_change"](acme, catalog)

    with time_machine.travel(utc(2026, 5, 4, 15), tick=False):
        client = signed_in(client, "admin")
        overview = client.get(reverse("billing:overview", args=[acme.slug])).content.decode()
        kept = client.post(reverse("billing:reactivate", args=[acme.slug]), follow=True)
        page = client.get(url).content.decode()
        response = client.post(url, follow=True)

    assert "No active subscription" in overview
    assert messages_of(kept) == ["The subscription has ended: choose a plan to subscribe again."]
    assert "Subscribe to Professional (Monthly)" in page
    assert "$199.00 today" in page
    assert "4 May – 3 Jun 2026" in page
    assert messages_of(response) == [
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
    assert messages_of(response) == [
        "You are subscribed to Professional. Your free trial runs until 30 Apr 2026; "
        "the first invoice, $199.00, comes then."
    ]
    assert subscription_of(membership.organization).status == "trialing"


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
    assert messages_of(response) == [
        "Your subscription is canceled and has ended. "
        "A confirmation was e-mailed to ap@acme.example.com."
    ]
    assert Subscription.objects.get(organization=acme).status == "canceled"
