from decimal import Decimal

import pytest
from django.db import IntegrityError
from djmoney.money import Money

from billing.catalog import services as catalog_services
from billing.errors import BillingError
from billing.models import Feature, Plan, Subscription
from billing.subscriptions import selectors as subscription_selectors
from billing.subscriptions import services as subscription_services
from tests.factories import (
    OrganizationFactory,
    PlanFactory,
    StaffFactory,
    SubscriptionFactory,
)
from tests.helpers import utc

pytestmark = pytest.mark.django_db


class TestSubscriptionCreate:
    def test_anchors_on_local_midnight_of_the_start_day(self, now):
        organization = OrganizationFactory(timezone="America/New_York")

        subscription = subscription_services.subscription_create(
            organization=organization, plan=PlanFactory(), start=utc(2026, 3, 15, 2), now=now
        )

        # 02:00 UTC on 15 Mar is still 14 Mar in New York.
        assert subscription.anchor == utc(2026, 3, 14, 4)
        assert subscription.billing_period.label(organization.tzinfo) == "14 Mar – 13 Apr 2026"

    def test_current_periods_contain_now_for_a_backdated_start(self, now):
        subscription = SubscriptionFactory(start=utc(2025, 11, 20), now=now)

        assert now in subscription.billing_period
        assert subscription.current_period_start == utc(2026, 2, 20)
        assert subscription.usage_period == subscription.billing_period

    def test_annual_plan_bills_yearly_but_counts_usage_monthly_and_commits_for_a_year(self, now):
        plan = PlanFactory(interval=Plan.Interval.YEAR, price=Money(Decimal("2029.80"), "USD"))

        subscription = SubscriptionFactory(plan=plan, start=utc(2026, 1, 10), now=now)

        assert (subscription.current_period_start, subscription.current_period_end) == (
            utc(2026, 1, 10),
            utc(2027, 1, 10),
        )
        assert (subscription.usage_period_start, subscription.usage_period_end) == (
            utc(2026, 3, 10),
            utc(2026, 4, 10),
        )
        assert subscription.commitment_ends_at == utc(2027, 1, 10)

    def test_refuses_a_second_live_subscription(self, now):
        subscription = SubscriptionFactory(now=now)

        with pytest.raises(BillingError) as refused:
            SubscriptionFactory(organization=subscription.organization, now=now)

        assert refused.value.code == "already_subscribed"

    def test_database_refuses_a_second_live_subscription_too(self, now):
        subscription = SubscriptionFactory(now=now)
        twin = Subscription.objects.get(pk=subscription.pk)
        twin.pk = None

        with pytest.raises(IntegrityError):
            twin.save()

    def test_refuses_a_plan_in_another_currency(self, now):
        organization = OrganizationFactory(currency="EUR")

        with pytest.raises(BillingError) as refused:
            SubscriptionFactory(organization=organization, now=now)

        assert refused.value.code == "currency_mismatch"

    def test_refuses_another_organizations_custom_plan(self, now):
        custom = PlanFactory(is_public=False, organization=OrganizationFactory())

        with pytest.raises(BillingError) as refused:
            SubscriptionFactory(plan=custom, now=now)

        assert refused.value.code == "plan_not_offered"


class TestSubscriptionSetStatus:
    def test_records_who_when_and_why(self, now, mailoutbox):
        subscription = SubscriptionFactory(now=now)
        staff = StaffFactory(username="support")

        subscription_services.subscription_set_status(
            subscription=subscription,
            status="past_due",
            reason="Card declined",
            actor=staff,
            now=now,
        )

        changes = subscription_selectors.subscription_status_changes(subscription=subscription)
        assert [(c.previous, c.status, c.actor, c.reason) for c in changes] == [
            ("", "Active", "system", "Subscribed"),
            ("Active", "Past due", "support", "Card declined"),
        ]
        assert changes[-1].at == now

    def test_notifies_the_billing_contacts_after_commit(
        self, now, mailoutbox, django_capture_on_commit_callbacks
    ):
        subscription = SubscriptionFactory(now=now)

        with django_capture_on_commit_callbacks(execute=True):
            subscription_services.subscription_set_status(
                subscription=subscription, status="past_due", reason="Card declined", now=now
            )

        assert len(mailoutbox) == 1
        assert mailoutbox[0].to == [f"billing@{subscription.organization.slug}.example.com"]
        assert "past due" in mailoutbox[0].subject
        assert "Card declined" in mailoutbox[0].body

    def test_no_email_when_the_transaction_does_not_commit(
        self, now, mailoutbox, django_capture_on_commit_callbacks
    ):
        subscription = SubscriptionFactory(now=now)

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            subscription_services.subscription_set_status(
                subscription=subscription, status="past_due", reason="Card declined", now=now
            )

        assert len(callbacks) == 1
        assert mailoutbox == []

    def test_cancellation_records_the_end(self, now):
        subscription = SubscriptionFactory(now=now)

        subscription = subscription_services.subscription_set_status(
            subscription=subscription, status="canceled", reason="Closing the business", now=now
        )

        assert subscription.ended_at == now
        assert not subscription.is_live

    @pytest.mark.parametrize(("start", "target"), [("active", "suspended"), ("active", "trialing")])
    def test_refuses_transitions_the_lifecycle_does_not_have(self, now, start, target):
        subscription = SubscriptionFactory(now=now)

        with pytest.raises(BillingError) as refused:
            subscription_services.subscription_set_status(
                subscription=subscription, status=target, reason="x", now=now
            )

        assert refused.value.code == "invalid_status_transition"
        subscription.refresh_from_db()
        assert subscription.status == "active"


