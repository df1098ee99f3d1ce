import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from djmoney.money import Money

from billing import services
from billing.models import Feature, Membership, Organization, Plan, Subscription

PASSWORD = "a-long-test-password"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    first_name = factory.LazyAttribute(lambda user: user.username.capitalize())
    password = factory.django.Password(PASSWORD)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    billing_emails = factory.LazyAttribute(lambda org: f"billing@{org.slug}.example.com")
    country = "US"
    currency = "USD"
    timezone = "UTC"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.ADMIN


class FeatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feature
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"feature_{n}")
    name = factory.LazyAttribute(lambda feature: feature.code.replace("_", " ").capitalize())
    category = Feature.Category.CORE


class PlanFactory(factory.django.DjangoModelFactory):
    """Professional-like monthly plan in USD."""

    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = "Professional"
    tier = Plan.Tier.PROFESSIONAL
    interval = Plan.Interval.MONTH
    price = Money(Decimal("199.00"), "USD")
    included_call_seconds = 180_000
    max_active_employees = 15
    max_phone_numbers = 10
    free_phone_numbers = 3
    storage_gb = 50
    api_calls_per_month = 100_000
    max_integrations = 5
    overage_policy = Plan.OveragePolicy.CHARGE
    overage_rate_per_second = Money(Decimal("0.004"), "USD")
    overage_rate_per_gb = Money(Decimal("0.25"), "USD")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """Subscribes through the service, so every subscription is one the product could make."""

    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    plan = factory.SubFactory(PlanFactory)
    start = None
    now = None

    @classmethod
    def _create(cls, model_class, **kwargs):
        now = kwargs.pop("now") or dt.datetime.now(dt.UTC)
        return services.subscription_create(now=now, **kwargs)
