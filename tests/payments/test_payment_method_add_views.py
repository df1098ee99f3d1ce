"""Adding a payment method: a card or a bank account in the sandbox (refusals, typing
mistakes, secrets never shown again nor stored), and through Stripe's Payment Element."""

import re

import pytest
from django.db import connection
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from payments import services
from payments.gateways import AttachedMethod
from payments.models import PaymentMethod, StripeCustomer
from tests.helpers import messages_of, signed_in
from tests.payments.conftest import (
    ALWAYS_DECLINED,
    AMEX,
    MASTERCARD,
    bank_details,
    card_details,
    live_methods,
)

pytestmark = pytest.mark.django_db


# --- adding a card ------------------------------------------------------------------------


def add_card(client, **changes):
    return client.post(
        reverse("payments:method_add_card", args=["acme"]), card_details(**changes), follow=True
    )


def test_admin_adds_4242_and_sees_visa_ending_4242(client, acme):
    response = add_card(signed_in(client, "admin"))

    assert response.redirect_chain == [(reverse("payments:methods", args=["acme"]), 302)]
    assert "Visa •••• 4242 is added as the default payment method." in messages_of(response)
    assert "Visa •••• 4242" in response.content.decode()
    method = PaymentMethod.objects.get(organization=acme)
    assert (method.brand, method.last4, method.expiry, method.is_default) == (
        "Visa",
        "4242",
        "12/2030",
        True,
    )
    assert (method.billing_name, method.billing_postal_code, method.billing_country) == (
        "Ada Lovelace",
        "10118",
        "US",
    )


def test_a_second_card_is_a_backup_unless_asked_to_be_the_default(client, acme):
    signed_in(client, "admin")
    add_card(client)

    backup = add_card(client, number=MASTERCARD)
    default = add_card(client, number=AMEX, cvc="1234", make_default="on")

    assert "Mastercard •••• 4444 is added as a backup payment method." in messages_of(backup)
    assert "American Express •••• 0005 is added as the default payment method." in messages_of(
        default
    )
    assert live_methods(acme) == [("0005", True), ("4242", False), ("4444", False)]


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("4000000000000002", "The card was declined by its bank."),
        ("4000000000009995", "The card has insufficient funds."),
        ("4000000000000069", "The card has expired."),
        ("4100000000000019", "The bank blocked the charge as possibly fraudulent"),
        ("4000000000000119", "an error at the processor; try again later."),
        ("4111111111111111", "The sandbox accepts only test cards"),
    ],
)
def test_each_refused_test_card_shows_its_reason_and_adds_nothing(client, acme, number, reason):
    response = add_card(signed_in(client, "admin"), number=number)

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not PaymentMethod.objects.exists()


def test_the_same_card_twice_is_refused_and_nothing_is_written(client, acme):
    signed_in(client, "admin").post(
        reverse("payments:method_add_card", args=["acme"]), card_details()
    )

    again = client.post(reverse("payments:method_add_card", args=["acme"]), card_details())

    assert again.status_code == 400
    assert "Visa •••• 4242 (expires 12/2030) is already on file: nothing was added." in (
        again.content.decode()
    )
    assert live_methods(acme) == [("4242", True)]


def test_the_same_bank_account_twice_is_refused(client, acme):
    signed_in(client, "admin").post(
        reverse("payments:method_add_bank_account", args=["acme"]), bank_details()
    )

    again = client.post(reverse("payments:method_add_bank_account", args=["acme"]), bank_details())

    assert again.status_code == 400
    assert "is already on file: nothing was added." in again.content.decode()
    assert PaymentMethod.objects.filter(organization=acme).count() == 1


def test_a_card_declined_only_when_charged_is_added(client, acme):
    add_card(signed_in(client, "admin"), number=ALWAYS_DECLINED)

    assert live_methods(acme) == [("0341", True)]


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"number": "4242 4242 4242 4241"}, "number", "This card number has a typo"),
        ({"number": "4242"}, "number", "12 to 19 digits"),
        ({"number": "4242-abcd"}, "number", "12 to 19 digits"),
        ({"exp_month": "2", "exp_year": "2026"}, "exp_year", "This card has expired"),
        ({"exp_month": "12", "exp_year": "25"}, "exp_year", "This card has expired"),
        ({"exp_month": "13"}, "exp_month", "Select a valid choice"),
        ({"cvc": "12"}, "cvc", "3 or 4 digits"),
        ({"cvc": "12a"}, "cvc", "3 or 4 digits"),
        ({"number": AMEX, "cvc": "123"}, "cvc", "has 4 digits"),
        ({"cvc": "1234"}, "cvc", "has 3 digits"),
        ({"billing_name": ""}, "billing_name", "This field is required"),
        ({"billing_country": "USA"}, "billing_country", "two-letter country code"),
    ],
)
def test_typing_mistakes_are_caught_before_the_processor_is_asked(
    client, acme, changes, field, error
):
    response = add_card(signed_in(client, "admin"), **changes)

    assert response.status_code == 400
    assert error in " ".join(response.context["card_form"].errors[field])
    assert not PaymentMethod.objects.exists()


