"""The one rounding rule: amounts are rounded once, half-up, to the currency's minor unit."""

from decimal import ROUND_HALF_UP, Decimal

from djmoney.money import Money
from moneyed import get_currency


def minor_unit(currency: str) -> Decimal:
    """`Decimal("0.01")` for USD, `Decimal("1")` for JPY."""
    return Decimal(1) / get_currency(currency).sub_unit


def round_money(value: Money) -> Money:
    currency = str(value.currency)
    return Money(value.amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP), currency)
