from decimal import Decimal
from fractions import Fraction

import pytest
from djmoney.money import Money
from hypothesis import given
from hypothesis import strategies as st

from billing.money import allocate

amounts = st.integers(min_value=-10_000_000, max_value=10_000_000).map(
    lambda cents: Money(Decimal(cents) / 100, "USD")
)
weights = st.lists(st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=12).filter(
    any
)


@given(amount=amounts, weights=weights)
def test_the_parts_add_up_to_the_amount_to_the_cent_each_within_a_cent_of_its_share(
    amount, weights
):
    by_key = dict(enumerate(weights))

    parts = allocate(amount, by_key)

    assert sum(parts.values(), Money(0, "USD")) == amount
    total = sum(weights)
    for key, part in parts.items():
        exact = Fraction(amount.amount) * Fraction(by_key[key], total)
        assert abs(Fraction(part.amount) - exact) < Fraction(1, 100)
        assert part.amount == part.amount.quantize(Decimal("0.01"))


def test_a_cent_that_cannot_be_split_goes_to_the_largest_remainder_then_the_first():
    assert allocate(Money("10.00", "USD"), {"a": 1, "b": 1, "c": 1}) == {
        "a": Money("3.34", "USD"),
        "b": Money("3.33", "USD"),
        "c": Money("3.33", "USD"),
    }
    assert allocate(Money("0.05", "USD"), {"a": 1, "b": 3}) == {
        "a": Money("0.01", "USD"),
        "b": Money("0.04", "USD"),
    }


def test_nothing_to_split_by_is_refused():
    with pytest.raises(ValueError, match="weights"):
        allocate(Money("1.00", "USD"), {"a": 0})
