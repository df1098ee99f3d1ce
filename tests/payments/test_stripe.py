"""The Stripe gateway against Stripe's API as recorded (see conftest.py): what we send, and
what we make of each answer."""

import socket
from decimal import Decimal

import pytest
import stripe
from django.conf import settings as django_settings
from djmoney.money import Money
from djstripe.settings import djstripe_settings

from payments import services
from payments.gateways import AttachedMethod, MethodRefused
from payments.gateways.stripe import StripeGateway, minor_units
from payments.models import PaymentAttempt, StripeCustomer
from tests.factories import OrganizationFactory, SubscriptionFactory
from tests.payments.conftest import (
    BANK_ACCOUNT_IN_BROWSER,
    FIXTURES,
    REPLAYED_KEY,
    NetworkFenced,
    load_fixture,
    replay_only,
)

pytestmark = pytest.mark.django_db

PRICE = Money(Decimal("199.00"), "USD")
# Fields of Stripe's error object that the API returns under the pinned version but
# `stripe==15.2.1` does not declare on ErrorObject yet (its 15.3 release does).
ERROR_FIELDS_UNTYPED = {
    "advice_code",
    "network_advice_code",
    "network_decline_code",
    "payment_method_type",
    "request_log_url",
    "user_message",
}


@pytest.fixture
def organization():
    return OrganizationFactory()


@pytest.fixture
def gateway(stripe_api):
    return StripeGateway()


def stripe_method(organization, token, kind="card", brand="Visa", last4="4242"):
    """List a method as if its SetupIntent had succeeded; Stripe is not asked."""
    expiry = {"exp_month": 8, "exp_year": 2028} if kind == "card" else {}
    return services.payment_method_add(
        organization=organization,
        processor="stripe",
        attached=AttachedMethod(token=token, kind=kind, brand=brand, last4=last4, **expiry),
    )


class TestNetworkFence:
    def test_nothing_beyond_this_machine_is_reachable(self):
        with pytest.raises(NetworkFenced):
            socket.create_connection(("203.0.113.7", 443), timeout=1)

    def test_stripe_unreplayed_is_unreachable(self, settings, organization):
        settings.STRIPE_SECRET_KEY = REPLAYED_KEY

        with pytest.raises(stripe.APIConnectionError, match="may not reach"):
            StripeGateway().customer_id_for(organization=organization)

    def test_this_machine_is(self):
        with pytest.raises(ConnectionRefusedError):  # refused by the port, not the fence
            socket.create_connection(("127.0.0.1", 9), timeout=1)


class TestMinorUnits:
    @pytest.mark.parametrize(
        ("amount", "currency", "minor"),
        [
            ("199.00", "USD", 19900),
            ("0.10", "EUR", 10),
            ("1234.56", "GBP", 123456),
            ("500", "JPY", 500),
        ],
    )
    def test_whole_numbers_of_the_smallest_unit(self, amount, currency, minor):
        assert minor_units(Money(Decimal(amount), currency)) == minor

    def test_a_fraction_of_a_cent_is_refused_not_rounded(self):
        with pytest.raises(ValueError, match="smallest unit"):
            minor_units(Money(Decimal("10.005"), "USD"))


