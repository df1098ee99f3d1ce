import datetime as dt
import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from billing.catalog import services as catalog_services
from billing.lifecycle import services as lifecycle_services
from billing.models import Organization, Plan, Subscription
from payments import services
from payments.gateways import AttachedMethod
from payments.models import Collection, PaymentAttempt, PaymentMethod, StripeCustomer
from tests.factories import (
    OrganizationFactory,
    SubscriptionFactory,
    UserFactory,
    card,
    declined_invoice,
)
from tests.helpers import people_of, signed_in

pytestmark = pytest.mark.django_db

VISA, MASTERCARD, AMEX = "4242424242424242", "5555555555554444", "378282246310005"
ALWAYS_DECLINED = "4000000000000341"


@pytest.fixture
def acme(now):
    """Acme Dental on Professional monthly, its first invoice open, with an admin and a
    member; a rival organization with its own admin; a support person."""
    catalog_services.catalog_load()
    organization = OrganizationFactory(name="Acme Dental", slug="acme")
    SubscriptionFactory(
        organization=organization, plan=Plan.objects.get(code="professional-monthly"), now=now
    )
    people_of(organization)
    return organization


@pytest.fixture
def wallet(acme):
    """A Visa by default, then a Mastercard and an American Express as backups, in that
    order; the subscription's first invoice is open."""
    return SimpleNamespace(
        visa=card(acme, VISA),
        mastercard=card(acme, MASTERCARD),
        amex=card(acme, AMEX),
        invoice=acme.invoices.get(),
    )


def card_details(**changes):
    return {
        "number": "4242 4242 4242 4242",
        "exp_month": "12",
        "exp_year": "2030",
        "cvc": "123",
        "billing_name": "Ada Lovelace",
        "billing_address": "350 Fifth Avenue",
        "billing_postal_code": "10118",
        "billing_country": "us",
        **changes,
    }


def bank_details(**changes):
    return {
        "billing_name": "Acme Dental Inc.",
        "routing_number": "110000000",
        "account_number": "000123456789",
        **changes,
    }


def live_methods(organization):
    return list(
        PaymentMethod.objects.filter(organization=organization, removed_at__isnull=True)
        .order_by("-is_default", "priority", "pk")
        .values_list("last4", "is_default")
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- access -------------------------------------------------------------------------------

PAGES = ["methods", "method_edit", "method_remove"]
ACTIONS = {
    "method_add_card": card_details(),
    "method_add_bank_account": bank_details(),
    "method_default": {},
    "method_up": {},
    "method_down": {},
    "method_edit": {
        "exp_month": "1",
        "exp_year": "2031",
        "billing_name": "Ada",
        "billing_postal_code": "10001",
        "billing_country": "US",
    },
    "method_remove": {},
    "pay_now": {},
}


def url_of(name, slug, wallet):
    args = {
        "method_default": [wallet.mastercard.pk],
        "method_up": [wallet.amex.pk],
        "method_down": [wallet.mastercard.pk],
        "method_edit": [wallet.amex.pk],
        "method_remove": [wallet.amex.pk],
        "pay_now": [wallet.invoice.number],
    }
    return reverse(f"payments:{name}", args=[slug, *args.get(name, [])])


def test_the_payment_methods_page_lives_under_billing(acme):
    assert reverse("payments:methods", args=["acme"]) == "/billing/acme/payment-methods/"
    assert (
        reverse("payments:pay_now", args=["acme", "INV-1"]) == "/billing/acme/invoices/INV-1/pay/"
    )


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, wallet, name):
    url = url_of(name, "acme", wallet)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", ACTIONS)
def test_anonymous_visitors_are_sent_to_sign_in_from_every_action(client, wallet, name):
    response = client.post(url_of(name, "acme", wallet), ACTIONS[name])

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 200), ("support", 200)],
)
def test_page_access_matrix(client, wallet, name, username, status):
    response = signed_in(client, username).get(url_of(name, "acme", wallet))

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content
        assert "•••• 4242".encode() not in response.content


@pytest.mark.parametrize("name", ACTIONS)
@pytest.mark.parametrize(
    ("username", "status"),
    [("member", 403), ("rival_admin", 404), ("admin", 302), ("support", 403)],
)
def test_action_access_matrix(client, wallet, name, username, status):
    response = signed_in(client, username).post(url_of(name, "acme", wallet), ACTIONS[name])

    assert response.status_code == status
    if status == 404:
        assert b"Acme" not in response.content