def test_a_card_expiring_this_month_is_still_good_and_a_two_digit_year_is_this_century(
    client, acme, now
):
    signed_in(client, "admin")

    add_card(client, exp_month=str(now.month), exp_year=str(now.year))
    add_card(client, number=MASTERCARD, exp_year="31")

    assert sorted(PaymentMethod.objects.values_list("exp_year", flat=True)) == [2026, 2031]


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
    value = re.search(r'value="([^"]*)"', tag)
    return value.group(1) if value else None


def whole_database() -> str:
    with connection.cursor() as cursor:
        return "\n".join(
            repr(cursor.execute(f'SELECT * FROM "{table}"').fetchall())
            for table in connection.introspection.table_names()
        )


def test_the_number_and_cvc_are_never_shown_again_or_stored(client, acme):
    """A mistake elsewhere shows the form again with what was typed, except the secrets."""
    response = add_card(
        signed_in(client, "admin"), number=MASTERCARD, cvc="9876", billing_name="Ada"
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert input_value(page, "number") is None
    assert input_value(page, "cvc") is None
    assert input_value(page, "billing_name") == "Ada"
    assert MASTERCARD not in page and "9876" not in page
    assert MASTERCARD not in str(response.cookies)
    assert MASTERCARD not in whole_database()


def test_a_refused_card_is_not_shown_again_nor_stored(client, acme):
    refused = "4000000000009995"

    response = add_card(signed_in(client, "admin"), number=refused, cvc="987")

    page = response.content.decode()
    assert input_value(page, "number") is None and input_value(page, "cvc") is None
    assert refused not in page
    assert refused not in whole_database()


def test_an_added_card_keeps_only_its_brand_last_four_and_expiry(client, acme):
    response = add_card(signed_in(client, "admin"), number=MASTERCARD)

    assert MASTERCARD not in whole_database()
    assert MASTERCARD not in str(response.cookies)


def test_the_secrets_are_hidden_from_error_reports(client, acme):
    response = signed_in(client, "admin").post(
        reverse("payments:method_add_card", args=["acme"]), card_details(number=MASTERCARD)
    )

    posted = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert posted["number"] != MASTERCARD and posted["cvc"] != "123"
    assert posted["billing_name"] == "Ada Lovelace"


def test_the_page_says_it_is_a_sandbox_and_lists_the_test_cards(client, acme):
    page = signed_in(client, "admin").get(reverse("payments:methods", args=["acme"]))

    panel = page.content.decode()
    assert "Sandbox: no real card is charged" in panel
    for number, outcome in [
        ("4242 4242 4242 4242", "every payment succeeds"),
        ("3782 822463 10005", "every payment succeeds"),
        ("4000 0000 0000 0341", "every payment is declined"),
        ("4000 0000 0000 9995", "The card has insufficient funds."),
    ]:
        assert number in panel and outcome in panel
    assert "110000000" in panel and "000123456789" in panel


# --- adding a bank account ----------------------------------------------------------------


def add_bank_account(client, **changes):
    return client.post(
        reverse("payments:method_add_bank_account", args=["acme"]),
        bank_details(**changes),
        follow=True,
    )


def test_admin_adds_the_sandbox_test_bank_account(client, acme):
    response = add_bank_account(signed_in(client, "admin"))

    assert "Sandbox test bank •••• 6789 is added as the default payment method." in messages_of(
        response
    )
    method = PaymentMethod.objects.get()
    assert (method.kind, method.last4, method.billing_name) == (
        "bank_account",
        "6789",
        "Acme Dental Inc.",
    )
    assert "000123456789" not in whole_database()


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"account_number": "000111111113"}, "The bank account is closed."),
        ({"account_number": "000999999999"}, "The sandbox accepts only test bank accounts"),
        ({"routing_number": "110000001"}, "This routing number has a typo"),
        ({"routing_number": "11000"}, "Enter the 9-digit routing number."),
        ({"account_number": "12ab"}, "4 to 17 digits"),
    ],
)
def test_a_refused_bank_account_says_why_and_is_not_shown_again(client, acme, changes, error):
    response = add_bank_account(signed_in(client, "admin"), **changes)

    page = response.content.decode()
    assert response.status_code == 400
    assert error in page
    assert input_value(page, "account_number") is None
    assert not PaymentMethod.objects.exists()


# --- Stripe (its API replayed from the recorded fixtures by `stripe_api`) -----------------


@pytest.fixture
def on_stripe(settings, stripe_api):
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_123"
    return stripe_api