class TestFixtures:
    """The replayed answers are shaped as the pinned API version's objects: no field that
    version does not have, Stripe's id prefixes, test mode."""

    CLASSES_AND_PREFIXES = {
        "account": (stripe.Account, "acct_"),
        "balance_transaction": (stripe.BalanceTransaction, "txn_"),
        "customer": (stripe.Customer, "cus_"),
        "setup_intent": (stripe.SetupIntent, "seti_"),
        "payment_method": (stripe.PaymentMethod, "pm_"),
        "payment_intent": (stripe.PaymentIntent, "pi_"),
        "refund": (stripe.Refund, "re_"),
        "charge": (stripe.Charge, "ch_"),
        "event": (stripe.Event, "evt_"),
    }

    def test_the_gateway_pins_the_librarys_and_dj_stripes_api_version(self):
        assert (
            stripe.api_version
            == djstripe_settings.DEFAULT_STRIPE_API_VERSION
            == djstripe_settings.STRIPE_API_VERSION
            == django_settings.STRIPE_API_VERSION
        )

    @pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.stem)
    def test_fixture_matches_the_pinned_api_version(self, path):
        fixture = load_fixture(path.stem)
        if "error" in fixture:
            typed = set(stripe.ErrorObject.__annotations__) | ERROR_FIELDS_UNTYPED
            assert set(fixture["error"]) <= typed
            stripe_objects = [
                fixture["error"].get("payment_intent"),
                fixture["error"].get("payment_method"),
            ]
        elif fixture.get("object") == "list":
            stripe_objects = list(fixture["data"])
        else:
            stripe_objects = [fixture]
        if fixture.get("object") == "event":
            assert fixture["api_version"] == django_settings.STRIPE_API_VERSION
            stripe_objects.append(fixture["data"]["object"])
        for stripe_object in filter(None, stripe_objects):
            self.assert_shaped_like_stripes(stripe_object)

    def assert_shaped_like_stripes(self, stripe_object):
        object_class, prefix = self.CLASSES_AND_PREFIXES[stripe_object["object"]]
        assert set(stripe_object) <= set(object_class.__annotations__)
        assert stripe_object["id"].startswith(prefix)
        assert stripe_object.get("livemode", False) is False  # a refund has no `livemode`


class TestCustomer:
    def test_created_once_with_the_organizations_idempotency_key(
        self, stripe_api, gateway, organization
    ):
        created = stripe_api.expect("POST", "/v1/customers", "customer")

        first = gateway.customer_id_for(organization=organization)
        again = gateway.customer_id_for(organization=organization)

        assert first == again == created["id"]
        assert StripeCustomer.objects.get(organization=organization).customer_id == created["id"]
        params, headers = stripe_api.sent(0)
        assert headers["Idempotency-Key"] == f"customer-org-{organization.pk}"
        assert params["metadata[organization_id]"] == str(organization.pk)
        assert headers["Stripe-Version"] == django_settings.STRIPE_API_VERSION


