"""Promotion codes redeemed by administrators, and referral credits: the rules, the pages,
and bad input refused with the reason."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from djmoney.money import Money

from billing.errors import BillingError
from billing.invoicing import selectors as invoicing_selectors
from billing.invoicing import services as invoicing_services
from billing.models import BalanceEntry, Coupon, Discount, Invoice, Referral
from tests.factories import (
    CouponFactory,
    MembershipFactory,
    OrganizationFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    sign_in,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 16, 10, tzinfo=dt.UTC)


def promotion(**fields):
    return CouponFactory(is_promotion=True, **fields)


def redeem(organization, code, now=NOW):
    return invoicing_services.promotion_code_redeem(organization=organization, code=code, now=now)


def refusal(call) -> str:
    with pytest.raises(BillingError) as refused:
        call()
    return refused.value.code


# --- promotion codes -------------------------------------------------------------------------


def test_a_promotion_code_becomes_the_organizations_discount(now):
    # Given a running promotion with two redemptions left
    coupon = promotion(
        code="spring-26",
        redeemable_from=NOW - dt.timedelta(days=1),
        redeemable_until=NOW + dt.timedelta(days=1),
        max_redemptions=2,
    )
    organization = OrganizationFactory()

    # When an administrator types it, in other letters and with spaces
    discount = redeem(organization, "  SPRING-26 ")

    # Then it is the organization's discount, counted once
    assert (discount.organization, discount.coupon) == (organization, coupon)
    assert Coupon.objects.get().redemptions == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"redeemable_from": NOW + dt.timedelta(hours=1)}, "promotion_not_started"),
        ({"redeemable_until": NOW}, "promotion_ended"),
        ({"is_active": False}, "promotion_ended"),
        ({"is_promotion": False}, "promotion_code_unknown"),
        ({"max_redemptions": 0}, "promotion_limit_reached"),
        ({"percent_off": None, "amount_off": Money(10, "EUR")}, "currency_mismatch"),
    ],
)
def test_a_promotion_that_does_not_run_for_the_organization_is_refused(fields, code):
    CouponFactory(code="spring-26", **({"is_promotion": True} | fields))
    organization = OrganizationFactory()

    assert refusal(lambda: redeem(organization, "spring-26")) == code
    assert not Discount.objects.exists()
    assert Coupon.objects.get().redemptions == 0


def test_an_unknown_code_is_refused_naming_it():
    with pytest.raises(BillingError) as refused:
        redeem(OrganizationFactory(), "nope")

    assert refused.value.message == "There is no promotion with the code 'nope'."


def test_a_promotion_is_redeemed_once_per_organization():
    promotion(code="spring-26")
    organization = OrganizationFactory()
    discount = redeem(organization, "spring-26")
    discount.ended_at = NOW  # used up on an invoice
    discount.save()

    assert refusal(lambda: redeem(organization, "spring-26")) == "promotion_already_redeemed"


def test_one_discount_at_a_time():
    promotion(code="spring-26")
    promotion(code="summer-26")
    organization = OrganizationFactory()
    redeem(organization, "spring-26")

    assert refusal(lambda: redeem(organization, "summer-26")) == "discount_exists"
    assert Coupon.objects.get(code="summer-26").redemptions == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_redemption_limit_holds_under_concurrency():
    # Given a promotion for 5 organizations, and 16 racing for it
    promotion(code="spring-26", max_redemptions=5)
    organizations = [OrganizationFactory() for _ in range(16)]

    def attempt(organization):
        try:
            redeem(organization, "spring-26")
            return "redeemed"
        except BillingError as error:
            return error.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, organizations))

    assert outcomes.count("redeemed") == 5 == Discount.objects.count()
    assert outcomes.count("promotion_limit_reached") == 11
    assert Coupon.objects.get().redemptions == 5


# --- referrals -------------------------------------------------------------------------------


def subscribed(now):
    """An organization on Professional whose first invoice is open."""
    return SubscriptionFactory(start=now, now=now).organization


def pay_first_invoice(organization, now):
    invoice = Invoice.objects.filter(organization=organization).earliest("issued_at")
    return invoicing_services.invoice_mark_paid(
        invoice=invoice, paid_at=now, reference="ch_1", method_description="Visa ending 4242"
    )


def referral_credits():
    return sorted(
        (entry.organization.name, entry.amount, entry.description)
        for entry in BalanceEntry.objects.filter(kind="referral")
    )


def test_both_organizations_are_credited_once_when_the_referred_one_pays_its_first_invoice(now):
    # Given Acme referred Brightsmile, whose first invoice is open
    acme = OrganizationFactory(name="Acme")
    brightsmile = SubscriptionFactory(
        organization__name="Brightsmile", start=now, now=now
    ).organization
    invoicing_services.referral_record(referrer=acme, referred=brightsmile, now=now)
    assert referral_credits() == []

    # When Brightsmile pays it (and the payment is recorded twice)
    pay_first_invoice(brightsmile, now)
    pay_first_invoice(brightsmile, now)

    # Then each has a $50 referral credit on its balance, once, recorded in the ledger
    assert referral_credits() == [
        ("Acme", Money(50, "USD"), "Referral credit: Brightsmile paid its first invoice"),
        ("Brightsmile", Money(50, "USD"), "Referral credit: welcome from Acme"),
    ]
    assert invoicing_selectors.organization_balance(organization=acme) == Money(50, "USD")
    assert Referral.objects.get().credited_at == now


def test_the_credit_amounts_are_settings(now, settings):
    settings.REFERRAL_CREDIT_REFERRER = Decimal("30")
    settings.REFERRAL_CREDIT_REFERRED = Decimal("15.50")
    acme, brightsmile = OrganizationFactory(name="Acme"), subscribed(now)
    invoicing_services.referral_record(referrer=acme, referred=brightsmile, now=now)

    pay_first_invoice(brightsmile, now)

    assert [amount for _, amount, _ in referral_credits()] == [
        Money(30, "USD"),
        Money(Decimal("15.50"), "USD"),
    ]


def test_self_referral_repeats_and_late_referrals_are_refused(now):
    acme, brightsmile, cityvet = OrganizationFactory(), subscribed(now), subscribed(now)
    invoicing_services.referral_record(referrer=acme, referred=brightsmile, now=now)
    pay_first_invoice(cityvet, now)

    def refer(referrer, referred):
        return lambda: invoicing_services.referral_record(
            referrer=referrer, referred=referred, now=now
        )

    assert refusal(refer(acme, acme)) == "self_referral"
    assert refusal(refer(cityvet, brightsmile)) == "already_referred"
    assert refusal(refer(acme, cityvet)) == "referral_too_late"
    assert Referral.objects.count() == 1


def test_a_referral_link_stands_for_its_organization_and_cannot_be_made_up():
    acme = OrganizationFactory(slug="acme")
    code = invoicing_selectors.referral_code(organization=acme)

    assert invoicing_selectors.referral_organization(code=code) == acme
    assert invoicing_selectors.referral_organization(code="acme") is None
    assert invoicing_selectors.referral_organization(code=code.replace("acme", "rival")) is None


# --- the pages -------------------------------------------------------------------------------


@pytest.fixture
def admin(now):
    organization = subscribed(now)
    user = UserFactory(username="admin")
    MembershipFactory(organization=organization, user=user)
    return user, organization


def test_an_administrator_redeems_a_code_on_the_invoices_page(client, admin):
    user, organization = admin
    promotion(code="spring-26", name="Spring promotion")
    sign_in(client, user)

    response = client.post(
        reverse("billing:promotion_redeem", args=[organization.slug]), {"code": "spring-26"}
    )

    assert response.status_code == 302
    page = client.get(reverse("billing:invoices", args=[organization.slug])).text
    assert "Spring promotion (10% off, once) is yours" in page


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "This field is required."),
        ("x" * 41, "at most 40 characters"),
        ("nope", "There is no promotion with the code"),
    ],
)
def test_bad_codes_are_refused_with_the_reason(client, admin, code, message):
    user, organization = admin
    sign_in(client, user)

    response = client.post(
        reverse("billing:promotion_redeem", args=[organization.slug]), {"code": code}
    )

    assert response.status_code == 400
    assert message in " ".join(response.context["promotion_form"].errors["code"])
    assert "Promotion code: " in response.text
    assert not Discount.objects.exists()


@pytest.mark.parametrize("username", ["member", "support"])
def test_only_administrators_redeem(client, admin, username):
    _, organization = admin
    promotion(code="spring-26")
    MembershipFactory(organization=organization, user=UserFactory(username="member"), role="member")
    StaffFactory(username="support")
    sign_in(client, UserFactory._meta.model.objects.get(username=username))

    response = client.post(
        reverse("billing:promotion_redeem", args=[organization.slug]), {"code": "spring-26"}
    )

    assert response.status_code == 403
    assert not Discount.objects.exists()


def test_an_administrator_joins_through_a_referral_link(client, admin, now):
    user, organization = admin
    acme = OrganizationFactory(name="Acme")
    sign_in(client, user)
    link = reverse("billing:referral", args=[invoicing_selectors.referral_code(organization=acme)])
    page = client.get(reverse("billing:invoices", args=[organization.slug])).text
    assert "/billing/referrals/join/" in page  # its own link to share

    response = client.post(link, {"organization": organization.slug})

    assert response.status_code == 302
    assert Referral.objects.get().referrer == acme
    assert "joined through Acme" in client.get(response["Location"]).text


def test_a_referral_link_refuses_self_referral_and_others_organizations(client, admin):
    user, organization = admin
    sign_in(client, user)
    own = reverse(
        "billing:referral", args=[invoicing_selectors.referral_code(organization=organization)]
    )
    stranger = OrganizationFactory()

    to_self = client.post(own, {"organization": organization.slug})
    to_other = client.post(own, {"organization": stranger.slug})
    made_up = client.get(reverse("billing:referral", args=["acme:forged"]))

    assert to_self.status_code == 400 and "cannot refer itself" in to_self.text
    assert to_other.status_code == 400 and "Select a valid choice" in to_other.text
    assert made_up.status_code == 404
    assert not Referral.objects.exists()