def test_refused_actions_change_nothing(client, acme, wallet):
    before = live_methods(acme)
    for username in ("member", "support", "rival_admin"):
        signed_in(client, username)
        for name, data in ACTIONS.items():
            client.post(url_of(name, "acme", wallet), data)

    assert live_methods(acme) == before
    assert PaymentMethod.objects.get(pk=wallet.amex.pk).exp_year is None
    assert not PaymentAttempt.objects.exists()
    wallet.invoice.refresh_from_db()
    assert wallet.invoice.status == "open"


def test_an_admin_of_another_organization_cannot_reach_its_methods_through_their_own(
    client, acme, wallet
):
    """Ids and invoice numbers of another organization are unknown under one's own."""
    signed_in(client, "rival_admin")

    responses = [
        client.get(url_of("method_edit", "rival", wallet)),
        client.post(url_of("method_default", "rival", wallet)),
        client.post(url_of("method_remove", "rival", wallet)),
        client.post(url_of("pay_now", "rival", wallet)),
    ]

    assert [response.status_code for response in responses] == [404] * 4
    assert live_methods(acme)[0] == ("4242", True)
    assert PaymentMethod.objects.filter(removed_at__isnull=True).count() == 3
    assert not PaymentAttempt.objects.exists()


@pytest.mark.parametrize(
    "name", ["method_add_card", "method_default", "method_up", "method_down", "pay_now"]
)
def test_actions_answer_only_posts(client, wallet, name):
    response = signed_in(client, "admin").get(url_of(name, "acme", wallet))

    assert response.status_code == 405


def test_a_removed_method_is_gone_from_every_url(client, acme, wallet):
    services.payment_method_remove(payment_method=wallet.amex)
    signed_in(client, "admin")

    assert client.get(url_of("method_edit", "acme", wallet)).status_code == 404
    assert client.post(url_of("method_up", "acme", wallet)).status_code == 404


def test_staff_see_methods_and_payments_without_forms_that_would_change_them(client, acme, wallet):
    services.invoice_collect(invoice=wallet.invoice, now=dt.datetime.now(dt.UTC))
    signed_in(client, "support")

    page = client.get(reverse("payments:methods", args=["acme"])).content.decode()
    edit = client.get(url_of("method_edit", "acme", wallet)).content.decode()

    assert "Visa •••• 4242" in page and "Succeeded" in page
    for control in ("Add a card", 'name="number"', "Make default", "Remove…", ">Edit<"):
        assert control not in page
    assert 'name="billing_name"' not in edit
    assert "support staff" in page


@pytest.mark.parametrize("name", ACTIONS)
def test_action_forms_refuse_posts_without_a_csrf_token(acme, wallet, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="admin"))

    response = client.post(url_of(name, "acme", wallet), ACTIONS[name])

    assert response.status_code == 403
    assert len(live_methods(acme)) == 3
    assert not PaymentAttempt.objects.exists()


def test_every_form_carries_a_csrf_token(client, acme, wallet):
    declined_invoice(acme)  # the banner's "Pay now" form too
    signed_in(client, "admin")

    for url in (
        reverse("payments:methods", args=["acme"]),
        url_of("method_edit", "acme", wallet),
        url_of("method_remove", "acme", wallet),
        reverse("billing:invoice", args=["acme", wallet.invoice.number]),
    ):
        page = client.get(url).content.decode()
        assert page.count('<form method="post"') == page.count("csrfmiddlewaretoken")


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


# --- Stripe (its API replayed from the recorded fixtures by `stripe_api`) ----------------


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


# --- default, order, edit, remove ---------------------------------------------------------


def test_admin_makes_a_backup_the_default(client, acme, wallet):
    response = signed_in(client, "admin").post(
        url_of("method_default", "acme", wallet), follow=True
    )

    assert "Mastercard •••• 4444 is now the default" in messages_of(response)[0]
    assert live_methods(acme) == [("4444", True), ("4242", False), ("0005", False)]


def test_admin_moves_backups_up_and_down(client, acme, wallet):
    signed_in(client, "admin")

    up = client.post(url_of("method_up", "acme", wallet), follow=True)

    assert messages_of(up) == ["American Express •••• 0005 is now backup 1."]
    assert live_methods(acme) == [("4242", True), ("0005", False), ("4444", False)]

    client.post(reverse("payments:method_down", args=["acme", wallet.amex.pk]))

    assert live_methods(acme) == [("4242", True), ("4444", False), ("0005", False)]


