"""The one way to the payment processors. Views, services, webhooks and the demo call what is
here; the processors behind it (`sandbox`, `stripe`) are imported by this module alone.

Only the configured processor (`PAYMENT_GATEWAY`) charges or refunds a stored method: the
views offer the ways of adding a method that go with it.
"""

from __future__ import annotations

from django.conf import settings

from billing.errors import ErrorCode
from billing.models import Organization
from payments.gateways.base import (
    DECLINE_MESSAGES,
    AttachedMethod,
    ChargeResult,
    Gateway,
    MethodRefused,
    decline_message,
)
from payments.gateways.sandbox import TEST_BANK_ACCOUNTS, TEST_CARDS, SandboxGateway, luhn_valid
from payments.gateways.stripe import METHOD_TYPES, StripeGateway, minor_units

__all__ = [
    "DECLINE_MESSAGES",
    "METHOD_TYPES",
    "TEST_BANK_ACCOUNTS",
    "TEST_CARDS",
    "AttachedMethod",
    "ChargeResult",
    "Gateway",
    "MethodRefused",
    "decline_message",
    "gateway_for",
    "luhn_valid",
    "minor_units",
    "sandbox_bank_account_attach",
    "sandbox_card_attach",
    "stripe_method_retrieve",
    "stripe_setup_intent_create",
]


def gateway_for(processor: str) -> Gateway:
    """The gateway for a stored method. Only the configured one may charge: a sandbox method
    left over after switching to Stripe must never "pay" an invoice with no money."""
    if processor != settings.PAYMENT_GATEWAY:
        raise MethodRefused(
            ErrorCode.PROCESSOR_NOT_CONFIGURED,
            f"This {processor} payment method cannot be charged: payments go through "
            f"{settings.PAYMENT_GATEWAY}. Add the method again.",
        )
    if processor == "sandbox":
        return SandboxGateway()
    if processor == "stripe":
        return StripeGateway()
    raise ValueError(f"No gateway for processor {processor!r}.")


def sandbox_card_attach(*, number: str) -> AttachedMethod:
    """Validate a test card with the sandbox, as Stripe would; the number goes no further."""
    return SandboxGateway.attach_card(number=number)


def sandbox_bank_account_attach(*, routing_number: str, account_number: str) -> AttachedMethod:
    return SandboxGateway.attach_bank_account(
        routing_number=routing_number, account_number=account_number
    )


def stripe_setup_intent_create(*, organization: Organization) -> str:
    """Start adding a method through Stripe Elements: the client secret of a SetupIntent for
    the organization's Stripe customer (created on first use)."""
    gateway = StripeGateway()
    customer_id = gateway.customer_id_for(organization=organization)
    return gateway.create_setup_intent(customer_id=customer_id)


def stripe_method_retrieve(*, organization: Organization, payment_method_id: str) -> AttachedMethod:
    """What Stripe says about a method its Payment Element has just set up for `organization`."""
    return StripeGateway().retrieve_method(
        organization=organization, payment_method_id=payment_method_id
    )
