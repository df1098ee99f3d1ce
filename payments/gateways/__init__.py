"""Payment processors behind one interface. `gateway_for(processor)` picks the implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from djmoney.money import Money

from billing.errors import BillingError, ErrorCode


@dataclass(frozen=True)
class AttachedMethod:
    """What the processor tells us about a method it has validated and stored for us."""

    token: str
    kind: str
    brand: str
    last4: str
    exp_month: int | None = None
    exp_year: int | None = None
    fingerprint: str = ""  # the same card or account number gives the same one (Stripe)


@dataclass(frozen=True)
class ChargeResult:
    succeeded: bool
    reference: str  # the processor's charge id: the customer's confirmation number
    failure_code: str = ""
    failure_message: str = ""


class MethodRefused(BillingError):
    """The processor would not validate the method (declined, expired, blocked...)."""


# The processor's decline codes we word for a person; any other reads as a plain decline.
DECLINES = (
    ErrorCode.CARD_DECLINED,
    ErrorCode.INSUFFICIENT_FUNDS,
    ErrorCode.EXPIRED_CARD,
    ErrorCode.FRAUDULENT,
    ErrorCode.PROCESSING_ERROR,
    ErrorCode.INCORRECT_CVC,
    ErrorCode.ACCOUNT_CLOSED,
)
DECLINE_MESSAGES = {code.value: code.message for code in DECLINES}


def decline_message(code: str) -> str:
    return DECLINE_MESSAGES.get(code, "The payment was declined.")


class Gateway(Protocol):
    processor: str

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult: ...

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> str: ...


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
        from payments.gateways.sandbox import SandboxGateway

        return SandboxGateway()
    if processor == "stripe":
        from payments.gateways.stripe import StripeGateway

        return StripeGateway()
    raise ValueError(f"No gateway for processor {processor!r}.")