class TestAddingAMethod:
    def test_setup_intent_for_off_session_use(self, stripe_api, gateway, organization):
        stripe_api.expect("POST", "/v1/customers", "customer")
        setup_intent = stripe_api.expect("POST", "/v1/setup_intents", "setup_intent")

        customer_id = gateway.customer_id_for(organization=organization)
        client_secret = gateway.create_setup_intent(customer_id=customer_id)

        assert client_secret == setup_intent["client_secret"]
        params, _ = stripe_api.sent(1)
        assert params["customer"] == customer_id
        assert params["usage"] == "off_session"
        assert (params["payment_method_types[0]"], params["payment_method_types[1]"]) == (
            "card",
            "us_bank_account",
        )

    def test_card_set_up_by_elements(self, stripe_api, gateway, organization):
        stripe_api.expect("POST", "/v1/customers", "customer")
        stripe_api.expect("POST", r"/v1/payment_methods/pm_card_visa/attach", "payment_method_card")
        stripe_api.expect("GET", r"/v1/payment_methods/pm_\w+", "payment_method_card")
        customer_id = gateway.customer_id_for(organization=organization)
        # What the SetupIntent confirmed by Elements in the browser does.
        attached = gateway.client.v1.payment_methods.attach(
            "pm_card_visa", params={"customer": customer_id}
        )

        method = gateway.retrieve_method(organization=organization, payment_method_id=attached.id)

        assert method == AttachedMethod(
            token=attached.id,
            kind="card",
            brand="Visa",
            last4="4242",
            exp_month=8,
            exp_year=2028,
            fingerprint="Xt5EWLLDS7FJjR1c",  # the same card number always has this one
        )

    def test_another_organizations_method_is_refused(self, stripe_api, gateway, organization):
        stripe_api.expect("POST", "/v1/customers", "customer")
        stripe_api.expect("POST", r"/v1/payment_methods/pm_card_visa/attach", "payment_method_card")
        stripe_api.expect("GET", r"/v1/payment_methods/pm_\w+", "payment_method_card")
        customer_id = gateway.customer_id_for(organization=organization)
        theirs = gateway.client.v1.payment_methods.attach(
            "pm_card_visa", params={"customer": customer_id}
        )

        with pytest.raises(MethodRefused) as refused:
            gateway.retrieve_method(organization=OrganizationFactory(), payment_method_id=theirs.id)

        assert refused.value.code == "setup_incomplete"

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_us_bank_account_set_up_by_elements(self, stripe_api, gateway, organization):
        bank_account = stripe_api.expect(
            "GET", r"/v1/payment_methods/pm_\w+", "payment_method_us_bank_account"
        )
        StripeCustomer.objects.create(
            organization=organization,
            customer_id=bank_account["customer"],
            created_at=organization.created_at,
        )

        method = gateway.retrieve_method(
            organization=organization, payment_method_id=bank_account["id"]
        )

        assert method == AttachedMethod(
            token=bank_account["id"],
            kind="bank_account",
            brand="STRIPE TEST BANK",
            last4="6789",
            fingerprint="LstWJFsCK7P349Bg",
        )

    def test_a_method_no_setup_intent_attached_is_refused(self, stripe_api, gateway, organization):
        stripe_api.expect("POST", "/v1/payment_methods", "payment_method_card_unattached")
        stripe_api.expect("GET", r"/v1/payment_methods/pm_\w+", "payment_method_card_unattached")
        unattached = gateway.client.v1.payment_methods.create(
            params={"type": "card", "card": {"token": "tok_visa"}}
        )

        with pytest.raises(MethodRefused) as refused:
            gateway.retrieve_method(organization=organization, payment_method_id=unattached.id)

        assert refused.value.code == "setup_incomplete"

    def test_an_unknown_method_is_refused(self, stripe_api, gateway, organization):
        stripe_api.expect(
            "GET", r"/v1/payment_methods/pm_\w+", "error_no_such_payment_method", status=404
        )

        with pytest.raises(MethodRefused) as refused:
            gateway.retrieve_method(
                organization=organization, payment_method_id="pm_1QzVaZLkdIwHu7ixUnKn0wN1"
            )

        assert refused.value.code == "resource_missing"