def test_the_first_backup_cannot_go_up_nor_the_last_down_nor_the_default_anywhere(
    client, acme, wallet
):
    signed_in(client, "admin")

    client.post(reverse("payments:method_up", args=["acme", wallet.mastercard.pk]))
    client.post(reverse("payments:method_down", args=["acme", wallet.amex.pk]))
    client.post(reverse("payments:method_down", args=["acme", wallet.visa.pk]))

    assert live_methods(acme) == [("4242", True), ("4444", False), ("0005", False)]


def test_the_order_decides_which_backup_is_charged_first(client, acme, wallet):
    """What the page shows is what collection does: the default, then backups in order."""
    services.payment_method_remove(payment_method=wallet.mastercard)
    first_backup = card(acme, "5555555555554444")
    declining = card(acme, ALWAYS_DECLINED, make_default=True)
    signed_in(client, "admin")
    client.post(reverse("payments:method_up", args=["acme", first_backup.pk]))
    client.post(reverse("payments:method_up", args=["acme", first_backup.pk]))

    attempt = services.invoice_collect(invoice=wallet.invoice, now=dt.datetime.now(dt.UTC))

    tried = list(wallet.invoice.payment_attempts.order_by("pk").values_list("payment_method_id"))
    assert tried == [(declining.pk,), (first_backup.pk,)]
    assert attempt.payment_method == first_backup


def test_admin_edits_a_cards_expiry_and_billing_address(client, acme, wallet):
    signed_in(client, "admin")
    form = client.get(url_of("method_edit", "acme", wallet))
    assert form.context["form"].initial["billing_name"] == ""

    response = client.post(
        url_of("method_edit", "acme", wallet),
        {
            "exp_month": "4",
            "exp_year": "2031",
            "billing_name": "Grace Hopper",
            "billing_address": "1 Main St",
            "billing_postal_code": "02139",
            "billing_country": "us",
        },
        follow=True,
    )

    assert messages_of(response) == ["American Express •••• 0005 is updated."]
    amex = PaymentMethod.objects.get(pk=wallet.amex.pk)
    assert (amex.expiry, amex.billing_name, amex.billing_postal_code, amex.billing_country) == (
        "04/2031",
        "Grace Hopper",
        "02139",
        "US",
    )
    assert (
        client.get(url_of("method_edit", "acme", wallet)).context["form"].initial["exp_year"]
        == 2031
    )


def test_an_edit_to_a_past_expiry_is_refused(client, acme, wallet):
    response = signed_in(client, "admin").post(
        url_of("method_edit", "acme", wallet),
        {**ACTIONS["method_edit"], "exp_month": "1", "exp_year": "2026"},
    )

    assert response.status_code == 400
    assert "This card has expired" in response.content.decode()
    assert PaymentMethod.objects.get(pk=wallet.amex.pk).exp_year is None


def test_a_bank_account_is_edited_without_an_expiry(client, acme):
    account = services.payment_method_add(
        organization=acme,
        processor="sandbox",
        attached=AttachedMethod("pm_sandbox_ok_1", "bank_account", "Sandbox test bank", "6789"),
    )
    signed_in(client, "admin")

    page = client.get(reverse("payments:method_edit", args=["acme", account.pk])).content.decode()
    client.post(
        reverse("payments:method_edit", args=["acme", account.pk]),
        {"billing_name": "Acme Inc.", "billing_postal_code": "10118", "billing_country": "US"},
    )

    assert 'name="exp_month"' not in page and "Account holder" in page
    assert PaymentMethod.objects.get(pk=account.pk).billing_name == "Acme Inc."


def test_admin_confirms_and_removes_a_backup(client, acme, wallet):
    signed_in(client, "admin")
    confirm = client.get(url_of("method_remove", "acme", wallet)).content.decode()
    assert "Remove American Express •••• 0005?" in confirm

    response = client.post(url_of("method_remove", "acme", wallet), follow=True)

    assert messages_of(response)[0].startswith("American Express •••• 0005 is removed.")
    assert live_methods(acme) == [("4242", True), ("4444", False)]
    assert [row.method.last4 for row in response.context["on_file"].rows] == ["4242", "4444"]


def test_the_default_cannot_be_removed_while_others_remain(client, acme, wallet):
    response = signed_in(client, "admin").post(
        reverse("payments:method_remove", args=["acme", wallet.visa.pk]), follow=True
    )

    assert (
        '<li class="error">This is your default payment method: make another one the default '
        "first.</li>" in response.content.decode()
    )
    assert len(live_methods(acme)) == 3