class TestPlanNewVersion:
    def test_new_version_replaces_the_offer_and_subscribers_keep_theirs(self, now):
        subscription = SubscriptionFactory(now=now)
        old = subscription.plan
        old.features.add(Feature.objects.create(code="core_calling", name="Core", category="core"))

        new = catalog_services.plan_new_version(
            plan=old, changes={"price": Money(Decimal("219.00"), "USD")}
        )

        old.refresh_from_db()
        subscription.refresh_from_db()
        assert (new.code, new.version, new.price) == (old.code, 2, Money(Decimal("219.00"), "USD"))
        assert list(new.features.values_list("code", flat=True)) == ["core_calling"]
        assert new.is_available and not old.is_available
        assert subscription.plan == old
        assert old.price == Money(Decimal("199.00"), "USD")


class TestCatalogLoad:
    def test_loads_the_demo_catalog_with_annual_plans_at_15_percent_off(self):
        catalog_services.catalog_load()

        prices = dict(Plan.objects.values_list("code", "price"))
        assert prices == {
            "starter-monthly": Decimal("49.00"),
            "starter-annual": Decimal("499.80"),
            "professional-monthly": Decimal("199.00"),
            "professional-annual": Decimal("2029.80"),
            "business-monthly": Decimal("799.00"),
            "business-annual": Decimal("8149.80"),
        }
        starter = Plan.objects.get(code="starter-monthly")
        assert (starter.included_call_seconds, starter.max_active_employees) == (18_000, 3)
        assert (starter.max_phone_numbers, starter.free_phone_numbers) == (2, 1)
        assert starter.overage_policy == "block"
        assert Plan.objects.get(code="business-monthly").overage_cap == Money(1000, "USD")
        assert Feature.objects.count() == 11

    def test_is_idempotent(self):
        catalog_services.catalog_load()
        catalog_services.catalog_load()

        assert Plan.objects.count() == 6
        assert Feature.objects.count() == 11


def test_a_retired_plan_version_is_not_offered_to_new_subscriptions(now):
    plan = PlanFactory()
    catalog_services.plan_new_version(plan=plan, changes={"price": Money(Decimal("249.00"), "USD")})
    plan.refresh_from_db()

    with pytest.raises(BillingError) as refused:
        SubscriptionFactory(plan=plan, now=now)

    assert refused.value.code == "plan_not_offered"
    assert plan.history.first().history_change_reason == "Replaced by version 2"


def test_catalog_load_returns_the_latest_versions():
    first = {plan.code: plan for plan in catalog_services.catalog_load()}
    catalog_services.plan_new_version(
        plan=first["starter-monthly"], changes={"price": Money(59, "USD")}
    )

    again = {plan.code: plan for plan in catalog_services.catalog_load()}

    assert again["starter-monthly"].version == 2


class TestPlansInOtherCurrencies:
    @pytest.mark.parametrize("currency", ["EUR", "GBP"])
    @pytest.mark.parametrize("cap", [None, Decimal("400.00")])
    def test_plans_in_euros_and_pounds_with_or_without_a_cap(self, now, currency, cap):
        plan = catalog_services.plan_ensure(
            code=f"pro-{currency.lower()}",
            name="Professional",
            tier="professional",
            interval="month",
            price=Decimal("189.00"),
            currency=currency,
            overage_policy="charge",
            overage_rate_per_second=Decimal("0.004"),
            overage_rate_per_gb=Decimal("0.25"),
            overage_cap=cap,
            features=[],
        )

        plan.refresh_from_db()
        assert plan.price == Money(Decimal("189.00"), currency)
        assert plan.overage_cap == (Money(cap, currency) if cap is not None else None)
        organization = OrganizationFactory(currency=currency)
        subscription = SubscriptionFactory(organization=organization, plan=plan, now=now)
        assert subscription.invoices.get().total == Money(Decimal("189.00"), currency)

    def test_a_new_version_in_euros_without_a_cap(self, now):
        plan = PlanFactory(
            price=Money(Decimal("189.00"), "EUR"),
            overage_rate_per_second=Money(Decimal("0.004"), "EUR"),
            overage_rate_per_gb=Money(Decimal("0.25"), "EUR"),
        )

        new = catalog_services.plan_new_version(
            plan=plan, changes={"price": Money(Decimal("199.00"), "EUR")}
        )

        assert (new.price, new.overage_cap) == (Money(Decimal("199.00"), "EUR"), None)
