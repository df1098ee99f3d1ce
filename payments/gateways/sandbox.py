"""The sandbox processor: behaves like Stripe's test mode, deterministically, keyed on
Stripe's published test card numbers. It keeps no card number: the token names the
behaviour the number stands for. A charge's answer follows from its token and idempotency
key alone, so the same key always gets the same answer, as at Stripe."""

from __future__ import annotations

import hashlib
import secrets

from djmoney.money import Money

from billing.errors import ErrorCode
from payments.gateways.base import AttachedMethod, ChargeResult, MethodRefused, decline_message

# test card number → (brand, behaviour): "ok"; "decline_on_charge"; otherwise a decline code
# refused when the card is attached, as Stripe refuses it when a SetupIntent confirms it.
TEST_CARDS = {
    "4242424242424242": ("Visa", "ok"),
    "5555555555554444": ("Mastercard", "ok"),
    "378282246310005": ("American Express", "ok"),
    "4000000000000002": ("Visa", "card_declined"),
    "4000000000009995": ("Visa", "insufficient_funds"),
    "4000000000000069": ("Visa", "expired_card"),
    "4100000000000019": ("Visa", "fraudulent"),
    "4000000000000119": ("Visa", "processing_error"),
    "4000000000000341": ("Visa", "decline_on_charge"),
}
# Stripe's test bank accounts (routing 110000000).
TEST_BANK_ACCOUNTS = {
    "000123456789": "ok",
    "000111111113": "account_closed",
    "000222222227": "decline_on_charge",
}


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in number]
    checksum = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return len(digits) >= 12 and checksum % 10 == 0


class SandboxGateway:
    processor = "sandbox"

    @staticmethod
    def attach_card(*, number: str) -> AttachedMethod:
        """Validate a card as the processor would; the number goes no further than here."""
        brand, behaviour = TEST_CARDS.get(number, ("", "not_a_test_card"))
        if behaviour == "not_a_test_card":
            raise MethodRefused(
                ErrorCode.CARD_DECLINED,
                "The sandbox accepts only test cards, such as 4242 4242 4242 4242.",
            )
        if behaviour not in ("ok", "decline_on_charge"):
            raise MethodRefused(ErrorCode(behaviour))
        return AttachedMethod(
            token=f"pm_sandbox_{behaviour}_{secrets.token_hex(8)}",
            kind="card",
            brand=brand,
            last4=number[-4:],
        )

    @staticmethod
    def attach_bank_account(*, routing_number: str, account_number: str) -> AttachedMethod:
        behaviour = TEST_BANK_ACCOUNTS.get(account_number, "not_a_test_account")
        if routing_number != "110000000" or behaviour == "not_a_test_account":
            raise MethodRefused(
                ErrorCode.ACCOUNT_INVALID,
                "The sandbox accepts only test bank accounts: routing 110000000, account 000123456789.",
            )
        if behaviour not in ("ok", "decline_on_charge"):
            raise MethodRefused(ErrorCode(behaviour))
        return AttachedMethod(
            token=f"pm_sandbox_{behaviour}_{secrets.token_hex(8)}",
            kind="bank_account",
            brand="Sandbox test bank",
            last4=account_number[-4:],
        )

    def charge(
        self, *, token: str, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        if "_ok_" in token:
            return ChargeResult(succeeded=True, reference=_reference("ch", idempotency_key))
        return ChargeResult(
            succeeded=False,
            reference=_reference("ch", idempotency_key),
            failure_code="card_declined",
            failure_message=decline_message("card_declined"),
        )

    def refund(self, *, reference: str, amount: Money, idempotency_key: str) -> str:
        return _reference("re", idempotency_key)


def _reference(prefix: str, idempotency_key: str) -> str:
    return f"{prefix}_sandbox_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"
