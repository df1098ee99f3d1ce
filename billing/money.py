"""The one rounding rule: amounts are rounded once, half-up, to the currency's minor unit."""

from decimal import ROUND_HALF_UP, Decimal

from djmoney.money import Money
from moneyed import get_currency
from moneyed.l10n import format_money


def minor_unit(currency: str) -> Decimal:
    """`Decimal("0.01")` for USD, `Decimal("1")` for JPY."""
    return Decimal(1) / get_currency(currency).sub_unit


def round_money(value: Money) -> Money:
    currency = str(value.currency)
    return Money(value.amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP), currency)


def format_rate(value: Money) -> str:
    """A per-unit price with every significant digit: `$0.004`, never `$0.00`."""
    return format_money(value, locale="en_US", decimal_quantization=False)


def format_percent(value: Decimal) -> str:
    """`20`, `12.5`, `8.875`: a percentage without trailing zeros (and never `2E+1`)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
