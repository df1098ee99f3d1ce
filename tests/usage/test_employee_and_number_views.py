"""The AI employees and phone numbers pages: adding, deactivating and reactivating an
employee, provisioning, assigning and releasing a number, within the plan's limits."""

import pytest
from django.urls import reverse

from billing.catalog import services as catalog_services
from tests.factories import (
    EmployeeFactory,
    MembershipFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    UserFactory,
)
from tests.helpers import signed_in
from tests.usage.conftest import subscribe, url_of
from usage import services
from usage.models import AIEmployee, PhoneNumber

pytestmark = pytest.mark.django_db


# --- AI employees -------------------------------------------------------------------------


def test_employees_page_lists_everyone_and_how_many_of_the_plan_are_active(client, acme, now):
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=acme, name=name)
    EmployeeFactory(organization=acme, name="Dan", is_active=False, deactivated_at=now)

    text = signed_in(client, "admin").get(reverse("usage:employees", args=["acme"]))
    text = text.content.decode()

    assert "3 of 15 AI employees active" in text
    for name in ("Ava", "Ben", "Cleo", "Dan"):
        assert name in text
    assert text.count(">Deactivate</button>") == 3
    assert text.count(">Reactivate</button>") == 1


def test_admin_adds_an_ai_employee(client, acme):
    response = signed_in(client, "admin").post(
        reverse("usage:employee_create", args=["acme"]),
        {"name": "Cleo", "cost_center": "Sales"},
        follow=True,
    )

    cleo = AIEmployee.objects.get(name="Cleo")
    assert (cleo.organization, cleo.cost_center, cleo.inbound_capable) == (acme, "Sales", False)
    assert response.redirect_chain == [(reverse("usage:employees", args=["acme"]), 302)]
    assert "Cleo is active." in response.content.decode()
    assert "1 of 15 AI employees active" in response.content.decode()


def test_a_nameless_employee_is_refused_with_the_form_shown_again(client, acme):
    response = signed_in(client, "admin").post(
        reverse("usage:employee_create", args=["acme"]), {"name": "", "cost_center": "Sales"}
    )

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert 'value="Sales"' in response.content.decode()
    assert not AIEmployee.objects.exists()


def test_at_the_quota_a_new_employee_is_refused_with_the_ways_out(client, now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=organization, name=name)

    response = signed_in(client, "admin").post(
        reverse("usage:employee_create", args=["tiny"]), {"name": "Dan"}
    )

    text = response.content.decode()
    assert response.status_code == 409
    assert "3 of 3 AI employees active: the Starter plan allows 3." in text
    assert f'<a class="way-out" href="{reverse("billing:plans", args=["tiny"])}">Upgrade' in text
    employees_url = reverse("usage:employees", args=["tiny"])
    assert f'<a class="way-out" href="{employees_url}#employee-list">Deactivate' in text
    assert 'value="Dan"' in text  # what was typed is kept
    assert not AIEmployee.objects.filter(name="Dan").exists()


def test_admin_deactivates_and_reactivates_an_employee(client, staff_and_numbers):
    ava = staff_and_numbers.ava
    signed_in(client, "admin")

    deactivated = client.post(url_of("employee_deactivate", "acme", staff_and_numbers), follow=True)
    ava.refresh_from_db()
    assert not ava.is_active
    assert "Ava is deactivated" in deactivated.content.decode()
    assert "0 of 15 AI employees active" in deactivated.content.decode()

    reactivated = client.post(
        reverse("usage:employee_reactivate", args=["acme", ava.pk]), follow=True
    )
    ava.refresh_from_db()
    assert ava.is_active
    assert "Ava is active again." in reactivated.content.decode()


def test_reactivating_at_the_quota_is_refused_with_the_ways_out(client, now):
    catalog_services.catalog_load()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for name in ("Ava", "Ben", "Cleo"):
        EmployeeFactory(organization=organization, name=name)
    dan = EmployeeFactory(organization=organization, name="Dan", is_active=False)

    response = signed_in(client, "admin").post(
        reverse("usage:employee_reactivate", args=["tiny", dan.pk]), follow=True
    )

    text = response.content.decode()
    assert "3 of 3 AI employees active" in text
    assert "Upgrade your plan</a>" in text
    assert "Deactivate an AI employee</a>" in text
    dan.refresh_from_db()
    assert not dan.is_active


# --- phone numbers ------------------------------------------------------------------------


def test_numbers_page_lists_numbers_with_fees_and_who_answers(client, staff_and_numbers):
    text = signed_in(client, "admin").get(reverse("usage:phone_numbers", args=["acme"]))
    text = text.content.decode()

    assert "1 of 10 phone numbers in use · the first 3 are free" in text
    assert "+14155550100" in text
    assert "$1.75" in text  # $1.50 + $0.25 regulatory fee
    assert "Free" in text  # within the plan's free numbers this month
    assert f'<option value="{staff_and_numbers.ava.pk}" selected>Ava</option>' in text


