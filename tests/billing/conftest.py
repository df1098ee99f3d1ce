"""The subscription lifecycle's pages are tested with: Acme Dental on Starter since
1 Apr 2026, seen at the middle of April, beside Professional; the pages' URLs, and the
changes (a scheduled downgrade, a cancellation, more staff) the tests start from."""

import pytest
import time_machine
from django.urls import reverse

from billing.lifecycle import services as lifecycle_services
from billing.subscriptions import services as subscription_services
from tests.factories import (
    EmployeeFactory,
    FeatureFactory,
    OrganizationFactory,
    PhoneNumberRateFactory,
    PlanFactory,
    SubscriptionFactory,
)
from tests.helpers import APRIL, MID_APRIL, people_of, starter, subscription_of
from usage import services as usage_services


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


def schedule_downgrade(acme, catalog):
    subscription = subscription_of(acme)
    lifecycle_services.subscription_plan_change(
        subscription=subscription, plan=catalog["professional"]
    )
    lifecycle_services.subscription_plan_change(
        subscription=subscription_of(acme), plan=catalog["starter"], now=MID_APRIL
    )


def cancel_subscription(acme, catalog):
    subscription_services.subscription_cancel(
        subscription=subscription_of(acme), reason="Too expensive"
    )


PAGES = {
    "plan_change": lambda acme, catalog: reverse(
        "billing:plan_change", args=[acme.slug, catalog["professional"].pk]
    ),
    "cancel": lambda acme, catalog: reverse("billing:cancel", args=[acme.slug]),
}


def professional_with_staff(acme, catalog, employees=5, numbers=0):
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