def test_the_last_method_cannot_be_removed_while_the_subscription_renews(client, acme):
    only = card(acme)

    response = signed_in(client, "admin").post(
        reverse("payments:method_remove", args=["acme", only.pk]), follow=True
    )

    assert "This is your only payment method" in messages_of(response)[0]
    assert live_methods(acme) == [("4242", True)]


def test_an_expired_card_is_marked_so_on_the_list(client, acme, wallet, now):
    PaymentMethod.objects.filter(pk=wallet.mastercard.pk).update(exp_month=2, exp_year=2026)
    PaymentMethod.objects.filter(pk=wallet.amex.pk).update(exp_month=3, exp_year=2026)

    response = signed_in(client, "admin").get(reverse("payments:methods", args=["acme"]))

    expired = {row.method.last4: row.is_expired for row in response.context["on_file"].rows}
    assert expired == {"4242": False, "4444": True, "0005": False}
    assert response.content.decode().count(">Expired</span>") == 1


# --- payment history ----------------------------------------------------------------------


def test_payment_history_shows_each_attempt_with_its_outcome(client, acme, now):
    invoice = declined_invoice(acme, now=now)
    good = card(acme, VISA, make_default=True)
    paid = services.invoice_collect(
        invoice=invoice, now=now + dt.timedelta(hours=2), on_request=True
    )
    signed_in(client, "admin")

    response = client.get(reverse("payments:methods", args=["acme"]))

    rows = response.context["history"].object_list
    assert [(row.status, row.payment_method) for row in rows] == [
        ("succeeded", good),
        ("failed", PaymentMethod.objects.get(last4="0341")),
    ]
    page = response.content.decode()
    assert reverse("billing:invoice", args=["acme", invoice.number]) in page
    assert "The card was declined by its bank." in page
    assert paid.processor_reference in page
    assert "16 Mar 2026, 12:00" in page and "Visa •••• 0341" in page


def test_a_bank_transfer_recorded_by_staff_is_in_the_history(client, acme, now):
    services.invoice_record_bank_transfer(
        invoice=acme.invoices.get(), reference="WIRE-7781", received_at=now
    )

    page = signed_in(client, "admin").get(reverse("payments:methods", args=["acme"]))

    assert "Bank transfer" in page.content.decode() and "WIRE-7781" in page.content.decode()


def test_long_histories_come_a_page_at_a_time(client, acme, now):
    invoice = acme.invoices.get()
    PaymentAttempt.objects.bulk_create(
        PaymentAttempt(
            invoice=invoice,
            amount=invoice.total,
            status="failed",
            idempotency_key=f"k{n}",
            attempted_at=now - dt.timedelta(days=n),
        )
        for n in range(30)
    )
    signed_in(client, "admin")

    first = client.get(reverse("payments:methods", args=["acme"]))
    second = client.get(reverse("payments:methods", args=["acme"]), {"page": "2"})

    assert len(first.context["history"].object_list) == 25
    assert len(second.context["history"].object_list) == 5
    assert "Older →" in first.content.decode() and "← Newer" in second.content.decode()


# --- pay now ------------------------------------------------------------------------------


def suspend(organization, now, settings):
    """Decline every charge until the retries are exhausted: the subscription is suspended."""
    settings.PAYMENT_RETRY_DAYS = [1]
    invoice = declined_invoice(organization, now=now)
    services.payment_retries_if_needed(now=now + dt.timedelta(days=1))
    assert Subscription.objects.get(organization=organization).status == "suspended"
    return invoice


def test_pay_now_with_a_good_default_card_pays_and_reinstates_a_suspended_subscription(
    client, acme, now, settings
):
    invoice = suspend(acme, now, settings)
    card(acme, VISA, make_default=True)

    response = signed_in(client, "admin").post(
        reverse("payments:pay_now", args=["acme", invoice.number]), follow=True
    )

    invoice.refresh_from_db()
    attempt = invoice.payment_attempts.get(status="succeeded")
    assert response.redirect_chain == [
        (reverse("billing:invoice", args=["acme", invoice.number]), 302)
    ]
    assert invoice.status == "paid"
    assert Subscription.objects.get(organization=acme).status == "active"
    assert messages_of(response) == [
        f"Invoice {invoice.number} is paid: $199.00 from Visa •••• 4242. "
        f"Confirmation number {attempt.processor_reference}."
    ]
    assert "payment-banner" not in response.content.decode()