def test_release_warns_that_the_number_cannot_be_reclaimed_nor_the_month_refunded(
    client, staff_and_numbers
):
    signed_in(client, "admin")

    listing = client.get(reverse("usage:phone_numbers", args=["acme"])).content.decode()
    confirmation = client.get(url_of("number_release", "acme", staff_and_numbers))

    assert "Cannot be reclaimed; no refund for the partial month" in listing
    text = confirmation.content.decode()
    assert "A released number cannot be reclaimed." in text
    assert "There is no refund for the partial month" in text
    assert "Release +14155550100 permanently" in text
    assert PhoneNumber.objects.get().released_at is None  # asking changes nothing


def test_admin_releases_a_number_and_it_is_shown_as_released(client, staff_and_numbers, now):
    response = signed_in(client, "admin").post(
        url_of("number_release", "acme", staff_and_numbers), follow=True
    )

    number = PhoneNumber.objects.get()
    assert number.released_at == now
    text = response.content.decode()
    assert "+14155550100 is released" in text
    assert '<span class="pill">Released</span><br><small class="nowrap">16 Mar 2026</small>' in text
    assert "Release…" not in text
    assert "0 of 10 phone numbers in use" in text


def test_a_released_number_cannot_be_provisioned_again(client, staff_and_numbers):
    services.phone_number_release(phone_number=staff_and_numbers.number)

    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["acme"]),
        {"number": "+14155550100", "number_type": "local", "country": "US"},
    )

    assert response.status_code == 409
    assert "was released by this organization and cannot be provisioned again" in (
        response.content.decode()
    )


def test_admin_provisions_a_number_for_an_employee(client, staff_and_numbers):
    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["acme"]),
        {
            "number": "+14155550111",
            "number_type": "local",
            "country": "us",
            "region": "CA",
            "vanity": "on",
            "employee": staff_and_numbers.ava.pk,
        },
        follow=True,
    )

    number = PhoneNumber.objects.get(number="+14155550111")
    assert (number.country, number.region, number.is_vanity) == ("US", "CA", True)
    assert number.employee == staff_and_numbers.ava
    assert str(number.monthly_fee) == "$6.75"
    assert "+14155550111 is provisioned at $6.75 a month" in response.content.decode()


def test_a_malformed_number_is_refused_with_the_form_shown_again(client, staff_and_numbers):
    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["acme"]),
        {"number": "555-0100", "number_type": "local", "country": "USA"},
    )

    text = response.content.decode()
    assert response.status_code == 400
    assert "Enter the number in E.164 form" in text
    assert "Enter a two-letter country code" in text
    assert PhoneNumber.objects.count() == 1


def test_provisioning_beyond_the_plan_limit_is_refused_with_the_ways_out(client, now):
    catalog_services.catalog_load()
    PhoneNumberRateFactory()
    organization = OrganizationFactory(slug="tiny")
    subscribe(organization, "starter-monthly", now)
    MembershipFactory(organization=organization, user=UserFactory(username="admin"))
    for number in ("+14155550100", "+14155550101"):
        services.phone_number_provision(
            organization=organization, number=number, number_type="local", country="US"
        )

    response = signed_in(client, "admin").post(
        reverse("usage:number_provision", args=["tiny"]),
        {"number": "+14155550102", "number_type": "local", "country": "US"},
    )

    text = response.content.decode()
    assert response.status_code == 409
    assert "2 of 2 phone numbers in use: the Starter plan allows 2." in text
    assert "Release a number</a>" in text
    assert f'href="{reverse("billing:plans", args=["tiny"])}">Upgrade your plan</a>' in text
    assert PhoneNumber.objects.count() == 2


def test_admin_assigns_a_number_to_another_employee_and_unassigns_it(client, staff_and_numbers):
    cleo = EmployeeFactory(organization=staff_and_numbers.ava.organization, name="Cleo")
    signed_in(client, "admin")
    url = url_of("number_assign", "acme", staff_and_numbers)

    assigned = client.post(url, {"employee": cleo.pk}, follow=True)
    assert PhoneNumber.objects.get().employee == cleo
    assert "Calls to +14155550100 now ring Cleo." in assigned.content.decode()

    client.post(url, {"employee": ""})
    assert PhoneNumber.objects.get().employee is None


def test_a_number_cannot_be_assigned_to_another_organizations_employee(client, staff_and_numbers):
    stranger = EmployeeFactory(name="Stranger")

    response = signed_in(client, "admin").post(
        url_of("number_assign", "acme", staff_and_numbers), {"employee": stranger.pk}, follow=True
    )

    assert "Choose an active AI employee that answers calls." in response.content.decode()
    assert PhoneNumber.objects.get().employee == staff_and_numbers.ava
