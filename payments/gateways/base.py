"""What every payment processor answers, whichever it is: the shapes the gateway facade
(`payments.gateways`) hands to the rest of the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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
