"""What every payment processor answers, whichever it is: the shapes the gateway facade
(`payments.gateways`) hands to the rest of the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from djmoney.money import Money

from billing.errors import BillingError


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

    def __init__(self, code: str, message: str):
        super().__init__(code, message)


# What a person is told for each processor decline code.
DECLINE_MESSAGES = {
    "card_declined": "The card was declined by its bank.",
    "insufficient_funds": "The card has insufficient funds.",
    "expired_card": "The card has expired.",
    "fraudulent": "The bank blocked the charge as possibly fraudulent; the card holder should call the bank.",
    "processing_error": "The card could not be processed because of an error at the processor; try again later.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "account_closed": "The bank account is closed.",
}


def decline_message(code: str) -> str:
    return DECLINE_MESSAGES.get(code, "The payment was declined.")


class Gateway(Protocol):
    processor: str

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult: ...

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> str: ...
