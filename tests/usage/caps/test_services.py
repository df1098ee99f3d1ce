"""Setting spend caps: what is accepted, what is refused (naming the field), and the record
of every change."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from djmoney.money import Money

from billing.errors import BillingError
from tests.factories import EmployeeFactory, PlanFactory, SubscriptionFactory, UserFactory
from usage.caps.services import spend_caps_replace
from usage.models import SpendCap, SpendCapChange

pytestmark = pytest.mark.django_db

MARCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def organization_on(now, **plan):
    return SubscriptionFactory(plan=PlanFactory(**plan), start=MARCH, now=now).organization


def replace(organization, *, overage_spend=None, employees=None, cost_centers=None, **kwargs):
    return spend_caps_replace(
        organization=organization,
        overage_spend=overage_spend,
        employees=employees or {},
        cost_centers=cost_centers or {},
        **kwargs,
    )


def test_every_change_is_recorded_with_who_and_when(now):
    # Given an administrator and an organization without caps
    organization = organization_on(now)
    employee = EmployeeFactory(organization=organization, name="Ava", cost_center="Sales")
    admin = UserFactory()

    # When they set three caps, then change one and remove another an hour later
    replace(
        organization,
        overage_spend=Decimal("50"),
        employees={employee.pk: 3_600},
        cost_centers={"Sales": 7_200},
        actor=admin,
        now=now,
    )
    later = now + dt.timedelta(hours=1)
    replace(
        organization,
        overage_spend=Decimal("80"),
        employees={employee.pk: 3_600},
        actor=admin,
        now=later,
    )

    # Then the caps are those, and the record says what changed, from what, by whom, when
    assert {str(cap) for cap in SpendCap.objects.all()} == {
        "Overage spend at most $80.00",
        "Ava: at most 3600 s of calls",
    }
    history = [
        (c.subject, c.previous_limit, c.new_limit, c.changed_by, c.changed_at)
        for c in SpendCapChange.objects.order_by("changed_at", "subject")
    ]
    assert history == [
        ("AI employee Ava", None, Decimal("3600"), admin, now),
        ("Cost center Sales", None, Decimal("7200"), admin, now),
        ("Overage spend", None, Decimal("50"), admin, now),
        ("Cost center Sales", Decimal("7200"), None, admin, later),
        ("Overage spend", Decimal("50"), Decimal("80"), admin, later),
    ]


def test_setting_the_same_caps_again_records_nothing(now):
    organization = organization_on(now)
    replace(organization, overage_spend=Decimal("50"), now=now)

    assert replace(organization, overage_spend=Decimal("50.00"), now=now) == []
    assert SpendCapChange.objects.count() == 1


def test_the_record_of_changes_is_append_only(now):
    organization = organization_on(now)
    (change,) = replace(organization, overage_spend=Decimal("50"), now=now)

    change.new_limit = Decimal("1")
    with pytest.raises(BillingError) as changed:
        change.save()
    with pytest.raises(BillingError) as deleted:
        change.delete()

    assert changed.value.code == deleted.value.code == "ledger_append_only"
    assert SpendCapChange.objects.get().new_limit == Decimal("50")


@pytest.mark.parametrize(
    ("plan", "overage_spend", "code"),
    [
        ({"overage_cap": Money(Decimal("100"), "USD")}, Decimal("100.01"), "cap_above_plan_cap"),
        ({"overage_policy": "block"}, Decimal("10"), "no_overage_to_cap"),
        ({}, Decimal("-1"), "cap_invalid"),
    ],
)
def test_an_overage_spend_cap_the_plan_does_not_allow_is_refused(now, plan, overage_spend, code):
    organization = organization_on(now, **plan)

    with pytest.raises(BillingError) as refused:
        replace(organization, overage_spend=overage_spend, now=now)

    assert refused.value.code == code
    assert refused.value.details == {"field": "overage_spend"}
    assert not SpendCap.objects.exists() and not SpendCapChange.objects.exists()


def test_a_cap_at_the_plan_cap_is_accepted(now):
    organization = organization_on(now, overage_cap=Money(Decimal("100"), "USD"))

    replace(organization, overage_spend=Decimal("100"), now=now)

    assert SpendCap.objects.get().overage_limit == Money(Decimal("100"), "USD")


def test_without_a_live_subscription_there_is_no_overage_to_cap(now):
    organization = EmployeeFactory().organization

    with pytest.raises(BillingError) as refused:
        replace(organization, overage_spend=Decimal("5"), now=now)

    assert refused.value.code == "no_subscription"


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("stranger", "employee_not_found"),
        ("Marketing", "cost_center_not_found"),
        ("zero", "cap_invalid"),
    ],
)
def test_call_time_caps_on_what_is_not_the_organizations_are_refused(now, target, code):
    # Given an organization with a Sales employee, and another organization's employee
    organization = organization_on(now)
    employee = EmployeeFactory(organization=organization, cost_center="Sales")
    stranger = EmployeeFactory()
    employees, cost_centers = {employee.pk: 600}, {"Sales": 600}
    if target == "stranger":
        employees[stranger.pk] = 600
    elif target == "zero":
        cost_centers["Sales"] = 0
    else:
        cost_centers[target] = 600

    # When the caps are set, then nothing is written
    with pytest.raises(BillingError) as refused:
        replace(organization, employees=employees, cost_centers=cost_centers, now=now)

    assert refused.value.code == code
    assert not SpendCap.objects.exists() and not SpendCapChange.objects.exists()


def test_the_changed_at_is_the_moment_of_the_change():
    moment = dt.datetime(2026, 3, 18, 9, 30, tzinfo=dt.UTC)
    with time_machine.travel(moment, tick=False):
        organization = organization_on(moment)
        replace(organization, overage_spend=Decimal("5"))

    assert SpendCapChange.objects.get().changed_at == moment
