from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from djmoney.money import Money

from billing.models import Plan
from tests.factories import OrganizationFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def test_price_of_a_plan_in_use_cannot_change(now):
    plan = SubscriptionFactory(now=now).plan
    plan.price = Money(Decimal("249.00"), "USD")

    with pytest.raises(ValidationError) as refused:
        plan.full_clean()

    assert refused.value.error_dict["__all__"][0].code == "plan_in_use"
    assert "price" in refused.value.messages[0]


def test_allowances_of_a_plan_in_use_cannot_change(now):
    plan = SubscriptionFactory(now=now).plan
    plan.included_call_seconds = 1

    with pytest.raises(ValidationError, match="included_call_seconds"):
        plan.full_clean()


def test_name_of_a_plan_in_use_may_change(now):
    plan = SubscriptionFactory(now=now).plan
    plan.name = "Professional (2026)"

    plan.full_clean()


def test_price_of_an_unused_plan_may_change():
    plan = PlanFactory()
    plan.price = Money(Decimal("249.00"), "USD")

    plan.full_clean()


def test_private_plan_must_name_its_organization():
    with pytest.raises(IntegrityError):
        PlanFactory(is_public=False, organization=None)


def test_public_plan_cannot_belong_to_one_organization():
    plan = PlanFactory.build(is_public=True, organization=OrganizationFactory())

    with pytest.raises(ValidationError, match="public plan"):
        plan.full_clean()


def test_plan_amounts_share_one_currency():
    with pytest.raises(IntegrityError):
        PlanFactory(overage_rate_per_second=Money(Decimal("0.004"), "EUR"))


def test_a_plan_cannot_give_more_free_numbers_than_it_allows():
    with pytest.raises(IntegrityError):
        PlanFactory(max_phone_numbers=2, free_phone_numbers=3)


def test_annual_plan_monthly_equivalent_is_rounded_half_up():
    plan = PlanFactory.build(interval=Plan.Interval.YEAR, price=Money(Decimal("499.80"), "USD"))

    assert plan.monthly_equivalent == Money(Decimal("41.65"), "USD")


def test_18000_seconds_are_300_minutes():
    assert PlanFactory.build(included_call_seconds=18_000).included_call_minutes == 300


def test_an_organization_time_zone_is_one_the_system_knows():
    organization = OrganizationFactory.build(timezone="Europe/Lisbon")
    organization.full_clean()

    organization.timezone = "Europe/Atlantis"
    with pytest.raises(ValidationError) as refused:
        organization.full_clean()

    assert refused.value.error_dict["timezone"][0].code == "invalid_choice"
