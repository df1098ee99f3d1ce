import datetime as dt
import functools
import operator
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from djmoney.money import Money

from billing.invoicing import services as invoicing_services
from billing.lifecycle import renewals
from billing.models import Feature, Membership, Organization, Plan, Subscription
from billing.subscriptions import services as subscription_services
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


class StaffFactory(UserFactory):
    """A staff account in the given roles (`roles=["Finance"]`; Support unless told): the
    permission groups the roles migration made."""

    class Meta:
        skip_postgeneration_save = True

    is_staff = True

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        names = ["Support"] if extracted is None else extracted
        self.groups.add(*(role_group(name) for name in names))


def role_group(name: str):
    """The role's permission group as the roles migration made it, made again from the same
    lists when a browser test's database flush has removed it."""
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    from billing.accounts.roles import ROLE_PERMISSIONS, Role

    group, created = Group.objects.get_or_create(name=name)
    if created:
        labels = [label.split(".") for label in ROLE_PERMISSIONS[Role(name)]]
        group.permissions.set(
            Permission.objects.filter(
                functools.reduce(
                    operator.or_,
                    (Q(content_type__app_label=app, codename=code) for app, code in labels),
                )
            )
        )
    return group


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
    """Subscribes through the service, so every subscription is one the product could make:
    a paying one by default (`trial=True` starts the plan's trial, if it has one)."""

    class Meta:
        model = Subscription

    organization = factory.SubFactory(OrganizationFactory)
    plan = factory.SubFactory(PlanFactory)
    start = None
    trial = False
    now = None

    @classmethod
    def _create(cls, model_class, **kwargs):
        now = kwargs.pop("now") or dt.datetime.now(dt.UTC)
        return subscription_services.subscription_create(now=now, **kwargs)


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
    from usage.metering import services as metering

    report = metering.CallReport(
        call_id=call_id or f"call-{employee.pk}-{connected_at.isoformat()}-{seconds}",
        organization=employee.organization.slug,
        employee_id=employee.pk,
        direction=direction,
        connected_at=connected_at,
        ended_at=connected_at + dt.timedelta(seconds=seconds),
    )
    return metering.calls_record(reports=[report], now=report.ended_at)


class TaxRateFactory(factory.django.DjangoModelFactory):
    """A US-wide sales tax on every charge."""

    class Meta:
        model = "billing.TaxRate"
        django_get_or_create = ("name", "country", "region")

    name = "Sales tax"
    country = "US"
    region = ""
    percentage = Decimal("8.875")
    applies_to = factory.LazyFunction(
        lambda: [
            "subscription",
            "proration",
            "overage_calls",
            "overage_storage",
            "phone_number",
            "addon",
            "adjustment",
        ]
    )


class CouponFactory(factory.django.DjangoModelFactory):
    """10% off the next invoice."""

    class Meta:
        model = "billing.Coupon"

    code = factory.Sequence(lambda n: f"spring-{n}")
    name = "Spring promotion"
    percent_off = Decimal("10")
    duration = "once"


FEB_16 = dt.datetime(2026, 2, 16, tzinfo=dt.UTC)
MAR_16 = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.UTC)


def renewal_ready(*, organization=None, extra_numbers=0, start=FEB_16):
    """A month of Professional about to renew, with one of everything an invoice can show:
    the next month's fee, call overage, phone numbers (three free, one vanity, one pro-rated,
    plus `extra_numbers`), a 10% coupon, two taxes and $25.00 of credit.

    Subscribed at `start` (which issued the first invoice); returns the subscription.
    """
    from usage import services as usage_services

    organization = organization or OrganizationFactory(
        name="Acme Dental",
        address_line1="350 Fifth Avenue",
        address_line2="Suite 4200",
        city="New York",
        region="NY",
        postal_code="10118",
        tax_id="US 98-7654321",
    )
    plan = PlanFactory(max_phone_numbers=None)
    subscription = SubscriptionFactory(organization=organization, plan=plan, start=start, now=start)
    PhoneNumberRateFactory()
    employee = EmployeeFactory(organization=organization, name="Ava", created_at=start)

    def provision(number, now, vanity=False):
        usage_services.phone_number_provision(
            organization=organization,
            number=number,
            number_type="local",
            country="US",
            vanity=vanity,
            employee=employee,
            now=now,
        )

    # Numbers are unique among organizations: the organization's id keeps them apart.
    exchange = f"{organization.pk % 1000:03d}"
    for n in range(4 + extra_numbers):
        provision(number=f"+1415{exchange}{n:04d}", now=start)
    provision(number=f"+1800{exchange}7867", vanity=True, now=start)
    provision(number=f"+1212{exchange}0123", now=start + dt.timedelta(days=13, hours=12))
    # 182,400 s: 2,400 s beyond the 180,000 s included, in calls of at most six hours.
    for n, offset in enumerate(range(0, 182_400, 6 * 3600)):
        record_call(
            employee=employee,
            seconds=min(6 * 3600, 182_400 - offset),
            connected_at=start + dt.timedelta(days=1 + n),
        )
    TaxRateFactory()
    TaxRateFactory(
        name="Telecom regulatory fee",
        percentage=Decimal("2.5"),
        applies_to=["phone_number", "overage_calls"],
    )
    invoicing_services.discount_apply(organization=organization, coupon=CouponFactory(), now=start)
    invoicing_services.balance_credit_grant(
        organization=organization,
        kind="promotional",
        amount=Money(Decimal("25.00"), organization.currency),
        description="Welcome credit",
        now=start,
    )
    return subscription


def renewed_invoice(*, organization=None, extra_numbers=0, start=FEB_16, renewed_at=MAR_16):
    """The invoice renewing the month `renewal_ready` makes, at `renewed_at`."""
    subscription = renewal_ready(
        organization=organization, extra_numbers=extra_numbers, start=start
    )
    [invoice] = renewals.subscription_renew_if_needed(
        subscription_id=subscription.pk, now=renewed_at
    )
    return invoice


def card(organization, number="4242424242424242", *, expiry=None, make_default=False, now=None):
    """Add a sandbox card the way the payment-methods page does: validated, then listed.
    `expiry` is (month, year); the same number twice needs two expiries (two cards)."""
    import dataclasses

    from payments import services as payment_services
    from payments.gateways.sandbox import SandboxGateway

    attached = SandboxGateway.attach_card(number=number)
    if expiry is not None:
        attached = dataclasses.replace(attached, exp_month=expiry[0], exp_year=expiry[1])
    return payment_services.payment_method_add(
        organization=organization,
        processor="sandbox",
        attached=attached,
        make_default=make_default,
        now=now,
    )


def declined_invoice(organization, *, now=None):
    """The organization's open invoice after one charge to a card every charge of which is
    declined (4000 0000 0000 0341): the subscription is past due and a retry is scheduled."""
    from payments import services as payment_services

    card(organization, "4000000000000341", now=now)
    invoice = organization.invoices.get(status="open")
    payment_services.invoice_collect(invoice=invoice, now=now)
    return invoice


def sign_in(client, user):
    """Sign `user` in on the test `client` as the sign-in pages would: for staff, with the
    second factor verified (an authenticator app, and its code given)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    if user.is_staff:
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="Authenticator app", defaults={"confirmed": True}
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client
