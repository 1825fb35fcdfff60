"""Typing landing values, column at a time with Arrow compute: text, timestamps, JSON.

Every function takes and returns whole Arrow arrays; per-row Python runs only on the
rare values the vectorized path cannot decide (an unusual timestamp form, a JSON
object with nesting or escapes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "NUMBER_RE",
    "TS_TYPE",
    "KeyValues",
    "as_text",
    "extra_objects",
    "has_nul",
    "is_nested",
    "json_text",
    "key_value_objects",
    "object_json_rows",
    "parse_timestamps",
]

TS_TYPE: Final = pa.timestamp("us", tz="UTC")
NUMBER_RE: Final = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
# A flat JSON object whose values are strings, numbers, booleans or null: the shape of
# FOCUS tags, checked by one regex. Rows not of this shape are parsed one by one.
# Any \uXXXX escape but \u0000 and the UTF-16 surrogates D800-DFFF, which jsonb cannot
# hold alone: the slow path accepts a valid surrogate pair and rejects the others.
_JSON_U: Final = (
    r"u(?:[1-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}|0[1-9a-fA-F][0-9a-fA-F]{2}"
    r"|00[1-9a-fA-F][0-9a-fA-F]|000[1-9a-fA-F])"
)
_JSON_STR: Final = rf'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|{_JSON_U}))*"'
_JSON_VAL: Final = rf"(?:{_JSON_STR}|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)"
_JSON_PAIR: Final = rf"\s*{_JSON_STR}\s*:\s*{_JSON_VAL}\s*"
_FLAT_JSON_RE: Final = rf"^\s*\{{(?:{_JSON_PAIR}(?:,{_JSON_PAIR})*|\s*)\}}\s*$"
_HAS_ZONE_RE: Final = r"(Z|[+-]\d{2}(:?\d{2})?)$"
_MAX_OFFSET: Final = timedelta(hours=16)  # PostgreSQL refuses larger UTC offsets
# A JSON \u0000 escape (an odd number of backslashes before u0000): jsonb cannot hold it.
_ENCODED_NUL_RE: Final = r"(?:^|[^\\])(?:\\\\)*\\u0000"


# --- text ---------------------------------------------------------------------------------------


def _null_if_empty(array: pa.Array) -> pa.Array:
    empty = pc.equal(pc.binary_length(array), 0)  # from the offsets, no UTF-8 decoding
    return pc.if_else(empty, pa.scalar(None, pa.string()), array) if pc.any(empty).as_py() else array


def as_text(array: pa.Array) -> pa.Array:
    """Any Arrow column as strings (null stays null, "" becomes null)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = pc.cast(array, kind.value_type)
        kind = array.type
    if pa.types.is_string(kind):
        return _null_if_empty(array)
    if pa.types.is_large_string(kind):
        return _null_if_empty(pc.cast(array, pa.string()))
    if is_nested(kind):
        return json_text(array)
    if pa.types.is_timestamp(kind):
        return pc.cast(_as_timestamp_native(array), pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _null_if_empty(pc.cast(array, pa.string()))
    return pc.cast(array, pa.string())


def has_nul(values: pa.Array) -> bool:
    """Whether any string holds a NUL byte, from the data buffer in one pass."""
    data = values.buffers()[2]
    return data is not None and data.size > 0 and bool((np.frombuffer(data, dtype=np.uint8) == 0).any())


# --- timestamps ---------------------------------------------------------------------------------


def _as_timestamp_native(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_date(kind):
        return pc.assume_timezone(pc.cast(array, pa.timestamp("us")), "UTC")
    if kind.tz is None:
        array = pc.assume_timezone(array, "UTC")
    return pc.cast(array, TS_TYPE, safe=False)


def _parse_one_timestamp(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    offset = value.utcoffset()
    if offset is not None and abs(offset) >= _MAX_OFFSET:
        return None
    return value.astimezone(UTC)


def parse_timestamps(values: pa.Array) -> pa.Array:
    """ISO 8601 text (`Z`, an offset, or no zone = UTC; fractions; `... UTC`) -> timestamp[us, UTC]."""
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        return _as_timestamp_native(values)
    values = as_text(values)
    if values.null_count == len(values):
        return pa.nulls(len(values), TS_TYPE)
    # Billing timestamps repeat a lot (hours of one month): parse each distinct value once.
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    text = pc.utf8_trim_whitespace(distinct)
    text = pc.replace_substring_regex(text, r"\s*UTC$", "Z")
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00")
    zoned = pc.fill_null(pc.match_substring_regex(text, _HAS_ZONE_RE), False)
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    try:
        parsed = pc.cast(pc.cast(text, pa.timestamp("ns", tz="UTC")), TS_TYPE, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = pa.array([None if t is None else _parse_one_timestamp(t) for t in text.to_pylist()], TS_TYPE)
    return pc.take(parsed, encoded.indices)


# --- JSON: tags, SkuPriceDetails, extra -----------------------------------------------------------


def object_json_rows(values: pa.Array) -> np.ndarray:
    """True where the (non-null) text is a JSON object jsonb can hold."""
    fast = pc.fill_null(pc.match_substring_regex(values, _FLAT_JSON_RE), True)
    ok = fast.to_numpy(zero_copy_only=False).copy()
    for index in np.flatnonzero(~ok):
        text = values[int(index)].as_py()
        try:
            parsed = json.loads(text)
            # A lone surrogate survives json.loads but not UTF-8 encoding (nor jsonb).
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
            ok[index] = isinstance(parsed, dict) and "\x00" not in text and "\\u0000" not in text
        except (ValueError, UnicodeEncodeError):
            ok[index] = False
    return ok


def _json_quote(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (vectorized; rare control characters in Python)."""
    quoted = pc.replace_substring(values, "\\", "\\\\")
    quoted = pc.replace_substring(quoted, '"', '\\"')
    quoted = pc.replace_substring(quoted, "\n", "\\n")
    quoted = pc.replace_substring(quoted, "\r", "\\r")
    quoted = pc.replace_substring(quoted, "\t", "\\t")
    control = pc.fill_null(pc.match_substring_regex(quoted, r"[\x00-\x1f]"), False)
    if pc.any(control).as_py():
        fixed = [
            None if v is None else json.dumps(v)[1:-1] for v in pc.if_else(control, values, None).to_pylist()
        ]
        quoted = pc.if_else(control, pa.array(fixed, pa.string()), quoted)
    return pc.binary_join_element_wise('"', quoted, '"', "")


def extra_objects(columns: list[tuple[str, pa.Array]], length: int) -> pa.Array:
    """One JSON object per row of the non-FOCUS columns (null values left out; no column: null)."""
    if not columns:
        return pa.nulls(length, pa.string())
    parts = []
    for key, values in columns:
        prefix = json.dumps(key) + ":"
        pair = pc.binary_join_element_wise(prefix, _json_quote(values), ",", "")
        parts.append(pc.fill_null(pair, ""))
    body = pc.binary_join_element_wise(*parts, "") if len(parts) > 1 else parts[0]
    body = pc.utf8_rtrim(body, characters=",")
    wrapped = pc.binary_join_element_wise("{", body, "}", "")
    return pc.if_else(pc.equal(body, ""), pa.scalar(None, pa.string()), wrapped)


# --- nested Parquet columns (struct, map, list) as JSON -------------------------------------------


def is_nested(kind: pa.DataType) -> bool:
    return (
        pa.types.is_struct(kind)
        or pa.types.is_map(kind)
        or pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
    )


def _list_parts(array: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """A list (or map) column as (offsets from 0, its flattened values, each row's length)."""
    if pa.types.is_map(array.type):
        kind = array.type
        entry = pa.struct([pa.field("key", kind.key_type, nullable=False), pa.field("value", kind.item_type)])
        array = array.cast(pa.list_(entry))
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.array(offsets, pa.int32()), pc.list_flatten(array), lengths


def _joined(offsets: pa.Array, encoded: pa.Array, open_: str, close: str) -> pa.Array:
    """Each row's encoded elements joined by commas between `open_` and `close` (a null
    element makes the row null)."""
    inner = pc.binary_join(pa.ListArray.from_arrays(offsets, encoded), ",")
    return pc.binary_join_element_wise(open_, inner, close, "")


def _json_values(array: pa.Array) -> pa.Array:
    """Every slot of `array` as JSON text, a null slot as `null`: column at a time, nested
    types by recursion on their children."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _json_values(pc.cast(array, kind.value_type))
    if pa.types.is_null(kind):
        return pa.array(["null"] * len(array), pa.string())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        out = _json_quote(pc.cast(array, pa.string()))
    elif pa.types.is_boolean(kind):
        out = pc.if_else(array, "true", "false")
    elif pa.types.is_integer(kind) or pa.types.is_decimal(kind):
        out = pc.cast(array, pa.string())
    elif pa.types.is_floating(kind):  # JSON has no NaN nor infinity
        out = pc.if_else(pc.is_finite(array), pc.cast(array, pa.string()), "null")
    elif pa.types.is_temporal(kind):
        out = _json_quote(pc.cast(array, pa.string()))
    elif pa.types.is_struct(kind):
        parts = [
            pc.binary_join_element_wise(
                json.dumps(kind.field(i).name) + ":", _json_values(pc.struct_field(array, i)), ""
            )
            for i in range(kind.num_fields)
        ]
        body = pc.binary_join_element_wise(*parts, ",") if parts else pa.array([""] * len(array), pa.string())
        out = pc.binary_join_element_wise("{", body, "}", "")
    elif pa.types.is_map(kind):
        offsets, entries, _ = _list_parts(array)
        keys = _json_quote(pc.cast(pc.struct_field(entries, 0), pa.string()))
        pairs = pc.binary_join_element_wise(keys, _json_values(pc.struct_field(entries, 1)), ":")
        out = _joined(offsets, pairs, "{", "}")
    elif is_nested(kind):
        offsets, values, _ = _list_parts(array)
        out = _joined(offsets, _json_values(values), "[", "]")
    else:  # binary and rarer types: one value at a time
        out = pa.array([json.dumps(v, default=str) for v in array.to_pylist()], pa.string())
    return pc.if_else(pc.is_valid(array), out, "null")


def json_text(array: pa.Array) -> pa.Array:
    """A nested column as written, as JSON text (a map as an object, a list as an array); null
    stays null."""
    return pc.if_else(pc.is_valid(array), _json_values(array), pa.scalar(None, pa.string()))


def _encoded_nul(values: pa.Array) -> pa.Array:
    """Where JSON text holds a `\\u0000` escape, which jsonb refuses."""
    return pc.fill_null(pc.match_substring_regex(values, _ENCODED_NUL_RE), False)


def _key_value_record(entry: pa.DataType) -> bool:
    """Whether list elements of this type are key-value records: a `key` that reads as text."""
    if not pa.types.is_struct(entry) or entry.get_field_index("value") < 0:
        return False
    index = entry.get_field_index("key")
    if index < 0:
        return False
    key = entry.field(index).type
    return pa.types.is_string(key) or pa.types.is_large_string(key) or pa.types.is_integer(key)


@dataclass(frozen=True)
class KeyValues:
    """A nested FOCUS key-value column (Tags, SkuPriceDetails) read as written."""

    objects: pa.Array  # a JSON object per row, or null where none can be read faithfully
    unreadable: np.ndarray  # rows with a value but no faithful object (see key_value_objects)
    written: pa.Array | None  # the column as written (JSON text) where `objects` does not hold all of it


def key_value_objects(array: pa.Array) -> KeyValues:
    """A nested column as the JSON objects FOCUS's KeyValueFormat describes.

    - a map, or a list of records with `key` and `value` fields (Google's FOCUS view writes
      Tags so, with extra fields `x_type`, `x_inherited`, `x_namespace`): {key: value};
    - a struct: {field: value}.
    A list of records with other fields besides is kept whole in `written` too. A row
    whose records lack a key or repeat one (KeyValueFormat: "Keys ... MUST be unique
    within the object"), and any other shape (a list of strings...), has no object: it is
    `unreadable`, and `written` holds it as written.
    """
    kind = array.type
    valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
    if pa.types.is_struct(kind):
        return _checked(array, json_text(array), np.zeros(len(array), dtype=bool), others=False)
    if pa.types.is_map(kind):
        entry: pa.DataType = pa.struct([pa.field("key", kind.key_type), pa.field("value", kind.item_type)])
    elif is_nested(kind):
        entry = kind.value_type
    else:
        entry = pa.null()
    if not _key_value_record(entry):
        return KeyValues(pa.nulls(len(array), pa.string()), valid, json_text(array))
    offsets, entries, lengths = _list_parts(array)
    keys = pc.cast(pc.struct_field(entries, "key"), pa.string())
    pairs = pc.binary_join_element_wise(
        _json_quote(keys), _json_values(pc.struct_field(entries, "value")), ":"
    )
    objects = pc.if_else(pa.array(valid), _joined(offsets, pairs, "{", "}"), pa.scalar(None, pa.string()))
    unreadable = valid & ~pc.is_valid(objects).to_numpy(zero_copy_only=False)  # a null key
    if len(entries):
        rows = np.repeat(np.arange(len(array), dtype=np.int64), lengths)
        counted = pa.table({"row": rows, "key": keys}).group_by(["row", "key"]).aggregate([([], "count_all")])
        repeated = pc.filter(counted["row"], pc.greater(counted["count_all"], 1))
        unreadable[np.unique(repeated.to_numpy())] = True
    return _checked(array, objects, unreadable, others=entry.num_fields > 2)


def _checked(array: pa.Array, objects: pa.Array, unreadable: np.ndarray, *, others: bool) -> KeyValues:
    """`objects` without the rows already `unreadable` nor those holding a `\\u0000` escape,
    which jsonb refuses (as written, in `extra`, it is plain text)."""
    unreadable = unreadable | _encoded_nul(objects).to_numpy(zero_copy_only=False)
    if unreadable.any():
        objects = pc.if_else(pa.array(unreadable), pa.scalar(None, pa.string()), objects)
    if not others and not unreadable.any():
        return KeyValues(objects, unreadable, None)
    written = json_text(array)
    if not others:
        written = pc.if_else(pa.array(unreadable), written, pa.scalar(None, pa.string()))
    return KeyValues(objects, unreadable, written)