def test_with_stripe_the_page_holds_stripes_payment_element_and_calls_stripe_only_on_submit(
    client, acme, on_stripe
):
    page = signed_in(client, "admin").get(reverse("payments:methods", args=["acme"]))

    html = page.content.decode()
    assert '<script src="https://js.stripe.com/v3/">' in html
    assert 'id="payment-element"' in html
    assert reverse("payments:method_setup_stripe", args=["acme"]) in html
    assert reverse("payments:method_add_stripe", args=["acme"]) in html
    assert '"pk_test_123"' in html and '["card", "us_bank_account"]' in html
    assert "Sandbox" not in html and 'name="number"' not in html
    assert not StripeCustomer.objects.exists()  # no Stripe call was expected, none made


def test_with_stripe_submitting_the_card_sets_up_an_intent_for_the_organizations_customer(
    client, acme, on_stripe
):
    customer = on_stripe.expect("POST", "/v1/customers", "customer")
    setup_intent = on_stripe.expect("POST", "/v1/setup_intents", "setup_intent")

    response = signed_in(client, "admin").post(
        reverse("payments:method_setup_stripe", args=["acme"])
    )

    assert response.json() == {"client_secret": setup_intent["client_secret"]}
    assert StripeCustomer.objects.get(organization=acme).customer_id == customer["id"]


def test_with_stripe_the_method_the_payment_element_set_up_is_listed(client, acme, on_stripe):
    card = on_stripe.expect("GET", r"/v1/payment_methods/pm_\w+", "payment_method_card")
    StripeCustomer.objects.create(
        organization=acme, customer_id=card["customer"], created_at=acme.created_at
    )

    response = signed_in(client, "admin").post(
        reverse("payments:method_add_stripe", args=["acme"]),
        {"payment_method_id": card["id"]},
        follow=True,
    )

    assert "Visa •••• 4242 is added as the default payment method." in messages_of(response)
    method = PaymentMethod.objects.get()
    assert (method.processor, method.token, method.expiry) == ("stripe", card["id"], "08/2028")


def test_with_stripe_the_same_card_set_up_again_is_refused_by_its_fingerprint(
    client, acme, on_stripe
):
    # The card was added before; Stripe gives it a new id each time it is set up, and the
    # same fingerprint.
    card = on_stripe.expect("GET", r"/v1/payment_methods/pm_\w+", "payment_method_card")
    StripeCustomer.objects.create(
        organization=acme, customer_id=card["customer"], created_at=acme.created_at
    )
    earlier = services.payment_method_add(
        organization=acme,
        processor="stripe",
        attached=AttachedMethod(
            token="pm_1QzUz9LkdIwHu7ixEarlier1",
            kind="card",
            brand="Visa",
            last4="4242",
            exp_month=8,
            exp_year=2028,
            fingerprint=card["card"]["fingerprint"],
        ),
    )

    response = signed_in(client, "admin").post(
        reverse("payments:method_add_stripe", args=["acme"]),
        {"payment_method_id": card["id"]},
        follow=True,
    )

    assert "Visa •••• 4242 (expires 08/2028) is already on file: nothing was added." in (
        messages_of(response)
    )
    assert list(PaymentMethod.objects.all()) == [earlier]


def test_with_stripe_a_method_stripe_does_not_know_is_not_listed(client, acme, on_stripe):
    on_stripe.expect(
        "GET", r"/v1/payment_methods/pm_\w+", "error_no_such_payment_method", status=404
    )

    response = signed_in(client, "admin").post(
        reverse("payments:method_add_stripe", args=["acme"]),
        {"payment_method_id": "pm_1QzVaZLkdIwHu7ixUnKn0wN1"},
        follow=True,
    )

    assert "Stripe does not know that payment method." in messages_of(response)
    assert not PaymentMethod.objects.exists()


def test_with_stripe_only_administrators_start_adding_a_method(client, acme, on_stripe):
    for username, status in [("member", 403), ("support", 403), ("rival_admin", 404)]:
        response = signed_in(client, username).post(
            reverse("payments:method_setup_stripe", args=["acme"])
        )
        assert response.status_code == status
    assert not StripeCustomer.objects.exists()


def test_with_stripe_sandbox_cards_are_refused(client, acme, on_stripe):
    """Sandbox cards "pay" without money: they must never be accepted next to real ones."""
    signed_in(client, "admin")

    card_response = client.post(reverse("payments:method_add_card", args=["acme"]), card_details())
    bank_response = client.post(
        reverse("payments:method_add_bank_account", args=["acme"]), bank_details()
    )

    assert (card_response.status_code, bank_response.status_code) == (404, 404)
    assert not PaymentMethod.objects.exists()


@pytest.mark.parametrize("name", ["method_setup_stripe", "method_add_stripe"])
def test_with_the_sandbox_the_stripe_endpoints_do_not_exist(client, acme, name):
    response = signed_in(client, "admin").post(
        reverse(f"payments:{name}", args=["acme"]), {"payment_method_id": "pm_x"}
    )

    assert response.status_code == 404