class TestCharge:
    def test_off_session_payment_intent_keyed_by_our_row(self, stripe_api, gateway, organization):
        customer = stripe_api.expect("POST", "/v1/customers", "customer")
        intent = stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_succeeded")
        stripe_method(organization, "pm_card_visa")

        result = gateway.charge(
            token="pm_card_visa",
            amount=PRICE,
            idempotency_key="invoice-7-try0-method-3",
            description="Invoice INV-2026-000007",
        )

        assert (result.succeeded, result.reference) == (True, intent["id"])
        params, headers = stripe_api.sent(1)
        assert headers["Idempotency-Key"] == "invoice-7-try0-method-3"
        assert params["amount"] == "19900"  # cents, an integer
        assert params["currency"] == "usd"
        assert params["customer"] == customer["id"]
        assert params["payment_method"] == "pm_card_visa"
        assert (params["off_session"], params["confirm"]) == ("true", "true")
        assert params["metadata[idempotency_key]"] == "invoice-7-try0-method-3"

    @pytest.mark.parametrize(
        ("test_card", "fixture", "code", "message"),
        [
            (
                "pm_card_visa_chargeDeclined",
                "payment_intent_card_declined",
                "generic_decline",
                "The card was declined by its bank.",
            ),
            (
                "pm_card_visa_chargeDeclinedInsufficientFunds",
                "payment_intent_insufficient_funds",
                "insufficient_funds",
                "The card has insufficient funds.",
            ),
        ],
    )
    def test_decline(self, stripe_api, gateway, organization, test_card, fixture, code, message):
        stripe_api.expect("POST", "/v1/customers", "customer")
        declined = stripe_api.expect("POST", "/v1/payment_intents", fixture, status=402)
        stripe_method(organization, test_card)

        result = gateway.charge(
            token=test_card, amount=PRICE, idempotency_key="invoice-7-try0-method-3", description=""
        )

        assert result.succeeded is False
        assert result.reference == declined["error"]["payment_intent"]["id"]
        assert (result.failure_code, result.failure_message) == (code, message)

    @replay_only(BANK_ACCOUNT_IN_BROWSER)
    def test_a_bank_debit_still_processing_has_not_succeeded(
        self, stripe_api, gateway, organization
    ):
        stripe_api.expect("POST", "/v1/customers", "customer")
        intent = stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_processing")
        stripe_method(organization, intent["payment_method"], kind="bank_account", last4="6789")

        result = gateway.charge(
            token=intent["payment_method"], amount=PRICE, idempotency_key="k1", description=""
        )

        assert (result.succeeded, result.reference, result.failure_code) == (
            False,
            intent["id"],
            "processing",
        )

    @replay_only("Stripe's test mode cannot be made to fail.")
    def test_a_server_error_propagates_and_is_not_retried_by_the_library(
        self, stripe_api, gateway, organization
    ):
        StripeCustomer.objects.create(
            organization=organization,
            customer_id="cus_RyX4pLkdIwHu7i",
            created_at=organization.created_at,
        )
        stripe_api.expect("POST", "/v1/payment_intents", "error_api", status=500)
        stripe_method(organization, "pm_card_visa")

        with pytest.raises(stripe.APIError):
            gateway.charge(token="pm_card_visa", amount=PRICE, idempotency_key="k1", description="")

        assert len(stripe_api.mock.calls) == 1  # our retries repeat the key later instead


class TestRefund:
    def test_refund_of_the_payment_intent(self, stripe_api, gateway, organization):
        stripe_api.expect("POST", "/v1/customers", "customer")
        stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_succeeded")
        refund = stripe_api.expect("POST", "/v1/refunds", "refund")
        stripe_method(organization, "pm_card_visa")
        charged = gateway.charge(
            token="pm_card_visa", amount=PRICE, idempotency_key="k1", description=""
        )

        reference = gateway.refund(
            reference=charged.reference,
            amount=Money(Decimal("50.00"), "USD"),
            idempotency_key="refund-CN-2026-000001",
        )

        assert reference == refund["id"]
        params, headers = stripe_api.sent(2)
        assert (params["payment_intent"], params["amount"]) == (charged.reference, "5000")
        assert headers["Idempotency-Key"] == "refund-CN-2026-000001"


class TestCollectingAnInvoice:
    def test_invoice_collect_through_stripe_charges_once(self, stripe_api, now):
        subscription = SubscriptionFactory(start=now, now=now)
        invoice = subscription.invoices.get()
        stripe_method(subscription.organization, "pm_card_visa")
        stripe_api.expect("POST", "/v1/customers", "customer")
        intent = stripe_api.expect("POST", "/v1/payment_intents", "payment_intent_succeeded")

        attempt = services.invoice_collect(invoice=invoice)
        again = services.invoice_collect(invoice=invoice)  # no second call: nothing declared

        assert again == attempt
        assert (attempt.status, attempt.processor_reference) == ("succeeded", intent["id"])
        assert PaymentAttempt.objects.filter(invoice=invoice).count() == 1
        _, headers = stripe_api.sent(1)
        assert headers["Idempotency-Key"] == attempt.idempotency_key
        invoice.refresh_from_db()
        assert (invoice.status, invoice.payment_reference) == ("paid", intent["id"])
        assert invoice.payment_method_description == "Visa •••• 4242"