def test_pay_now_on_a_past_due_invoice_pays_it(client, acme, now):
    invoice = declined_invoice(acme, now=now)
    card(acme, VISA, make_default=True)

    signed_in(client, "admin").post(reverse("payments:pay_now", args=["acme", invoice.number]))

    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert Subscription.objects.get(organization=acme).status == "active"
    assert Collection.objects.get(invoice=invoice).state == "paid"


def test_a_failed_pay_now_says_why_and_keeps_the_retry_schedule(client, acme, now):
    invoice = declined_invoice(acme, now=now)
    next_retry = Collection.objects.get(invoice=invoice).next_retry_at

    response = signed_in(client, "admin").post(
        reverse("payments:pay_now", args=["acme", invoice.number]), follow=True
    )

    assert messages_of(response) == [
        f"Invoice {invoice.number} is not paid. The card was declined by its bank."
    ]
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert Collection.objects.get(invoice=invoice).next_retry_at == next_retry


def test_pay_now_without_a_method_says_to_add_one(client, acme):
    invoice = acme.invoices.get()

    response = signed_in(client, "admin").post(
        reverse("payments:pay_now", args=["acme", invoice.number]), follow=True
    )

    assert "No payment method on file" in messages_of(response)[0]


def test_pay_now_on_a_paid_invoice_charges_nothing_more(client, acme, wallet):
    signed_in(client, "admin")
    client.post(url_of("pay_now", "acme", wallet), follow=True)

    again = client.post(url_of("pay_now", "acme", wallet), follow=True)

    assert messages_of(again) == [
        f"Invoice {wallet.invoice.number} is paid: there is nothing to pay."
    ]
    assert wallet.invoice.payment_attempts.count() == 1


def test_the_invoice_page_offers_pay_now_only_for_an_open_invoice_of_an_automatic_payer(
    client, acme, wallet
):
    url = reverse("billing:invoice", args=["acme", wallet.invoice.number])
    pay = reverse("payments:pay_now", args=["acme", wallet.invoice.number])
    signed_in(client, "admin")

    open_page = client.get(url).content.decode()
    Organization.objects.filter(pk=acme.pk).update(payment_terms="invoice")
    invoice_payer_page = client.get(url).content.decode()
    Organization.objects.filter(pk=acme.pk).update(payment_terms="automatic")
    services.invoice_collect(invoice=wallet.invoice, now=dt.datetime.now(dt.UTC))
    paid_page = client.get(url).content.decode()
    staff_page = signed_in(client, "support").get(url).content.decode()

    assert pay in open_page
    assert pay not in invoice_payer_page
    assert pay not in paid_page
    assert pay not in staff_page


# --- the banner ---------------------------------------------------------------------------

BILLING_PAGES = [
    ("billing:overview", []),
    ("billing:plans", []),
    ("billing:invoices", []),
    ("usage:dashboard", []),
    ("usage:employees", []),
    ("usage:phone_numbers", []),
    ("payments:methods", []),
]


def test_when_suspended_every_billing_page_shows_the_banner_with_both_ways_out(
    client, acme, now, settings
):
    invoice = suspend(acme, now, settings)
    signed_in(client, "admin")
    pages = [reverse(name, args=["acme", *args]) for name, args in BILLING_PAGES]
    pages.append(reverse("billing:invoice", args=["acme", invoice.number]))

    for url in pages:
        page = client.get(url).content.decode()
        banner = page[page.index('class="payment-banner') : page.index("</main>")]
        assert "Service is suspended" in banner, url
        assert f'href="{reverse("payments:methods", args=["acme"])}"' in banner, url
        assert "Update payment method" in banner, url
        assert reverse("payments:pay_now", args=["acme", invoice.number]) in banner, url
        assert "Pay now $199.00" in banner, url


def test_the_banner_names_exactly_the_invoices_that_restore_service_with_pay_now(
    client, acme, now, settings
):
    # Given the first invoice unpaid after every retry (suspended), and the next month's
    # invoice declined and still being retried
    settings.PAYMENT_RETRY_DAYS = [35]
    first = declined_invoice(acme, now=now)
    subscription = Subscription.objects.get(organization=acme)
    [second] = lifecycle_services.subscription_renew_if_needed(
        subscription_id=subscription.pk, now=subscription.current_period_end
    )
    services.invoice_collect(invoice=second, now=subscription.current_period_end)
    services.payment_retries_if_needed(now=now + dt.timedelta(days=35))
    assert Subscription.objects.get(organization=acme).status == "suspended"

    page = signed_in(client, "admin").get(reverse("billing:invoices", args=["acme"]))

    html = page.content.decode()
    banner = " ".join(html[html.index('class="payment-banner') : html.index("</main>")].split())
    restore = banner[banner.index("To restore service") : banner.index("Also unpaid")]
    also = banner[banner.index("Also unpaid") :]
    assert f"To restore service, pay invoice {first.number} ($199.00)" in restore
    assert reverse("payments:pay_now", args=["acme", first.number]) in restore
    assert second.number not in restore
    assert second.number in also and "service is not suspended for it" in also
    assert reverse("payments:pay_now", args=["acme", second.number]) in also


