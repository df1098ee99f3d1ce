"""The Stripe processor: a SetupIntent collects a method on the page (Stripe Elements, so the
card or account number never reaches us), an off-session PaymentIntent charges it, and refunds
give money back.

Every call names the API version of `settings.STRIPE_API_VERSION` (the one dj-stripe's
mirror and `stripe==15.2.1` are written for, and the test fixtures recorded against), never
the account's default, so an upgrade in Stripe's dashboard cannot change the shapes parsed
here.
The library does not retry (`max_network_retries=0`): a call that fails makes the try fail,
and the next try repeats it with the same idempotency key, which Stripe answers with its
first result instead of charging twice.
"""

from __future__ import annotations

import datetime as dt
import logging

import stripe
from django.conf import settings
from django.utils import timezone
from djmoney.money import Money

from billing.errors import ErrorCode
from billing.models import Organization
from payments.gateways.base import (
    DECLINE_MESSAGES,
    AttachedMethod,
    ChargeResult,
    MethodRefused,
    decline_message,
)
from payments.models import PaymentMethod, StripeCustomer

logger = logging.getLogger(__name__)

# What our PaymentMethod can store: cards and US bank accounts (ACH debits).
METHOD_TYPES = ["card", "us_bank_account"]
CARD_BRANDS = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos Australia",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
PROCESSING_MESSAGE = "The bank is still processing the payment; it is confirmed when it clears."


def stripe_client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        max_network_retries=0,
        # Through `requests` whatever the library would pick, so tests replay it with `responses`.
        http_client=stripe.RequestsClient(timeout=30),
    )


def minor_units(amount: Money) -> int:
    """Money("12.34", "USD") → 1234: Stripe takes an integer count of the currency's smallest
    unit. ISO 4217's exponent, which is Stripe's for the currencies we bill in; Stripe's
    exceptions (HUF, ISK, TWD, UGX) would need a table before we bill in them."""
    minor = amount.amount * amount.currency.sub_unit
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of the currency's smallest unit.")
    return int(minor)


class StripeGateway:
    processor = "stripe"

    def __init__(self, client: stripe.StripeClient | None = None):
        self.client = client or stripe_client()

    def customer_id_for(self, *, organization: Organization, now: dt.datetime | None = None) -> str:
        """The organization's Stripe customer, created on first use. The idempotency key is the
        organization's, so two workers creating it at once get the same customer from Stripe,
        and the one-to-one row keeps one of them."""
        existing = StripeCustomer.objects.filter(organization=organization).first()
        if existing is not None:
            return existing.customer_id
        customer = self.client.v1.customers.create(
            params={
                "name": organization.name,
                "email": next(iter(organization.billing_email_list), ""),
                "metadata": {"organization_id": str(organization.pk)},
            },
            options={"idempotency_key": f"customer-org-{organization.pk}"},
        )
        stripe_customer, _ = StripeCustomer.objects.get_or_create(
            organization=organization,
            defaults={"customer_id": customer.id, "created_at": now or timezone.now()},
        )
        return stripe_customer.customer_id

    def create_setup_intent(self, *, customer_id: str) -> str:
        """Start adding a method: the client secret goes to Stripe Elements on the page, which
        confirms the SetupIntent in the browser and attaches the method to the customer."""
        setup_intent = self.client.v1.setup_intents.create(
            params={
                "customer": customer_id,
                "usage": "off_session",
                "payment_method_types": METHOD_TYPES,
            }
        )
        return setup_intent.client_secret

    def retrieve_method(self, *, organization, payment_method_id: str) -> AttachedMethod:
        """What to list for a method Stripe Elements has just set up for `organization`.
        Refused unless a SetupIntent attached it to that organization's own customer: a
        method whose setup failed cannot be charged off-session, and another organization's
        method must never pay this one's invoices."""
        try:
            method = self.client.v1.payment_methods.retrieve(payment_method_id).to_dict()
        except stripe.InvalidRequestError as refused:
            code = (
                ErrorCode.RESOURCE_MISSING
                if refused.code == ErrorCode.RESOURCE_MISSING
                else ErrorCode.INVALID_REQUEST
            )
            raise MethodRefused(code, "Stripe does not know that payment method.") from refused
        if not StripeCustomer.objects.filter(
            customer_id=method["customer"], organization=organization
        ).exists():
            raise MethodRefused(ErrorCode.SETUP_INCOMPLETE)
        if method["type"] == "card":
            card = method["card"]
            return AttachedMethod(
                token=method["id"],
                kind=PaymentMethod.Kind.CARD,
                brand=CARD_BRANDS.get(card["brand"], card["brand"].replace("_", " ").title()),
                last4=card["last4"],
                exp_month=card["exp_month"],
                exp_year=card["exp_year"],
                fingerprint=card.get("fingerprint") or "",
            )
        if method["type"] == "us_bank_account":
            bank_account = method["us_bank_account"]
            return AttachedMethod(
                token=method["id"],
                kind=PaymentMethod.Kind.BANK_ACCOUNT,
                brand=bank_account["bank_name"] or "Bank account",
                last4=bank_account["last4"],
                fingerprint=bank_account.get("fingerprint") or "",
            )
        raise MethodRefused(ErrorCode.UNSUPPORTED_METHOD)

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge a listed method while the customer is away. The reference is the
        PaymentIntent's id: refunds and webhooks name the payment by it."""
        method = PaymentMethod.objects.select_related("organization").get(
            processor=self.processor, token=token
        )
        params = {
            "amount": minor_units(amount),
            "currency": amount.currency.code.lower(),
            "customer": self.customer_id_for(organization=method.organization),
            "payment_method": token,
            "payment_method_types": METHOD_TYPES,
            "off_session": True,
            "confirm": True,
            "description": description,
            # Lets a webhook that outruns our commit recognise the payment as ours.
            "metadata": {"idempotency_key": idempotency_key},
        }
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            ).to_dict()
        except (stripe.CardError, stripe.InvalidRequestError) as refused:
            # A decline, or a method Stripe can no longer charge (detached, blocked): this
            # method failed and the next one is tried. Any other error leaves the outcome
            # unknown, so it propagates and the try is repeated with the same key.
            error = (refused.json_body or {}).get("error", {})
            logger.info("Stripe refused charge %s: %s", idempotency_key, error.get("message"))
            return _failed(error, reference=(error.get("payment_intent") or {}).get("id", ""))
        if intent["status"] == "succeeded":
            return ChargeResult(succeeded=True, reference=intent["id"])
        if intent["status"] == "processing":
            # Bank debits take days; the payment_intent.succeeded webhook settles the invoice.
            return ChargeResult(
                succeeded=False,
                reference=intent["id"],
                failure_code="processing",
                failure_message=PROCESSING_MESSAGE,
            )
        return _failed(intent["last_payment_error"] or {"code": intent["status"]}, intent["id"])

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> str:
        refund = self.client.v1.refunds.create(
            params={"payment_intent": reference, "amount": minor_units(amount)},
            options={"idempotency_key": idempotency_key},
        )
        return refund.id


def _failed(error: dict, reference: str) -> ChargeResult:
    """Stripe's error → our failure: the issuer's decline code when there is one (more precise
    than `card_declined`), and what a person is told about it."""
    code = error.get("decline_code") or error.get("code") or "payment_failed"
    message = DECLINE_MESSAGES.get(code) or decline_message(error.get("code") or "")
    return ChargeResult(
        succeeded=False, reference=reference, failure_code=code, failure_message=message
    )
