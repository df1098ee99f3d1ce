"""The organization the usage pages are tested with: Acme Dental on Professional monthly,
its AI employees and phone number, and the URLs of its pages and actions."""

import datetime as dt
from types import SimpleNamespace

import pytest
from django.urls import reverse

from billing.catalog import services as catalog_services
from billing.models import Plan
from tests.factories import (
    EmployeeFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    SubscriptionFactory,
)
from tests.helpers import people_of, utc
from usage import services


def subscribe(organization, plan_code, now):
    """Subscribed on 16 Jan 2026: usage months start on the 16th, the current one on 16 Mar."""
    return SubscriptionFactory(
        organization=organization,
        plan=Plan.objects.get(code=plan_code),
        start=utc(2026, 1, 16),
        now=now,
    )


@pytest.fixture
def acme(now):
    """Acme Dental on Professional monthly (charge plan) with an admin and a member, a rival
    organization with its own admin, and a support person."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    subscribe(organization, "professional-monthly", now)
    people_of(organization)
    return organization


@pytest.fixture
def staff_and_numbers(acme, now):
    """Ava answers +14155550100; Ben is deactivated."""
    PhoneNumberRateFactory()
    ava = EmployeeFactory(organization=acme, name="Ava", cost_center="Front desk")
    ben = EmployeeFactory(
        organization=acme, name="Ben", is_active=False, deactivated_at=now - dt.timedelta(days=3)
    )
    number = services.phone_number_provision(
        organization=acme, number="+14155550100", number_type="local", country="US", employee=ava
    )
    return SimpleNamespace(ava=ava, ben=ben, number=number)


def url_of(name, slug, things):
    ids = {
        "employee_deactivate": [things.ava.pk],
        "employee_reactivate": [things.ben.pk],
        "number_assign": [things.number.pk],
        "number_release": [things.number.pk],
    }
    return reverse(f"usage:{name}", args=[slug, *ids.get(name, [])])
