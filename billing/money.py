"""The one rounding rule: amounts are rounded once, half-up, to the currency's minor unit."""

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TypeVar

from djmoney.money import Money
from moneyed import get_currency
from moneyed.l10n import format_money

K = TypeVar("K")


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


def allocate(amount: Money, weights: Mapping[K, int | Decimal]) -> dict[K, Money]:
    """Split `amount` (rounded to its minor unit) among the keys of `weights`, in proportion
    to them, in whole minor units by largest remainder: the parts add up to `amount` to the
    cent. Equal remainders go to the earlier key. Weights are not negative, not all zero."""
    currency = str(amount.currency)
    unit = minor_unit(currency)
    units = int(amount.amount / unit)
    sign, units = (-1 if units < 0 else 1), abs(units)
    total = sum(Fraction(weight) for weight in weights.values())
    if total <= 0 or any(weight < 0 for weight in weights.values()):
        raise ValueError(f"Cannot allocate by {dict(weights)}: weights must be positive.")
    keys = list(weights)
    quotas = [units * Fraction(weights[key]) / total for key in keys]
    parts = [math.floor(quota) for quota in quotas]
    by_remainder = sorted(range(len(keys)), key=lambda i: (parts[i] - quotas[i], i))
    for i in by_remainder[: units - sum(parts)]:
        parts[i] += 1
    return {key: Money(sign * part * unit, currency) for key, part in zip(keys, parts, strict=True)}
