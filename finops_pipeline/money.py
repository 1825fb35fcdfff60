"""Exact money arithmetic: decimals added without rounding, typed for Arrow without wrapping.

Money is never a float here. Sums use a 4000-digit context (Python's default keeps 28
digits), and Arrow decimals are used only where they are known to be exact: Arrow's
decimal parser and its sums wrap around silently past their type's digits, so every
path into Arrow below first checks the values fit (the wrap-around guard).
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DECIMAL128_DIGITS",
    "DECIMAL256_DIGITS",
    "EXACT",
    "NO_CURRENCY",
    "ByCurrency",
    "add_by_currency",
    "add_exact",
    "decimal_sum",
    "decimal_text",
    "exact_decimal128",
    "largest_first",
    "plain_decimal",
    "sum_by_currency",
]

DECIMAL128_DIGITS: Final = 38
DECIMAL256_DIGITS: Final = 76

# Money is added without rounding: Python's default context keeps only 28 digits.
EXACT: Final = decimal.Context(prec=4000)

# ISO 4217's "no currency": what a row without a billing currency would be counted under (the
# validation rejects such rows, so a load never meets it; a sum never drops money for lack of one).
NO_CURRENCY: Final = "XXX"

ByCurrency = dict[str, Decimal]
"""Amounts per currency code: money of several currencies is never added together."""


def plain_decimal(value: Decimal) -> str:
    """An exact decimal as plain text (no exponent, no trailing zeros): what metadata shows."""
    return "0" if value == 0 else format(value.normalize(EXACT), "f")


def decimal_text(value: Decimal) -> str:
    """An exact decimal as plain text with the digits its sum produced: `100.00` stays `100.00`
    (the scale of the widest addend), never an exponent."""
    return format(value, "f")


def add_exact(*values: Decimal) -> Decimal:
    """The sum of `values`, to the last digit."""
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    return total


def exact_decimal128(values: pa.Array) -> pa.Array | None:
    """Decimal strings as `decimal128(38, s)`, s their widest scale, every value exact; None
    when one has no such form (over 38 characters: Arrow's parser wraps around past 38
    digits without a word; an exponent or a space it does not take; too many digits)."""
    if values.null_count == len(values):
        return pa.nulls(len(values), pa.decimal128(DECIMAL128_DIGITS, 0))
    length = pc.binary_length(values)
    if (pc.max(length).as_py() or 0) > DECIMAL128_DIGITS:
        return None
    dot = pc.find_substring(values, ".")
    fraction = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(length, dot), 1))
    try:  # a safe cast: it fails rather than round or overflow
        return pc.cast(values, pa.decimal128(DECIMAL128_DIGITS, pc.max(fraction).as_py() or 0))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def add_by_currency(*amounts: ByCurrency) -> ByCurrency:
    """Per-currency sums of per-currency amounts, to the last digit."""
    total: ByCurrency = {}
    for item in amounts:
        for currency, amount in item.items():
            total[currency] = EXACT.add(total[currency], amount) if currency in total else amount
    return total


def largest_first(amounts: ByCurrency) -> list[tuple[str, Decimal]]:
    """(currency, amount) pairs, largest amount first, ties by currency code: how money is shown."""
    return sorted(amounts.items(), key=lambda item: (-item[1], item[0]))


def sum_by_currency(values: pa.Array, currencies: pa.Array, written: pa.Array | None = None) -> ByCurrency:
    """The exact sum of `values` per currency code of the same row (`decimal_sum` per group).

    Grouped with Arrow: one `unique` over the codes, then one filter per currency (a month holds
    one to a few); a single currency, the usual case, is summed without a filter. `written`, the
    amounts as text, gives each sum the digits of its own currency's amounts: typed decimals share
    the widest scale of the batch, so EUR's 100.00 beside USD's 14 decimals stays 100.00.
    """
    if len(values) == 0:
        return {}
    if pa.types.is_dictionary(currencies.type):
        currencies = currencies.cast(pa.string())
    if currencies.null_count:
        currencies = pc.fill_null(currencies, NO_CURRENCY)
    found = pc.unique(currencies).to_pylist()

    def total(group: pa.Array, text: pa.Array | None) -> Decimal:
        amount = decimal_sum(group)
        return amount if text is None else _as_written(amount, text)

    if len(found) == 1:
        return {found[0]: total(values, written)}
    sums: ByCurrency = {}
    for code in sorted(found):
        mask = pc.equal(currencies, code)
        sums[code] = total(pc.filter(values, mask), None if written is None else pc.filter(written, mask))
    return sums


def _widest_scale(values: pa.Array) -> int:
    """The most digits after the point among decimal strings (exponents aside: see `_as_written`)."""
    if len(values) == values.null_count:
        return 0
    length = pc.binary_length(values)
    dot = pc.find_substring(values, ".")
    fraction = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(length, dot), 1))
    return int(pc.max(fraction).as_py() or 0)


def _as_written(total: Decimal, written: pa.Array) -> Decimal:
    """`total` at the widest scale of the amounts as written, when that keeps its value (an
    amount with an exponent can hide digits from the count: the sum is then left as it is)."""
    shown = total.quantize(Decimal(1).scaleb(-_widest_scale(written)), context=EXACT)
    return shown if shown == total else total


def _python_sum(values: pa.Array) -> Decimal:
    return add_exact(*(Decimal(v) for v in values.to_pylist() if v is not None))


def decimal_sum(values: pa.Array) -> Decimal:
    """The exact sum of decimals (typed, or strings): Arrow's decimal256 when it holds them
    and their sum, else Python's Decimal."""
    if len(values) == values.null_count:
        return Decimal(0)
    if pa.types.is_decimal128(values.type):  # 38 digits, plus what 2^31 rows can add, fit in 76
        total = pc.sum(pc.cast(values, pa.decimal256(DECIMAL256_DIGITS, values.type.scale))).as_py()
        return Decimal(0) if total is None else Decimal(total)
    # Arrow's parser and its sum wrap around silently past the type's 76 digits: Arrow adds
    # only plain numbers whose sum at scale 38 stays within them; Python adds the others.
    room = DECIMAL256_DIGITS - 38 - len(str(len(values)))
    longest = pc.max(pc.binary_length(values)).as_py() or 0
    if longest > room or pc.any(pc.match_substring_regex(values, "[eE]")).as_py():
        return _python_sum(values)
    try:
        total = pc.sum(pc.cast(values, pa.decimal256(DECIMAL256_DIGITS, 38))).as_py()
        if total is None:
            return Decimal(0)
        # Back to the widest scale written, so the sum reads as Python's Decimal would write it:
        # 100.00 + 0.50 is 100.50, not 38 decimals.
        return _as_written(Decimal(total), values)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _python_sum(values)
