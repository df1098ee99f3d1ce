"""Support staff's lifecycle pages in the admin: plan changes with their preview,
scheduled changes, cancellation and reactivation, trials and feature trials, each through
its service and behind a confirmation page."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing.catalog import services as catalog_services
from billing.lifecycle import services as lifecycle_services
from billing.models import FeatureTrial, PendingLine
from billing.subscriptions import services as subscription_services
from tests.factories import (
    EmployeeFactory,
    FeatureFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    sign_in,
)
from tests.helpers import (
    APRIL,
    MAY,
    MID_APRIL,
    messages_of,
    professional,
    starter,
    subscribe_with_trial,
    usd,
    utc,
)

pytestmark = pytest.mark.django_db


def url(name, subscription):
    return reverse(f"admin:billing_subscription_{name}", args=[subscription.pk])


def page_of(subscription):
    return reverse("admin:billing_subscription_change", args=[subscription.pk])


# --- changing plans -----------------------------------------------------------------------


def test_the_plan_form_offers_the_organizations_plans_but_not_its_own(staff_client):
    subscription = subscribe_with_trial(starter())
    upgrade = professional()
    PlanFactory(name="Retired", is_available=False)
    PlanFactory(name="Someone's custom", is_public=False, organization=OrganizationFactory())

    form = staff_client.get(url("change_plan", subscription)).context["form"]

    assert [label for _, label in form.fields["plan"].choices] == [
        "---------",
        f"{upgrade} – $199.00",
    ]


def test_the_preview_shows_the_proration_and_its_net_before_anything_changes(staff_client):
    # Given Starter ($49) for April, 30 days
    subscription = subscribe_with_trial(starter())
    upgrade = professional()

    # When staff ask to upgrade to Professional ($199) at the exact middle
    with time_machine.travel(MID_APRIL, tick=False):
        response = staff_client.post(
            url("change_plan", subscription), {"plan": upgrade.pk, "when": "now"}
        )

    # Then the preview shows half of $199 minus half of $49
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unused time on Starter (monthly), 16 Apr – 30 Apr 2026" in page
    assert "-$24.50" in page
    assert "$99.50" in page
    assert response.context["preview"].proration_total == usd("75.00")
    assert "<strong>$75.00</strong>" in page
    assert "at once, on confirming" in page
    # and nothing has changed yet
    subscription.refresh_from_db()
    assert subscription.plan != upgrade
    assert not PendingLine.objects.exists()


def test_staff_upgrade_at_once_and_the_proration_waits_for_the_next_invoice(staff_client, staff):
    subscription = subscribe_with_trial(starter())
    upgrade = professional()

    with time_machine.travel(MID_APRIL, tick=False):
        response = staff_client.post(
            url("change_plan", subscription),
            {"plan": upgrade.pk, "when": "now", "_confirm": "1"},
        )
        page = staff_client.get(page_of(subscription)).content.decode()

    assert response["Location"] == page_of(subscription)
    assert messages_of(response) == [
        "Acme Dental is on Professional (Monthly) from now on. The proration, $75.00 net, "
        "goes on the next invoice."
    ]
    subscription.refresh_from_db()
    assert subscription.plan == upgrade
    assert subscription.history.latest().history_user == staff
    pending = PendingLine.objects.filter(subscription=subscription)
    assert [(line.amount, line.invoice) for line in pending] == [
        (usd("-24.50"), None),
        (usd("99.50"), None),
    ]
    # The subscription's page lists the lines waiting for the next invoice
    assert "Remaining time on Professional (monthly), 16 Apr – 30 Apr 2026" in page
    assert "Not invoiced yet: goes on the next invoice" in page


def test_staff_schedule_a_change_for_the_end_of_the_period(staff_client):
    subscription = subscribe_with_trial(starter())
    upgrade = professional()
    data = {"plan": upgrade.pk, "when": "period_end"}

    with time_machine.travel(MID_APRIL, tick=False):
        preview = staff_client.post(url("change_plan", subscription), data)
        response = staff_client.post(url("change_plan", subscription), {**data, "_confirm": "1"})
        page = staff_client.get(page_of(subscription)).content.decode()

    assert "1 May 2026" in preview.content.decode()
    assert preview.context["preview"].proration == []
    assert messages_of(response) == [
        "Acme Dental moves to Professional (Monthly) on 1 May 2026; until then it keeps "
        "Starter (Monthly)."
    ]
    subscription.refresh_from_db()
    assert (
        subscription.plan.name,
        subscription.scheduled_plan,
        subscription.scheduled_change_at,
    ) == (
        "Starter",
        upgrade,
        MAY,
    )
    assert not PendingLine.objects.exists()
    assert "To Professional (Monthly) on 1 May 2026." in page
    assert url("call_off_change", subscription) in page


def test_a_downgrade_cannot_be_asked_for_at_once(staff_client):
    subscription = subscribe_with_trial(professional())
    lower = starter()

    response = staff_client.post(
        url("change_plan", subscription), {"plan": lower.pk, "when": "now"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["when"] == [
        "Starter (Monthly) is a downgrade: it can only take effect at the end of the period."
    ]


def test_during_a_trial_a_change_switches_at_once_without_proration(staff_client):
    subscription = subscribe_with_trial(professional(trial_days=14))
    lower = starter()
    change_plan = url("change_plan", subscription)

    with time_machine.travel(utc(2026, 4, 5), tick=False):
        form = staff_client.get(change_plan).context["form"]
        preview = staff_client.post(change_plan, {"plan": lower.pk})
        response = staff_client.post(change_plan, {"plan": lower.pk, "_confirm": "1"})

    assert "when" not in form.fields
    assert preview.context["preview"].applies_now
    assert "the trial continues on Starter (Monthly)" in preview.content.decode()
    assert messages_of(response) == [
        "Acme Dental is on Starter (Monthly) from now on; its trial continues."
    ]
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.status) == (lower, "trialing")
    assert not PendingLine.objects.exists()


def test_an_over_limit_downgrade_asks_staff_to_choose_who_goes(staff_client):
    # Given Professional with five active AI employees; Starter allows three
    subscription = subscribe_with_trial(professional())
    ava, ben, *_ = [
        EmployeeFactory(organization=subscription.organization, name=name, created_at=APRIL)
        for name in ["Ava", "Ben", "Cy", "Dee", "Eve"]
    ]
    lower = starter()
    data = {"plan": lower.pk, "when": "period_end"}
    change_plan = url("change_plan", subscription)

    with time_machine.travel(MID_APRIL, tick=False):
        preview = staff_client.post(change_plan, data)
        too_few = staff_client.post(
            change_plan, {**data, "deactivate_employee_ids": [ava.pk], "_confirm": "1"}
        )
        enough = staff_client.post(
            change_plan,
            {**data, "deactivate_employee_ids": [ava.pk, ben.pk], "_confirm": "1"},
        )
        page = staff_client.get(page_of(subscription)).content.decode()

    # The preview lists them with checkboxes and says how many must go
    removals = preview.context["removals"]
    assert list(removals.fields) == ["deactivate_employee_ids"]
    assert "Starter allows 3 active: choose at least 2." in preview.content.decode()
    assert 'type="checkbox" name="deactivate_employee_ids"' in preview.content.decode()
    # Too few is refused with the service's message, and nothing is scheduled
    assert too_few.status_code == 200
    assert messages_of(too_few) == ["Choose 1 more AI employee to deactivate (Starter allows 3)."]
    # Enough schedules the change with the chosen ones, shown by name
    assert enough.status_code == 302
    subscription.refresh_from_db()
    assert subscription.scheduled_plan == lower
    assert subscription.scheduled_removals == {"employees": [ava.pk, ben.pk], "phone_numbers": []}
    assert "AI employees deactivated then: Ava, Ben." in page


def test_staff_call_off_a_scheduled_change(staff_client, staff):
    subscription = subscribe_with_trial(professional())
    lifecycle_services.subscription_plan_change(
        subscription=subscription, plan=starter(), now=MID_APRIL
    )

    with time_machine.travel(MID_APRIL, tick=False):
        confirmation = staff_client.get(url("call_off_change", subscription))
        response = staff_client.post(url("call_off_change", subscription), follow=True)
        again = staff_client.post(url("call_off_change", subscription))

    assert "stays on Professional (Monthly)" in confirmation.content.decode()
    assert messages_of(response) == [
        "The change to Starter (Monthly) is called off: Acme Dental stays on "
        "Professional (Monthly)."
    ]
    subscription.refresh_from_db()
    assert (subscription.scheduled_plan, subscription.scheduled_change_at) == (None, None)
    assert subscription.history.latest().history_user == staff
    assert messages_of(again) == ["No plan change is scheduled."]


# --- cancelling and reactivating ----------------------------------------------------------


def test_staff_cancel_at_period_end_with_a_reason_then_reactivate(staff_client, staff):
    subscription = subscribe_with_trial(professional())
    cancel = url("cancel", subscription)

    with time_machine.travel(MID_APRIL, tick=False):
        before = staff_client.get(page_of(subscription)).content.decode()
        without_reason = staff_client.post(cancel, {"reason": "  "})
        canceled = staff_client.post(cancel, {"reason": "Moving to another provider"})
        page = staff_client.get(page_of(subscription)).content.decode()
        reactivated = staff_client.post(url("reactivate", subscription))
        after = staff_client.get(page_of(subscription)).content.decode()

    assert cancel in before and url("reactivate", subscription) not in before
    assert without_reason.context["form"].errors["reason"] == ["This field is required."]
    assert messages_of(canceled) == [
        "Acme Dental's subscription ends on 30 Apr 2026: nothing more is charged, and it can "
        "be kept until then."
    ]
    # The page shows the request and the reason, and offers to reactivate instead
    assert "Moving to another provider" in page
    assert "April 16, 2026" in page  # requested at, as the admin shows dates
    assert url("reactivate", subscription) in page and cancel not in page
    assert url("change_plan", subscription) not in page  # a leaving subscription keeps its plan
    assert messages_of(reactivated) == [
        "Acme Dental's subscription continues and renews on 1 May 2026."
    ]
    subscription.refresh_from_db()
    assert (subscription.cancel_at_period_end, subscription.cancel_requested_at) == (False, None)
    assert cancel in after


def test_staff_are_told_a_scheduled_downgrade_waits_through_a_cancellation(staff_client):
    subscription = subscribe_with_trial(professional())
    lifecycle_services.subscription_plan_change(
        subscription=subscription, plan=starter(), now=APRIL
    )

    with time_machine.travel(MID_APRIL, tick=False):
        cancel_page = staff_client.get(url("cancel", subscription)).content.decode()
        subscription_services.subscription_cancel(subscription=subscription, reason="Budget")
        reactivate_page = staff_client.get(url("reactivate", subscription)).content.decode()

    assert (
        "The change to Starter (Monthly) scheduled for 1 May 2026 is put on hold: it applies "
        "as scheduled if the subscription is reactivated, and never if it ends." in cancel_page
    )
    assert (
        "the change to Starter (Monthly) scheduled for 1 May 2026, on hold while it was "
        "ending, takes effect as scheduled" in reactivate_page
    )


def test_a_second_cancellation_is_refused_with_the_services_message(staff_client):
    subscription = subscribe_with_trial(professional())
    subscription_services.subscription_cancel(subscription=subscription, reason="Budget", now=APRIL)

    response = staff_client.post(url("cancel", subscription), {"reason": "Again"})

    assert response.status_code == 200
    assert messages_of(response) == ["The subscription already ends with this period."]


# --- trials -------------------------------------------------------------------------------


def test_staff_extend_a_trial_and_a_date_before_its_end_is_refused(staff_client, staff):
    subscription = subscribe_with_trial(professional(trial_days=14))  # ends 15 Apr
    extend = url("extend_trial", subscription)

    with time_machine.travel(utc(2026, 4, 10), tick=False):
        page = staff_client.get(page_of(subscription)).content.decode()
        form = staff_client.get(extend).context["form"]
        refused = staff_client.post(extend, {"ends_on": "2026-04-12"})
        response = staff_client.post(extend, {"ends_on": "2026-04-29"})

    assert extend in page
    assert form["ends_on"].value() == dt.date(2026, 4, 15)
    assert messages_of(refused) == ["The new end must be after the current one."]
    assert messages_of(response) == [
        "Acme Dental's trial now ends on 29 Apr 2026; the first invoice comes then."
    ]
    subscription.refresh_from_db()
    assert subscription.trial_ends_at == subscription.current_period_end == utc(2026, 4, 29)
    assert subscription.history.latest().history_user == staff


def test_only_a_trial_can_be_extended(staff_client):
    subscription = subscribe_with_trial(professional())

    page = staff_client.get(page_of(subscription)).content.decode()
    response = staff_client.post(url("extend_trial", subscription), {"ends_on": "2026-05-29"})

    assert url("extend_trial", subscription) not in page
    assert messages_of(response) == ["Only a subscription in its trial can be extended."]


def test_staff_grant_a_feature_trial_and_not_twice_at_once(staff_client, staff, now):
    audit_log = FeatureFactory(code="audit_log", name="Audit log")
    calling = FeatureFactory(code="core_calling", name="Core calling")
    plan = professional()
    plan.features.set([calling])
    organization = subscribe_with_trial(plan, start=now).organization
    grant = reverse("admin:billing_organization_feature_trial", args=[organization.pk])
    data = {"feature": audit_log.pk, "days": "14", "note": "Evaluating before upgrading"}

    page = staff_client.get(reverse("admin:billing_organization_change", args=[organization.pk]))
    form = staff_client.get(grant).context["form"]
    response = staff_client.post(grant, data, follow=True)
    twice = staff_client.post(grant, data)

    assert grant in page.content.decode()
    assert list(form.fields["feature"].queryset) == [audit_log]  # the plan has core calling
    assert messages_of(response) == [
        "Acme Dental can try Audit log until 30 Mar 2026, 10:00 (UTC)."
    ]
    trial = FeatureTrial.objects.get()
    assert (trial.organization, trial.ends_at, trial.granted_by, trial.note) == (
        organization,
        now + dt.timedelta(days=14),
        staff,
        "Evaluating before upgrading",
    )
    assert twice.status_code == 200
    assert messages_of(twice) == ["Acme Dental is already trying Audit log."]
    assert FeatureTrial.objects.count() == 1


def test_feature_trials_are_listed_searchable_and_read_only(staff_client, staff, now):
    organization = OrganizationFactory(name="Acme Dental")
    audit_log = FeatureFactory(code="audit_log", name="Audit log")
    ended = catalog_services.feature_trial_grant(
        organization=organization, feature=audit_log, days=7, now=now - dt.timedelta(days=30)
    )
    active = catalog_services.feature_trial_grant(
        organization=organization, feature=audit_log, days=7, actor=staff, now=now
    )
    OrganizationFactory(name="Other")
    changelist = reverse("admin:billing_featuretrial_changelist")

    found = staff_client.get(changelist, {"q": "acme"})
    active_only = staff_client.get(changelist, {"state": "active"})
    change = reverse("admin:billing_featuretrial_change", args=[active.pk])

    assert {trial.pk: trial.is_active for trial in found.context["cl"].result_list} == {
        active.pk: True,
        ended.pk: False,
    }
    assert list(active_only.context["cl"].result_list) == [active]
    assert "support" in found.content.decode()  # granted by
    assert staff_client.get(change).context["adminform"].form.fields == {}
    assert staff_client.post(change, {}).status_code == 403
    assert staff_client.get(reverse("admin:billing_featuretrial_add")).status_code == 403


def test_a_plans_trial_days_stay_editable_while_it_has_subscribers(staff_client):
    plan = subscribe_with_trial(professional()).plan
    change = reverse("admin:billing_plan_change", args=[plan.pk])
    form = staff_client.get(change).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data["trial_days"] = "30"

    response = staff_client.post(change, {k: v for k, v in data.items() if v is not None})

    assert "price" not in form.fields
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.trial_days == 30


# --- access and speed ---------------------------------------------------------------------

LIFECYCLE_PAGES = ["change_plan", "call_off_change", "cancel", "reactivate", "extend_trial"]


@pytest.mark.parametrize("name", [*LIFECYCLE_PAGES, "feature_trial"])
def test_people_who_are_not_staff_cannot_reach_the_lifecycle_pages(client, name):
    subscription = subscribe_with_trial(professional())
    client.force_login(MembershipFactory(organization=subscription.organization).user)
    if name == "feature_trial":
        target = reverse(
            "admin:billing_organization_feature_trial", args=[subscription.organization_id]
        )
    else:
        target = url(name, subscription)

    response = client.post(target, {"reason": "Leaving", "ends_on": "2026-05-29"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end


@pytest.mark.parametrize("name", LIFECYCLE_PAGES)
def test_staff_who_may_only_view_subscriptions_cannot_change_them(client, name):
    subscription = subscribe_with_trial(professional())
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_subscription", content_type__app_label="billing")
    )
    sign_in(client, viewer)

    assert client.get(url(name, subscription)).status_code == 403


@pytest.mark.parametrize("model", ["subscription", "featuretrial", "organization"])
def test_changelists_run_a_constant_number_of_queries(
    staff_client, now, model, django_assert_max_num_queries
):
    lower = starter()
    audit_log = FeatureFactory(code="audit_log", name="Audit log")
    for n in range(15):
        subscription = SubscriptionFactory(plan=professional(), now=now)
        if n % 3 == 0:
            lifecycle_services.subscription_plan_change(
                subscription=subscription, plan=lower, now=now
            )
        elif n % 3 == 1:
            subscription_services.subscription_cancel(
                subscription=subscription, reason="Budget", now=now
            )
        catalog_services.feature_trial_grant(
            organization=subscription.organization, feature=audit_log, days=14, now=now
        )

    with django_assert_max_num_queries(12):
        response = staff_client.get(reverse(f"admin:billing_{model}_changelist"))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 15
