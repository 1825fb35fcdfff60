"""FOCUS landing files -> validated record batches of `finops.releves`, ready for `COPY`.

Reading. CSV columns are all read as strings (`ConvertOptions.column_types`, never
inferred from a sample), with empty fields and unquoted `NULL` as nulls; each FOCUS
column is then typed by its own rule below, and every other column is carried
unparsed into the `extra` jsonb object. Parquet's timestamp, decimal, map and
struct types are taken as they are. FOCUS 1.0 to 1.3 headers are mapped to the
1.2 column names (`focus_columns`).

Validation is vectorized with Arrow compute kernels. A row is rejected only when
it cannot be stored truthfully, counted once under the first reason, in this
order: missing or duplicated required column, malformed CSV row, missing value
of a required column, unparsable number, unparsable timestamp, unknown billing
currency, billing (or charge) period outside the landing month, NUL character.
Any other FOCUS rule a row breaks is counted as a conformance warning and the
row loads.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_pipeline.constants import DEFAULT_APPLICATION_TAG_KEYS, UNASSIGNED_APPLICATION
from finops_pipeline.landing.focus_columns import (
    CHARGE_CATEGORIES,
    FOCUS_COLUMNS,
    RELEVES_COLUMNS,
    REQUIRED_COLUMNS,
    SERVICE_CATEGORIES,
    billing_currencies,
    detect_version,
    map_column_names,
)
from finops_pipeline.landing.quality import MAX_SAMPLES, RejectSample
from finops_pipeline.money import DECIMAL256_DIGITS, decimal_sum, exact_decimal128
from finops_pipeline.periods import month_bounds

__all__ = [
    "COPY_COLUMNS",
    "FocusFileError",
    "ReadRules",
    "ValidatedBatch",
    "validate_file",
]

# Columns of finops.releves written by COPY, in table order.
COPY_COLUMNS: Final = RELEVES_COLUMNS

CSV_BLOCK_SIZE: Final = 8 << 20
PARQUET_BATCH_ROWS: Final = 131_072
_HEADER_MAX_BYTES: Final = 1 << 20
_TS_TYPE: Final = pa.timestamp("us", tz="UTC")
_NUMBER_RE: Final = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
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


class FocusFileError(ValueError):
    """A landing file that cannot be read through (not CSV/Parquet, truncated, not UTF-8...)."""


@dataclass(frozen=True)
class ReadRules:
    """How rows are assigned to a landing month and to an application."""

    period_basis: str = "billing"  # billing: BillingPeriodStart in the month; charge: ChargePeriodStart
    application_tag_keys: tuple[str, ...] = DEFAULT_APPLICATION_TAG_KEYS

    def __post_init__(self) -> None:
        if self.period_basis not in ("billing", "charge"):
            raise ValueError(f"period basis must be 'billing' or 'charge', got {self.period_basis!r}")


@dataclass
class ValidatedBatch:
    rows_read: int
    # COPY_COLUMNS: decimals as exact decimal128 (else exact text), timestamps typed, JSON as text
    valid: pa.RecordBatch | None
    billed_cost: Decimal = Decimal(0)  # exact sum of the valid rows' BilledCost
    rejected: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[RejectSample]] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    unassigned_cost: Decimal = Decimal(0)
    unassigned_rows: int = 0
    focus_version: str = "1.2"


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """What a file's header says: its batch column names and where each FOCUS column is."""

    unique: list[str]  # the header's names, duplicates renamed Name#2...: the batches' columns
    focus: dict[str, str]  # FOCUS 1.2 name -> batch column
    extra: list[tuple[str, str]]  # (name in the file, batch column) kept in `extra`
    duplicated: list[str]  # FOCUS columns the header names twice
    version: str

    @classmethod
    def of(cls, header: list[str]) -> _Columns:
        unique: list[str] = []
        seen: Counter[str] = Counter()
        for name in header:
            seen[name] += 1
            unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        focus: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        duplicated: list[str] = []
        for original, column, target in zip(header, unique, map_column_names(header), strict=True):
            if target is None:
                extra.append((original, column))
            elif target in focus:
                duplicated.append(target)
            else:
                focus[target] = column
        return cls(unique, focus, extra, sorted(set(duplicated)), detect_version(header))


