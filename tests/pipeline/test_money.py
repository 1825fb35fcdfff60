"""Money per currency: exact sums grouped by currency with Arrow, digits as the sum produced them."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pyarrow as pa
import pytest

from finops_pipeline.contract import money_metadata, read_money
from finops_pipeline.money import add_by_currency, decimal_text, exact_decimal128, sum_by_currency

# 14+ decimals, a total past a million with cents, and a value too long for decimal128.
_ROWS = [
    ("USD", "1361.73337406487786"),
    ("EUR", "100.00"),
    ("USD", "0.00000000000001"),
    ("EUR", "1489999.99"),
    ("JPY", "12"),
    ("USD", "-0.5"),
    ("EUR", "0.01"),
    ("USD", "123456789012345678901234567890.123456789"),
]


def _oracle(rows: list[tuple[str, str]]) -> dict[str, Decimal]:
    with localcontext(prec=200):
        totals: dict[str, Decimal] = {}
        for currency, amount in rows:
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    return totals


@pytest.mark.parametrize("typed", [False, True])
def test_sums_per_currency_are_exact_and_keep_their_digits(typed: bool) -> None:
    rows = _ROWS[:-1] if typed else _ROWS  # decimal128 holds 38 digits
    currencies = pa.array([c for c, _ in rows], pa.string())
    text = pa.array([a for _, a in rows], pa.string())
    values = exact_decimal128(text) if typed else text
    assert values is not None
    found = sum_by_currency(values, currencies, text)
    assert found == _oracle(rows)
    assert decimal_text(found["EUR"]) == "1490100.00"  # the cents stay, as Decimal would write them
    shown = money_metadata(found)
    assert list(shown) == (["USD", "EUR", "JPY"] if not typed else ["EUR", "USD", "JPY"])
    assert all(isinstance(v, str) for v in shown.values())
    assert {c: Decimal(a) for c, a in shown.items()} == _oracle(rows)
    assert read_money(shown) == found


def test_one_currency_and_dictionary_codes() -> None:
    values = pa.array(["1.10", "2.205"], pa.string())
    codes = pa.array(["EUR", "EUR"]).dictionary_encode()
    assert sum_by_currency(values, codes) == {"EUR": Decimal("3.305")}
    # Typed at the batch's widest scale: the text as written gives each currency its own digits.
    typed = exact_decimal128(pa.array(["100.00", "0.00000000000001"]))
    assert typed is not None
    found = sum_by_currency(typed, pa.array(["EUR", "USD"]), pa.array(["100.00", "0.00000000000001"]))
    assert {c: decimal_text(a) for c, a in found.items()} == {"EUR": "100.00", "USD": "0.00000000000001"}
    assert decimal_text(sum_by_currency(pa.array(["1.5E-7", "0.5"]), pa.array(["EUR"] * 2))["EUR"]) == (
        "0.50000015"  # an exponent hides digits from the count: never rounded to them
    )
    assert sum_by_currency(pa.array([], pa.string()), pa.array([], pa.string())) == {}


def test_add_by_currency_never_adds_across_currencies() -> None:
    total = add_by_currency({"USD": Decimal("1.5")}, {"EUR": Decimal("2")}, {"USD": Decimal("0.25")})
    assert total == {"USD": Decimal("1.75"), "EUR": Decimal("2")}


@pytest.mark.parametrize(
    "value",
    ["1361.7", {"USD": 1.5}, {"USD": "1e5"}, {"US D": "1"}, {"USD": "1.5\n"}, ["USD", "1"], None],
)
def test_read_money_refuses_other_shapes(value: object) -> None:
    # An older run's single figure over every currency, or anything else: no guess.
    assert read_money(value) is None
