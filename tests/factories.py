import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from djmoney.money import Money

from billing import services
from billing.models import Feature, Membership, Organization, Plan, Subscription
from usage.models import AIEmployee, PhoneNumberRate

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


class EmployeeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AIEmployee

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    cost_center = "Support"
    created_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))


class PhoneNumberRateFactory(factory.django.DjangoModelFactory):
    """US local numbers: $1.50 a month, $0.25 regulatory fee, $5.00 more for a vanity number."""

    class Meta:
        model = PhoneNumberRate
        django_get_or_create = ("number_type", "country", "region")

    number_type = PhoneNumberRate.Type.LOCAL
    country = "US"
    region = ""
    monthly_price = Money(Decimal("1.50"), "USD")
    regulatory_fee = Money(Decimal("0.25"), "USD")
    vanity_surcharge = Money(Decimal("5.00"), "USD")


def record_call(*, employee, seconds, connected_at, call_id=None, direction="outbound"):
    """Report one finished call of `seconds` through the service, as the platform would."""
    from usage import services as usage_services

    report = usage_services.CallReport(
        call_id=call_id or f"call-{employee.pk}-{connected_at.isoformat()}-{seconds}",
        organization=employee.organization.slug,
        employee_id=employee.pk,
        direction=direction,
        connected_at=connected_at,
        ended_at=connected_at + dt.timedelta(seconds=seconds),
    )
    return usage_services.calls_record(reports=[report], now=report.ended_at)
