"""Who may open the usage pages (usage, AI employees, phone numbers) and post their
actions, the forms' CSRF tokens, and a constant number of queries on each page."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import EmployeeFactory, UserFactory, record_call
from tests.helpers import signed_in, utc
from tests.usage.conftest import url_of
from usage import services
from usage.models import AIEmployee, PhoneNumber

pytestmark = pytest.mark.django_db


# --- access -------------------------------------------------------------------------------

PAGES = ["dashboard", "employees", "phone_numbers", "number_release"]
ACTIONS = {
    "employee_create": {"name": "Cleo", "cost_center": "Sales", "inbound_capable": "on"},
    "employee_deactivate": {},
    "employee_reactivate": {},
    "number_provision": {"number": "+14155550111", "number_type": "local", "country": "US"},
    "number_assign": {"employee": ""},
    "number_release": {},
}


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, staff_and_numbers, name):
    url = url_of(name, "acme", staff_and_numbers)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_action(client, staff_and_numbers, name):
    response = client.post(url_of(name, "acme", staff_and_numbers), ACTIONS[name])

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 200), ("support", 200)],
)
def test_page_access_matrix(client, staff_and_numbers, name, username, status):
    response = signed_in(client, username).get(url_of(name, "acme", staff_and_numbers))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content
        assert b"Ava" not in response.content
        assert b"+14155550100" not in response.content


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 302), ("support", 403)],
)
def test_action_access_matrix(client, staff_and_numbers, name, username, status):
    response = signed_in(client, username).post(
        url_of(name, "acme", staff_and_numbers), ACTIONS[name]
    )

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content


def test_refused_actions_change_nothing(client, staff_and_numbers):
    for username in ("member", "support", "rival_admin"):
        signed_in(client, username)
        for name, data in ACTIONS.items():
            client.post(url_of(name, "acme", staff_and_numbers), data)

    assert AIEmployee.objects.filter(is_active=True).count() == 1  # Ava only
    assert not AIEmployee.objects.filter(name="Cleo").exists()
    assert PhoneNumber.objects.get().released_at is None
    assert PhoneNumber.objects.get().employee == staff_and_numbers.ava


def test_an_admin_of_another_organization_cannot_reach_its_employees_through_their_own(
    client, staff_and_numbers
):
    """Ids of another organization's records are unknown under one's own organization."""
    signed_in(client, "rival_admin")

    deactivate = client.post(url_of("employee_deactivate", "rival", staff_and_numbers))
    release = client.post(url_of("number_release", "rival", staff_and_numbers))

    assert (deactivate.status_code, release.status_code) == (404, 404)
    staff_and_numbers.ava.refresh_from_db()
    assert staff_and_numbers.ava.is_active
    assert PhoneNumber.objects.get().released_at is None


@pytest.mark.parametrize("name", ["employee_deactivate", "number_provision"])
def test_actions_answer_only_posts(client, staff_and_numbers, name):
    response = signed_in(client, "admin").get(url_of(name, "acme", staff_and_numbers))

    assert response.status_code == 405


def test_staff_see_the_lists_without_buttons_that_would_change_them(client, staff_and_numbers):
    signed_in(client, "support")

    employees = client.get(reverse("usage:employees", args=["acme"])).content.decode()
    numbers = client.get(reverse("usage:phone_numbers", args=["acme"])).content.decode()

    assert "Ava" in employees
    assert ">Deactivate</button>" not in employees
    assert "Add an AI employee" not in employees
    assert "+14155550100" in numbers
    assert "Provision a number" not in numbers
    assert "Release…" not in numbers


def test_staff_who_post_anyway_are_told_changes_are_for_administrators(client, staff_and_numbers):
    response = signed_in(client, "support").post(
        url_of("employee_deactivate", "acme", staff_and_numbers)
    )

    assert response.status_code == 403
    assert "Only administrators can make changes" in response.content.decode()


@pytest.mark.parametrize("name", ACTIONS)
def test_action_forms_refuse_posts_without_a_csrf_token(staff_and_numbers, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    response = client.post(url_of(name, "acme", staff_and_numbers), ACTIONS[name])

    assert response.status_code == 403
    assert AIEmployee.objects.filter(is_active=True).count() == 1


def test_the_pages_carry_a_csrf_token_in_every_form(client, staff_and_numbers):
    signed_in(client, "admin")

    for name in ("employees", "phone_numbers", "number_release"):
        page = client.get(url_of(name, "acme", staff_and_numbers)).content.decode()
        assert page.count('<form method="post"') == page.count("csrfmiddlewaretoken")


# --- speed --------------------------------------------------------------------------------


# Queries per page, whatever the data: session and user (2), the person's access and
# organizations (2), the bell's unread notices (1), then the page's own reads.
QUERY_BUDGET = {
    "dashboard": 11,  # subscription, counter, counts, by day, by employee, by cost center
    "employees": 7,  # subscription, employees with their numbers
    "phone_numbers": 10,  # subscription, numbers, this month's fees, employees, form choices
    "number_release": 6,  # the number and who answers it
    # subscription, this month's counter, AI employees and numbers, the features and the
    # plans that offer them; the upcoming invoice (coupon, tax rates, balance, pending
    # prorations, number fees), the default payment method, the latest invoices, the open
    # alerts, the plans offered and the budgets
    "overview": 20,
}


@pytest.mark.parametrize(("name", "budget"), QUERY_BUDGET.items())
def test_pages_run_a_constant_number_of_queries(
    client, staff_and_numbers, now, name, budget, django_assert_max_num_queries
):
    acme = staff_and_numbers.ava.organization
    employees = [
        EmployeeFactory(organization=acme, name=f"Agent {n}", cost_center=f"Team {n % 4}")
        for n in range(12)
    ]
    for day in range(20):
        for employee in employees[: 6 + day % 6]:
            record_call(
                employee=employee, seconds=60 + day, connected_at=utc(2026, 2, 16 + day // 2, 9)
            )
    for n in range(8):
        services.phone_number_provision(
            organization=acme,
            number=f"+1415555020{n}",
            number_type="local",
            country="US",
            employee=employees[n],
        )
    url = (
        reverse("billing:overview", args=["acme"])
        if name == "overview"
        else url_of(name, "acme", staff_and_numbers)
    )
    signed_in(client, "admin")

    with django_assert_max_num_queries(budget):
        response = client.get(url, {"period": "2026-02-16"} if name == "dashboard" else {})

    assert response.status_code == 200