def test_when_past_due_the_banner_gives_the_reason_and_the_next_retry(client, acme, now):
    declined_invoice(acme, now=now)

    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    html = page.content.decode()
    assert "Payment failed" in html
    assert "The card was declined by its bank." in html
    assert "We will try again on 17 Mar 2026." in html
    assert "Pay now" in html


def test_the_next_retry_is_shown_in_the_organizations_timezone(client, acme, now):
    Organization.objects.filter(pk=acme.pk).update(timezone="Pacific/Auckland")
    declined_invoice(acme, now=now + dt.timedelta(hours=3))  # retry at 13:00 UTC on the 17th

    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    assert "We will try again on 18 Mar 2026." in page.content.decode()  # 02:00 in Auckland


def test_no_banner_while_the_subscription_is_in_good_standing(client, acme, wallet):
    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    assert "payment-banner" not in page.content.decode()


def test_members_are_told_only_that_service_is_suspended_and_whom_to_ask(
    client, acme, now, settings
):
    suspend(acme, now, settings)

    page = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    html = page.content.decode()
    assert "Service is suspended:</strong> ask an administrator" in html
    assert 'href="mailto:admin@example.com"' in html
    assert "Pay now" not in html and "INV-" not in html and "declined" not in html


def test_members_see_no_banner_while_payment_is_only_past_due(client, acme, now):
    declined_invoice(acme, now=now)

    page = signed_in(client, "member").get(reverse("billing:overview", args=["acme"]))

    assert "payment-banner" not in page.content.decode()


def test_staff_see_the_banner_without_pay_now(client, acme, now, settings):
    invoice = suspend(acme, now, settings)

    page = signed_in(client, "support").get(reverse("billing:overview", args=["acme"]))

    html = page.content.decode()
    assert "Service is suspended" in html and "Update payment method" in html
    assert reverse("payments:pay_now", args=["acme", invoice.number]) not in html


def test_the_tabs_and_the_overview_lead_to_payment_methods(client, acme):
    page = signed_in(client, "admin").get(reverse("billing:overview", args=["acme"]))

    assert page.content.decode().count(reverse("payments:methods", args=["acme"])) == 2


# --- speed --------------------------------------------------------------------------------


# Session and user (2), the person's access and organizations (2), the banner (1, or 2 with
# a past-due invoice), the methods (1), the history (2: its size and one page).
QUERY_BUDGET = 9


def test_the_methods_page_runs_a_constant_number_of_queries(
    client, acme, now, django_assert_max_num_queries
):
    invoice = declined_invoice(acme, now=now)
    methods = [card(acme, MASTERCARD, expiry=(1 + n % 12, 2030 + n // 12)) for n in range(20)]
    PaymentAttempt.objects.bulk_create(
        PaymentAttempt(
            invoice=invoice,
            payment_method=methods[n % 20],
            amount=invoice.total,
            status="failed",
            failure_message="The card was declined by its bank.",
            idempotency_key=f"attempt-{n}",
            attempted_at=now - dt.timedelta(hours=n),
        )
        for n in range(40)
    )
    for _ in range(10):  # other organizations' methods are not read
        card(OrganizationFactory())
    signed_in(client, "admin")

    with django_assert_max_num_queries(QUERY_BUDGET):
        response = client.get(reverse("payments:methods", args=["acme"]))

    assert len(response.context["on_file"].rows) == 21
    assert len(response.context["history"].object_list) == 25


@pytest.mark.parametrize("page", ["method_edit", "method_remove"])
def test_the_method_pages_run_a_constant_number_of_queries(
    client, acme, wallet, page, django_assert_max_num_queries
):
    declined_invoice(acme)
    signed_in(client, "admin")

    with django_assert_max_num_queries(7):  # the common 6 with the banner's invoice, the method
        response = client.get(url_of(page, "acme", wallet))

    assert response.status_code == 200
