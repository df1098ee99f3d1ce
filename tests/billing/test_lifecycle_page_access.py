"""Who may open the subscription lifecycle's pages and post their actions (changing plans,
cancelling, calling off a scheduled change, keeping the subscription), the forms' CSRF
tokens, and a constant number of queries on each page."""

import pytest
from django.test import Client
from django.urls import reverse

from billing.lifecycle import services as lifecycle_services
from billing.models import Plan, Subscription
from tests.billing.conftest import (
    PAGES,
    cancel_subscription,
    professional_with_staff,
    schedule_downgrade,
)
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)
from tests.helpers import APRIL, MID_APRIL, signed_in, subscription_of

pytestmark = pytest.mark.django_db


# --- who may do what ----------------------------------------------------------------------


# Each action: its URL, what it is sent, and what must be true for an admin's POST to work.
ACTIONS = {
    "plan_change": (PAGES["plan_change"], {}, None),
    "cancel": (PAGES["cancel"], {"reason": "too_expensive"}, None),
    "scheduled_change_cancel": (
        lambda acme, catalog: reverse("billing:scheduled_change_cancel", args=[acme.slug]),
        {},
        schedule_downgrade,
    ),
    "reactivate": (
        lambda acme, catalog: reverse("billing:reactivate", args=[acme.slug]),
        {},
        cancel_subscription,
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
    schedule_downgrade(acme, catalog)  # the overview gets its "Keep my current plan" form
    pages.append(client.get(reverse("billing:overview", args=[acme.slug])).content.decode())

    for page in pages:
        assert page.count('<form method="post"') == page.count("csrfmiddlewaretoken")
        assert page.count('<form method="post"') >= 1


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
    employees, numbers = professional_with_staff(acme, catalog, employees=5, numbers=3)
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
