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
    "add_exact",
    "decimal_sum",
    "exact_decimal128",
    "plain_decimal",
]

DECIMAL128_DIGITS: Final = 38
DECIMAL256_DIGITS: Final = 76

# Money is added without rounding: Python's default context keeps only 28 digits.
EXACT: Final = decimal.Context(prec=4000)


def plain_decimal(value: Decimal) -> str:
    """An exact decimal as plain text (no exponent, no trailing zeros): what metadata shows."""
    return "0" if value == 0 else format(value.normalize(EXACT), "f")


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
        return Decimal(0) if total is None else Decimal(total)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _python_sum(values)