@dataclass
class _Source:
    """One opened landing file: its columns and a stream of (batch, position) pairs."""

    relative: str
    columns: _Columns
    batches: Iterator[tuple[pa.RecordBatch, int | None, int]]  # batch, row group, first line/row
    malformed: list[int | None] = field(default_factory=list)  # CSV rows skipped: wrong field count


def _safe_reason(exc: BaseException) -> str:
    """Arrow's message without any file content (quoted values, row text)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"(Expected \d+ columns, got \d+).*", r"\1", text)
    return text[:200]


def _open_source(handle: BinaryIO, relative: str) -> _Source:
    lower = relative.lower()
    if lower.endswith(".parquet"):
        return _open_parquet(handle, relative)
    return _open_csv(handle, relative, gzipped=lower.endswith(".gz"))


def _csv_stream(handle: BinaryIO, gzipped: bool) -> Any:
    handle.seek(0)
    if gzipped:
        return pa.CompressedInputStream(pa.PythonFile(handle, mode="r"), "gzip")
    return pa.PythonFile(handle, mode="r")


def _read_header(handle: BinaryIO, relative: str, gzipped: bool) -> list[str]:
    handle.seek(0)
    try:
        if gzipped:
            # GzipFile leaves `handle` open: Arrow reads the file again from the start.
            with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
                head = unzipped.readline(_HEADER_MAX_BYTES)
        else:
            head = handle.readline(_HEADER_MAX_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise FocusFileError(f"{relative}: cannot read the header line: {_safe_reason(exc)}") from None
    if not head:
        return []
    if not head.endswith(b"\n") and len(head) == _HEADER_MAX_BYTES:
        raise FocusFileError(f"{relative}: no header line in the first {_HEADER_MAX_BYTES} bytes")
    line = head.rstrip(b"\n")
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise FocusFileError(
            f"{relative}: line 1 (header) is not UTF-8 text; export the file as UTF-8 CSV"
        ) from None
    return next(csv.reader([text]), [])


def _open_csv(handle: BinaryIO, relative: str, gzipped: bool) -> _Source:
    columns = _Columns.of(_read_header(handle, relative, gzipped))
    malformed: list[int | None] = []

    def skip_row(row: Any) -> str:
        malformed.append(row.number)
        return "skip"

    def batches() -> Iterator[tuple[pa.RecordBatch, int | None, int]]:
        if not columns.unique:
            return
        line = 2  # the header is line 1
        try:
            reader = pacsv.open_csv(
                _csv_stream(handle, gzipped),
                read_options=pacsv.ReadOptions(
                    column_names=columns.unique,
                    skip_rows=1,
                    block_size=CSV_BLOCK_SIZE,
                    # One thread: the parser then knows each skipped row's line number.
                    use_threads=False,
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=skip_row),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in columns.unique},
                    null_values=["", "NULL"],
                    strings_can_be_null=True,
                    # A quoted "NULL" is the text NULL; a quoted "" is made null below.
                    quoted_strings_can_be_null=False,
                ),
            )
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch, None, line
                line += batch.num_rows
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise FocusFileError(
                f"{relative}: unreadable after line {line + len(malformed) - 1}: {_safe_reason(exc)}"
            ) from None

    return _Source(relative, columns, batches(), malformed)


def _open_parquet(handle: BinaryIO, relative: str) -> _Source:
    try:
        parquet = pq.ParquetFile(handle)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FocusFileError(f"{relative}: not a readable Parquet file: {_safe_reason(exc)}") from None
    columns = _Columns.of(list(parquet.schema_arrow.names))

    def batches() -> Iterator[tuple[pa.RecordBatch, int | None, int]]:
        row = 1
        for group in range(parquet.num_row_groups):
            try:
                for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group]):
                    renamed = pa.RecordBatch.from_arrays(batch.columns, names=columns.unique)
                    yield renamed, group, row
                    row += batch.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise FocusFileError(
                    f"{relative}: row group {group} is unreadable: {_safe_reason(exc)}"
                ) from None

    return _Source(relative, columns, batches())


# --- typing columns -----------------------------------------------------------------------------


def _null_if_empty(array: pa.Array) -> pa.Array:
    empty = pc.equal(pc.binary_length(array), 0)  # from the offsets, no UTF-8 decoding
    return pc.if_else(empty, pa.scalar(None, pa.string()), array) if pc.any(empty).as_py() else array


def _json_text(array: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else json.dumps(dict(v) if isinstance(v, list) else v) for v in array.to_pylist()],
        pa.string(),
    )


def _as_text(array: pa.Array) -> pa.Array:
    """Any Arrow column as strings (null stays null, "" becomes null)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = pc.cast(array, kind.value_type)
        kind = array.type
    if pa.types.is_string(kind):
        return _null_if_empty(array)
    if pa.types.is_large_string(kind):
        return _null_if_empty(pc.cast(array, pa.string()))
    if pa.types.is_map(kind) or pa.types.is_struct(kind) or pa.types.is_list(kind):
        return _json_text(array)
    if pa.types.is_timestamp(kind):
        return pc.cast(_as_timestamp_native(array), pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _null_if_empty(pc.cast(array, pa.string()))
    return pc.cast(array, pa.string())


def _as_timestamp_native(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_date(kind):
        return pc.assume_timezone(pc.cast(array, pa.timestamp("us")), "UTC")
    if kind.tz is None:
        array = pc.assume_timezone(array, "UTC")
    return pc.cast(array, _TS_TYPE, safe=False)


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


def _parse_timestamps(values: pa.Array) -> pa.Array:
    """ISO 8601 text (`Z`, an offset, or no zone = UTC; fractions; `... UTC`) -> timestamp[us, UTC]."""
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        return _as_timestamp_native(values)
    values = _as_text(values)
    if values.null_count == len(values):
        return pa.nulls(len(values), _TS_TYPE)
    # Billing timestamps repeat a lot (hours of one month): parse each distinct value once.
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    text = pc.utf8_trim_whitespace(distinct)
    text = pc.replace_substring_regex(text, r"\s*UTC$", "Z")
    text = pc.replace_substring_regex(text, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00")
    zoned = pc.fill_null(pc.match_substring_regex(text, _HAS_ZONE_RE), False)
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    try:
        parsed = pc.cast(pc.cast(text, pa.timestamp("ns", tz="UTC")), _TS_TYPE, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = pa.array(
            [None if t is None else _parse_one_timestamp(t) for t in text.to_pylist()], _TS_TYPE
        )
    return pc.take(parsed, encoded.indices)


def _has_nul(values: pa.Array) -> bool:
    """Whether any string holds a NUL byte, from the data buffer in one pass."""
    data = values.buffers()[2]
    return data is not None and data.size > 0 and bool((np.frombuffer(data, dtype=np.uint8) == 0).any())


def _typed(array: pa.Array, kind: str) -> pa.Array:
    """A FOCUS column in its COPY form: decimals as exact text, timestamps typed, JSON as text."""
    if kind == "datetime":
        return _parse_timestamps(array)
    return _as_text(array)


# --- JSON: tags, SkuPriceDetails, extra -----------------------------------------------------------


def _object_json_rows(values: pa.Array) -> np.ndarray:
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


def _extra_objects(columns: list[tuple[str, pa.Array]], length: int) -> pa.Array:
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


def _tag_pattern(key: str) -> str:
    return r'"(?i:' + re.escape(key) + r')"\s*:\s*"(?P<app>[^"\\]*)"'


def applications_of(tags: pa.Array, json_ok: np.ndarray, keys: tuple[str, ...]) -> pa.Array:
    """The application of each row: the first configured tag key present (case-insensitive).

    Flat tag objects without escapes are read with vectorized regexes; the rare
    others (nested values, escapes, numbers) are parsed as JSON.
    """
    n = len(tags)
    if n == 0 or not keys:
        return pa.array([UNASSIGNED_APPLICATION] * n, pa.string())
    usable = pc.and_(pa.array(json_ok), pc.is_valid(tags))
    simple = pc.and_(usable, pc.invert(pc.fill_null(pc.match_substring(tags, "\\"), True)))
    found: pa.Array = pa.nulls(n, pa.string())
    for key in keys:
        # Each key looks only at the rows no earlier key named: usually none after the first.
        missing = pc.and_(simple, pc.is_null(found))
        if not pc.any(missing).as_py():
            break
        subset = pc.filter(tags, missing)
        value = pc.struct_field(pc.extract_regex(subset, _tag_pattern(key)), "app")
        value = pc.if_else(pc.fill_null(pc.equal(value, ""), True), pa.scalar(None, pa.string()), value)
        found = pc.replace_with_mask(found, missing, value)
    found = pc.if_else(simple, found, pa.scalar(None, pa.string()))
    hard = pc.and_(usable, pc.invert(simple))
    if pc.any(hard).as_py():
        values = found.to_pylist()
        wanted = [k.lower() for k in keys]
        for index in np.flatnonzero(hard.to_numpy(zero_copy_only=False)):
            parsed = json.loads(tags[int(index)].as_py())
            lowered: dict[str, Any] = {}
            for k, v in parsed.items():
                lowered.setdefault(k.lower(), v)
            for key in wanted:
                value = lowered.get(key)
                if value not in (None, ""):
                    values[int(index)] = value if isinstance(value, str) else json.dumps(value)
                    break
        found = pa.array(values, pa.string())
    return pc.fill_null(found, UNASSIGNED_APPLICATION)


# --- validation ---------------------------------------------------------------------------------


@dataclass
class _Marks:
    """Per-row reject codes: the first reason a row breaks wins."""

    n: int
    codes: np.ndarray = field(init=False)
    reasons: list[tuple[str, str | None, pa.Array | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.codes = np.zeros(self.n, dtype=np.int16)

    def mark(self, bad: pa.Array | np.ndarray, reason: str, column: str | None, raw: pa.Array | None) -> None:
        mask = bad if isinstance(bad, np.ndarray) else pc.fill_null(bad, False).to_numpy(zero_copy_only=False)
        if not mask.any():
            return
        self.reasons.append((reason, column, raw))
        self.codes[(self.codes == 0) & mask] = len(self.reasons)


def _constant(value: str, length: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(length, dtype=np.int32)), pa.array([value], pa.string())
    )


def _null_strings(n: int) -> pa.Array:
    return pa.nulls(n, pa.string())


def _decimal_reason(name: str) -> str:
    if name.endswith("Cost"):
        return "invalid_cost"
    if name.endswith("Quantity"):
        return "invalid_quantity"
    return "invalid_price"


@dataclass(frozen=True)
class _Where:
    relative: str
    row_group: int | None
    first_line: int


def validate_batch(
    batch: pa.RecordBatch,
    source: _Source,
    where: _Where,
    *,
    domain: str,
    period: str,
    run_id: str,
    source_file: str,
    rules: ReadRules,
) -> ValidatedBatch:
    """Split one batch into the rows to load (as COPY_COLUMNS), counted rejects and warnings."""
    n = batch.num_rows
    result = ValidatedBatch(rows_read=n, valid=None, focus_version=source.columns.version)
    if n == 0:
        return result
    marks = _Marks(n)
    warnings: Counter[str] = Counter()
    present = source.columns.focus

    def raw_column(name: str) -> pa.Array:
        column = present.get(name)
        return batch.column(batch.schema.get_field_index(column)) if column else _null_strings(n)

    raw = {c.name: raw_column(c.name) for c in FOCUS_COLUMNS if c.name in present}
    text = {name: _as_text(values) for name, values in raw.items()}
    everything = np.ones(n, dtype=bool)
    for name in REQUIRED_COLUMNS:
        if name not in present:
            marks.mark(everything, f"missing_column:{name}", name, None)
    for name in source.columns.duplicated:
        marks.mark(everything, f"duplicate_column:{name}", name, None)

    for name in REQUIRED_COLUMNS:
        if name in text and text[name].null_count:
            marks.mark(pc.is_null(text[name]), f"missing_value:{name}", name, text[name])

    decimals: dict[str, pa.Array] = {}  # typed exactly, when every value of the column allows it
    for column in FOCUS_COLUMNS:
        if column.kind == "decimal" and column.name in text:
            values = text[column.name]
            typed = exact_decimal128(values)
            if typed is not None:  # Arrow's decimal parser takes only plain numbers: all good
                decimals[column.name] = typed
                continue
            if pa.types.is_string(raw[column.name].type) or pa.types.is_large_string(raw[column.name].type):
                try:
                    pc.cast(values, pa.decimal256(DECIMAL256_DIGITS, 38))
                    continue
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass
                bad = pc.invert(pc.fill_null(pc.match_substring_regex(values, _NUMBER_RE), True))
                marks.mark(bad, _decimal_reason(column.name), column.name, values)
            elif pa.types.is_floating(raw[column.name].type):
                bad = pc.invert(pc.is_finite(raw[column.name]))
                marks.mark(bad, _decimal_reason(column.name), column.name, values)

    stamps: dict[str, pa.Array] = {}
    for column in FOCUS_COLUMNS:
        if column.kind == "datetime":
            values = raw.get(column.name)
            stamps[column.name] = ts = (
                _parse_timestamps(values) if values is not None else pa.nulls(n, _TS_TYPE)
            )
            if values is not None:
                bad = pc.and_(pc.is_valid(text[column.name]), pc.is_null(ts))
                marks.mark(bad, f"invalid_timestamp:{column.name}", column.name, text[column.name])

    currencies = pa.array(sorted(billing_currencies()))
    if "BillingCurrency" in text:
        currency = text["BillingCurrency"]
        unknown = pc.invert(pc.fill_null(pc.is_in(currency, value_set=currencies), True))
        marks.mark(unknown, "unknown_currency", "BillingCurrency", currency)

    start, end = month_bounds(period)
    month_start, month_end = pa.scalar(start, _TS_TYPE), pa.scalar(end, _TS_TYPE)
    basis = "BillingPeriodStart" if rules.period_basis == "billing" else "ChargePeriodStart"
    anchor = stamps[basis]
    outside = pc.or_(pc.less(anchor, month_start), pc.greater_equal(anchor, month_end))
    reason = (
        "billing_period_outside_month" if rules.period_basis == "billing" else "charge_period_outside_month"
    )
    marks.mark(outside, reason, basis, text.get(basis))

    for name, values in text.items():
        if pa.types.is_string(values.type) and _has_nul(values):
            nul = pc.fill_null(pc.match_substring(values, "\x00"), False)
            marks.mark(nul, "invalid_character", name, None)
    extra_values = [
        (key, _as_text(batch.column(batch.schema.get_field_index(col)))) for key, col in source.columns.extra
    ]
    for key, values in extra_values:
        if _has_nul(values):
            marks.mark(
                pc.fill_null(pc.match_substring(values, "\x00"), False), "invalid_character", key, None
            )

    # --- what is rejected, with samples
    codes = marks.codes
    if codes.any():
        found, counts = np.unique(codes[codes > 0], return_counts=True)
        for found_code, how_many in zip(found, counts, strict=True):
            reason_name, column_name, values = marks.reasons[int(found_code) - 1]
            result.rejected[reason_name] += int(how_many)
            samples = []
            for index in np.flatnonzero(codes == found_code)[:MAX_SAMPLES]:
                value = None if values is None else values[int(index)].as_py()
                samples.append(
                    RejectSample(
                        file=where.relative,
                        line=where.first_line + int(index),
                        column=column_name,
                        value=None if value is None else str(value),
                        row_group=where.row_group,
                    )
                )
            result.samples[reason_name] = samples
    keep_np = codes == 0
    kept = int(keep_np.sum())
    if kept == 0:
        return result
    keep = pa.array(keep_np)

    def kept_rows(values: pa.Array) -> pa.Array:
        return values if kept == n else pc.filter(values, keep)

    # --- conformance warnings, on the rows that load
    kept_text = {name: kept_rows(values) for name, values in text.items()}
    kept_stamps = {name: kept_rows(values) for name, values in stamps.items()}
    for column in FOCUS_COLUMNS:
        if column.level == "mandatory" and column.name not in present:
            warnings[f"{column.name}:mandatory_column_missing"] += kept
        elif not column.nullable and column.name in kept_text and column.name not in REQUIRED_COLUMNS:
            nulls = kept_text[column.name].null_count
            if nulls:
                warnings[f"{column.name}:null_not_allowed"] += nulls

    def count(mask: pa.Array) -> int:
        return int(pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() or 0)

    category = kept_text.get("ChargeCategory")
    if category is not None:
        warnings["ChargeCategory:unknown_value"] += count(
            pc.and_(pc.is_valid(category), pc.invert(pc.is_in(category, pa.array(sorted(CHARGE_CATEGORIES)))))
        )
        quantity = kept_text.get("ConsumedQuantity")
        if quantity is not None:
            warnings["ConsumedQuantity:not_null_unless_usage"] += count(
                pc.and_(pc.is_valid(quantity), pc.not_equal(category, "Usage"))
            )
    service = kept_text.get("ServiceCategory")
    if service is not None:
        warnings["ServiceCategory:unknown_value"] += count(
            pc.and_(pc.is_valid(service), pc.invert(pc.is_in(service, pa.array(sorted(SERVICE_CATEGORIES)))))
        )
    charge_class = kept_text.get("ChargeClass")
    if charge_class is not None:
        warnings["ChargeClass:unknown_value"] += count(pc.not_equal(charge_class, "Correction"))
    pricing_currency = kept_text.get("PricingCurrency")
    if pricing_currency is not None:
        warnings["PricingCurrency:unknown_currency"] += count(
            pc.invert(pc.is_in(pricing_currency, value_set=currencies))
        )
    charge_start, charge_end = kept_stamps["ChargePeriodStart"], kept_stamps["ChargePeriodEnd"]
    warnings["ChargePeriodEnd:not_after_start"] += count(pc.less_equal(charge_end, charge_start))
    billing_start, billing_end = kept_stamps["BillingPeriodStart"], kept_stamps["BillingPeriodEnd"]
    warnings["BillingPeriodEnd:not_after_start"] += count(pc.less_equal(billing_end, billing_start))
    warnings["ChargePeriodStart:outside_billing_period"] += count(
        pc.or_(pc.less(charge_start, billing_start), pc.greater_equal(charge_start, billing_end))
    )

    # JSON columns: an object jsonb can hold, or null with the text kept in `extra`.
    json_ok: dict[str, np.ndarray] = {}
    kept_extra = [(key, kept_rows(values)) for key, values in extra_values]
    for name in ("Tags", "SkuPriceDetails"):
        values = kept_text.get(name)
        if values is None:
            continue
        ok = _object_json_rows(values)
        bad = ~ok & ~pc.is_null(values).to_numpy(zero_copy_only=False)
        if bad.any():
            warnings[f"{name}:invalid_json"] += int(bad.sum())
            kept_extra.append((name, pc.if_else(pa.array(bad), values, pa.scalar(None, pa.string()))))
            kept_text[name] = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), values)
        json_ok[name] = ok & ~bad

    tags = kept_text.get("Tags")
    if tags is None or tags.null_count == kept:
        application = pa.array([UNASSIGNED_APPLICATION] * kept, pa.string())
    else:
        application = applications_of(tags, json_ok["Tags"], rules.application_tag_keys)
    unassigned = pc.equal(application, UNASSIGNED_APPLICATION)
    kept_decimals = {name: kept_rows(values) for name, values in decimals.items()}
    billed = kept_decimals.get("BilledCost", kept_text["BilledCost"])
    result.billed_cost = decimal_sum(billed)
    result.unassigned_rows = count(unassigned)
    if result.unassigned_rows:
        result.unassigned_cost = decimal_sum(pc.filter(billed, unassigned))

    lines = np.arange(where.first_line, where.first_line + n, dtype=np.int64)
    arrays: list[pa.Array] = []
    for name in COPY_COLUMNS:
        focus = _BY_SQL.get(name)
        if focus is not None:
            if focus.kind == "datetime":
                arrays.append(kept_stamps[focus.name])
            elif focus.name in kept_decimals:
                arrays.append(kept_decimals[focus.name])
            else:
                arrays.append(kept_text.get(focus.name, _null_strings(kept)))
        elif name == "period":
            arrays.append(_constant(period, kept))
        elif name == "domain":
            arrays.append(_constant(domain, kept))
        elif name == "application":
            arrays.append(application)
        elif name == "extra":
            arrays.append(_extra_objects(kept_extra, kept))
        elif name == "focus_version":
            arrays.append(_constant(source.columns.version, kept))
        elif name == "source_file":
            arrays.append(_constant(source_file, kept))
        elif name == "source_line":
            arrays.append(kept_rows(pa.array(lines)))
        elif name == "dagster_run_id":
            arrays.append(_constant(run_id, kept))
        else:  # pragma: no cover - COPY_COLUMNS and this function change together
            raise AssertionError(f"no value for column {name}")
    result.valid = pa.RecordBatch.from_arrays(arrays, names=list(COPY_COLUMNS))
    result.warnings = +warnings
    return result


_BY_SQL: Final = {c.sql: c for c in FOCUS_COLUMNS}


def validate_file(
    handle: BinaryIO,
    file_name: str,
    domain: str,
    period: str,
    run_id: str,
    *,
    relative: str | None = None,
    rules: ReadRules | None = None,
) -> Iterator[ValidatedBatch]:
    """Every batch of one landing file, validated: what loads, dry runs and benchmarks read.

    `file_name` is what `source_file` records; `relative` (the path under the landing
    root) is what errors and samples name. Raises FocusFileError, naming the file and
    where it stopped, when the file cannot be read through.
    """
    relative = relative or file_name
    rules = rules or ReadRules()
    source = _open_source(handle, relative)
    malformed_seen = 0
    for batch, row_group, first_line in source.batches:
        where = _Where(relative, row_group, first_line)
        checked = validate_batch(
            batch,
            source,
            where,
            domain=domain,
            period=period,
            run_id=run_id,
            source_file=file_name,
            rules=rules,
        )
        new_malformed = source.malformed[malformed_seen:]
        malformed_seen = len(source.malformed)
        if new_malformed:
            _add_malformed(checked, new_malformed, relative)
        yield checked
    if len(source.malformed) > malformed_seen:  # rows skipped after the last batch
        tail = ValidatedBatch(rows_read=0, valid=None, focus_version=source.columns.version)
        _add_malformed(tail, source.malformed[malformed_seen:], relative)
        yield tail


def _add_malformed(checked: ValidatedBatch, lines: list[int | None], relative: str) -> None:
    checked.rows_read += len(lines)
    checked.rejected["malformed_row"] += len(lines)
    checked.samples.setdefault("malformed_row", []).extend(
        RejectSample(file=relative, line=line, column=None, value=None) for line in lines[:MAX_SAMPLES]
    )
