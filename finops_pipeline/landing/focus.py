"""FOCUS 1.2 landing files -> validated record batches ready for `COPY`.

Everything is vectorized with Arrow compute kernels: a million rows are
checked in a fraction of a second. Each rejected row is counted once, under
the first rule it breaks, in this order: missing column, missing value,
invalid cost or quantity, invalid timestamp, unknown currency, charge period
outside the billing month, invalid tags, forbidden character.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_pipeline.constants import (
    APPLICATION_TAG,
    CURRENCIES,
    FOCUS_COLUMNS,
    FOCUS_MANDATORY_COLUMNS,
    UNASSIGNED_APPLICATION,
)
from finops_pipeline.periods import month_bounds

__all__ = [
    "COPY_COLUMNS",
    "BatchContext",
    "FocusFileError",
    "ValidatedBatch",
    "read_focus_batches",
    "validate_batch",
    "validate_file",
]

# Columns of finops.releves written by COPY, in the order the CSV carries them.
COPY_COLUMNS: Final = (
    "period",
    "domain",
    "billing_account_id",
    "billing_period_start",
    "billing_period_end",
    "charge_period_start",
    "charge_period_end",
    "charge_category",
    "billed_cost",
    "effective_cost",
    "billing_currency",
    "service_name",
    "service_category",
    "provider_name",
    "region_id",
    "resource_id",
    "resource_name",
    "sub_account_id",
    "sub_account_name",
    "consumed_quantity",
    "consumed_unit",
    "tags",
    "application",
    "dagster_run_id",
    "source_file",
)
_FOCUS_FOR_COPY: Final = {
    "billing_account_id": "BillingAccountId",
    "billing_period_start": "BillingPeriodStart",
    "billing_period_end": "BillingPeriodEnd",
    "charge_period_start": "ChargePeriodStart",
    "charge_period_end": "ChargePeriodEnd",
    "charge_category": "ChargeCategory",
    "billed_cost": "BilledCost",
    "effective_cost": "EffectiveCost",
    "billing_currency": "BillingCurrency",
    "service_name": "ServiceName",
    "service_category": "ServiceCategory",
    "provider_name": "ProviderName",
    "region_id": "RegionId",
    "resource_id": "ResourceId",
    "resource_name": "ResourceName",
    "sub_account_id": "SubAccountId",
    "sub_account_name": "SubAccountName",
    "consumed_quantity": "ConsumedQuantity",
    "consumed_unit": "ConsumedUnit",
    "tags": "Tags",
}

_TIMESTAMP_COLUMNS: Final = (
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
)
# ISO 8601 forms accepted; naive times are UTC (the loader's session runs in UTC).
_TIMESTAMP_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
_NUMBER_RE: Final = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
_MAX_COST: Final = 1e13  # numeric(20, 6) holds 14 integer digits
# A flat JSON object whose values are strings, numbers, booleans or null: the
# shape of FOCUS tags. Rows not of this shape are parsed one by one in Python.
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
_CURRENCY_SET: Final = pa.array(sorted(CURRENCIES))
# The `application` tag of a flat tags object whose value needs no unescaping.
_APPLICATION_RE: Final = rf'"{APPLICATION_TAG}"\s*:\s*"(?P<app>[^"\\]*)"'


CSV_BLOCK_SIZE: Final = 8 << 20
PARQUET_BATCH_ROWS: Final = 131_072


class FocusFileError(ValueError):
    """A landing file that cannot be read at all (not CSV/Parquet, not UTF-8...)."""


@dataclass(frozen=True)
class BatchContext:
    domain: str
    period: str
    run_id: str
    source_file: str
    missing_columns: tuple[str, ...] = ()


@dataclass
class ValidatedBatch:
    rows_read: int
    valid: pa.RecordBatch | None  # COPY_COLUMNS, as strings
    billed_cost: float
    rejected: Counter[str] = field(default_factory=Counter)


def read_focus_batches(handle: BinaryIO, file_name: str) -> tuple[tuple[str, ...], Iterator[pa.RecordBatch]]:
    """Return the file's missing mandatory columns and its rows as string batches."""
    lower = file_name.lower()
    try:
        if lower.endswith(".parquet"):
            return _read_parquet(handle)
        stream: Any = handle
        if lower.endswith(".gz"):
            stream = pa.CompressedInputStream(pa.PythonFile(handle, mode="r"), "gzip")
        return _read_csv(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FocusFileError(f"cannot read landing file {file_name}: {exc}") from exc


def validate_file(
    handle: BinaryIO, file_name: str, domain: str, period: str, run_id: str
) -> Iterator[ValidatedBatch]:
    """Every batch of one landing file, validated: what loads, dry runs and benchmarks read."""
    missing, batches = read_focus_batches(handle, file_name)
    ctx = BatchContext(domain, period, run_id, file_name, missing)
    for batch in batches:
        yield validate_batch(batch, ctx)


def _read_csv(stream: Any) -> tuple[tuple[str, ...], Iterator[pa.RecordBatch]]:
    # Every column is read as a string: types are checked by the rules below,
    # so one bad cell rejects one row instead of failing the whole file.
    header_reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_SIZE, use_threads=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in FOCUS_COLUMNS},
            strings_can_be_null=True,
            null_values=[""],
            auto_dict_encode=False,
        ),
    )
    names = set(header_reader.schema.names)
    # Columns outside FOCUS_COLUMNS default to inferred types; cast them to strings too.
    missing = tuple(c for c in FOCUS_MANDATORY_COLUMNS if c not in names)
    return missing, _iter_reader(header_reader)


def _iter_reader(reader: Any) -> Iterator[pa.RecordBatch]:
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield batch
    except pa.ArrowInvalid as exc:
        raise FocusFileError(f"malformed CSV: {exc}") from exc


def _read_parquet(handle: BinaryIO) -> tuple[tuple[str, ...], Iterator[pa.RecordBatch]]:
    parquet = pq.ParquetFile(handle)
    names = set(parquet.schema_arrow.names)
    columns = [c for c in FOCUS_COLUMNS if c in names]
    missing = tuple(c for c in FOCUS_MANDATORY_COLUMNS if c not in names)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns or None):
            arrays = [_empty_as_null(_as_string(batch.column(i))) for i in range(batch.num_columns)]
            yield pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)

    return missing, batches()


def _empty_as_null(array: pa.Array) -> pa.Array:
    """Parquet keeps "" apart from null; CSV cannot. Read both the CSV way."""
    empty = pc.equal(pc.utf8_length(array), 0)
    return pc.if_else(empty, pa.scalar(None, pa.string()), array) if pc.any(empty).as_py() else array


def _as_string(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_large_string(array.type) or pa.types.is_dictionary(array.type):
        return pc.cast(array, pa.string())
    if pa.types.is_timestamp(array.type):
        if array.type.tz is None:
            array = pc.assume_timezone(array, "UTC")
        # In UTC (the "Z" below) and whole seconds: %S prints fractions for ms/us/ns
        # units, which the timestamp rules would then reject.
        array = pc.cast(array, pa.timestamp("s", tz="UTC"), safe=False)
        return pc.strftime(array, format="%Y-%m-%dT%H:%M:%SZ")
    if pa.types.is_date(array.type):
        return pc.strftime(pc.cast(array, pa.timestamp("s")), format="%Y-%m-%d")
    if pa.types.is_map(array.type) or pa.types.is_struct(array.type):
        return pa.array(
            [
                None if v is None else json.dumps(dict(v) if isinstance(v, list) else v)
                for v in array.to_pylist()
            ],
            pa.string(),
        )
    return pc.cast(array, pa.string())


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        return pa.nulls(batch.num_rows, pa.string())
    array = batch.column(index)
    return array if pa.types.is_string(array.type) else _as_string(array)


def _parse_timestamps(values: pa.Array) -> pa.Array:
    parsed = pc.strptime(values, format=_TIMESTAMP_FORMATS[0], unit="s", error_is_null=True)
    for fmt in _TIMESTAMP_FORMATS[1:]:
        if parsed.null_count == values.null_count:
            break
        alternative = pc.assume_timezone(pc.strptime(values, format=fmt, unit="s", error_is_null=True), "UTC")
        parsed = pc.coalesce(parsed, alternative)
    return _drop_impossible(values, parsed)


# Arrow rolls impossible dates over (2026-02-30 -> 2026-03-02) and takes any UTC offset,
# where PostgreSQL rejects both and would fail the whole COPY. Only the rare values that
# can be such (Feb 29-31, the 31st of a 30-day month, an offset of 16 h or more) are re-checked.
_SUSPECT_TIMESTAMP_RE: Final = (
    r"^\s*\d{4}-(?:02-(?:29|3\d)|(?:04|06|09|11)-31)|[+-](?:1[6-9]|[2-9]\d):?\d{2}\s*$"
)


def _drop_impossible(values: pa.Array, parsed: pa.Array) -> pa.Array:
    # Timestamps repeat a lot (hours of one month): look at each distinct value once.
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary
    suspect = pc.fill_null(pc.match_substring_regex(distinct, _SUSPECT_TIMESTAMP_RE), False)
    if not pc.any(suspect).as_py():
        return parsed
    impossible = np.zeros(len(distinct), dtype=bool)
    for index in np.flatnonzero(suspect.to_numpy(zero_copy_only=False)):
        try:
            offset = datetime.fromisoformat(distinct[int(index)].as_py().strip()).utcoffset()
            impossible[index] = offset is not None and abs(offset) >= timedelta(hours=16)
        except ValueError:
            impossible[index] = True
    bad = pc.fill_null(pc.take(pa.array(impossible), encoded.indices), False)
    return pc.if_else(bad, pa.scalar(None, parsed.type), parsed)


def _mark(reason_codes: np.ndarray, bad: pa.Array | np.ndarray, code: int) -> None:
    """Give `code` to the rows that are bad and not rejected yet."""
    mask = bad if isinstance(bad, np.ndarray) else bad.to_numpy(zero_copy_only=False)
    reason_codes[(reason_codes == 0) & mask] = code


def _constant(value: str, length: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(length, dtype=np.int32)), pa.array([value], pa.string())
    )


def validate_batch(batch: pa.RecordBatch, ctx: BatchContext) -> ValidatedBatch:
    """Split one batch into the rows to load (as COPY_COLUMNS) and counted rejects."""
    n = batch.num_rows
    if n == 0:
        return ValidatedBatch(rows_read=0, valid=None, billed_cost=0.0)
    if ctx.missing_columns:
        reason = f"missing_column:{ctx.missing_columns[0]}"
        return ValidatedBatch(rows_read=n, valid=None, billed_cost=0.0, rejected=Counter({reason: n}))

    reasons: list[str] = []
    codes = np.zeros(n, dtype=np.int16)

    def reason_code(reason: str) -> int:
        reasons.append(reason)
        return len(reasons)

    for name in FOCUS_MANDATORY_COLUMNS:
        values = _column(batch, name)
        if values.null_count:
            _mark(codes, pc.is_null(values), reason_code(f"missing_value:{name}"))

    billed = _column(batch, "BilledCost")
    costs: dict[str, pa.Array] = {}
    for name in ("BilledCost", "EffectiveCost", "ConsumedQuantity"):
        values = billed if name == "BilledCost" else _column(batch, name)
        well_formed = pc.fill_null(pc.match_substring_regex(values, _NUMBER_RE), True)
        numbers = pc.cast(pc.if_else(well_formed, values, None), pa.float64())
        in_range = pc.fill_null(pc.less(pc.abs(numbers), _MAX_COST), True)
        code = reason_code("invalid_quantity" if name == "ConsumedQuantity" else "invalid_cost")
        _mark(codes, pc.invert(pc.and_(well_formed, in_range)), code)
        costs[name] = numbers

    parsed: dict[str, pa.Array] = {}
    for name in _TIMESTAMP_COLUMNS:
        values = _column(batch, name)
        parsed[name] = ts = _parse_timestamps(values)
        bad = pc.and_(pc.is_valid(values), pc.is_null(ts))
        if pc.any(bad).as_py():
            _mark(codes, bad, reason_code(f"invalid_timestamp:{name}"))

    currency = _column(batch, "BillingCurrency")
    _mark(
        codes,
        pc.invert(pc.fill_null(pc.is_in(currency, value_set=_CURRENCY_SET), True)),
        reason_code("unknown_currency"),
    )

    start, end = month_bounds(ctx.period)
    ts_type = pa.timestamp("s", tz="UTC")
    month_start, month_end = pa.scalar(start, ts_type), pa.scalar(end, ts_type)
    charge_start, charge_end = parsed["ChargePeriodStart"], parsed["ChargePeriodEnd"]
    outside = pc.or_(
        pc.or_(pc.less(charge_start, month_start), pc.greater_equal(charge_start, month_end)),
        pc.or_(pc.less_equal(charge_end, charge_start), pc.greater(charge_end, month_end)),
    )
    _mark(codes, pc.fill_null(outside, False), reason_code("charge_period_outside_month"))

    tags = _column(batch, "Tags")
    flat: pa.Array | None = None
    if tags.null_count < n:
        flat = pc.fill_null(pc.match_substring_regex(tags, _FLAT_JSON_RE), True)
        if not pc.all(flat).as_py():
            _mark(codes, _non_object_json(tags, flat), reason_code("invalid_tags"))

    # PostgreSQL text cannot hold NUL characters.
    code = reason_code("invalid_character")
    for name in batch.schema.names:
        values = batch.column(batch.schema.get_field_index(name))
        if pa.types.is_string(values.type):
            _mark(codes, pc.fill_null(pc.match_substring(values, "\x00"), False), code)

    rejected: Counter[str] = Counter()
    if codes.any():
        found, counts = np.unique(codes[codes > 0], return_counts=True)
        for found_code, count in zip(found, counts, strict=True):
            rejected[reasons[int(found_code) - 1]] += int(count)
    keep = pa.array(codes == 0)
    valid_rows = n - int(rejected.total())
    if valid_rows == 0:
        return ValidatedBatch(rows_read=n, valid=None, billed_cost=0.0, rejected=rejected)

    arrays: list[pa.Array] = []
    for column in COPY_COLUMNS:
        if column == "period":
            arrays.append(_constant(ctx.period, valid_rows))
        elif column == "domain":
            arrays.append(_constant(ctx.domain, valid_rows))
        elif column == "dagster_run_id":
            arrays.append(_constant(ctx.run_id, valid_rows))
        elif column == "source_file":
            arrays.append(_constant(ctx.source_file, valid_rows))
        elif column == "application":
            if flat is None:  # no row has tags
                arrays.append(_constant(UNASSIGNED_APPLICATION, valid_rows))
            elif valid_rows == n:
                arrays.append(applications_of(tags, flat))
            else:
                arrays.append(applications_of(pc.filter(tags, keep), pc.filter(flat, keep)))
        else:
            values = _column(batch, _FOCUS_FOR_COPY[column])
            arrays.append(values if valid_rows == n else pc.filter(values, keep))
    valid = pa.RecordBatch.from_arrays(arrays, names=list(COPY_COLUMNS))
    billed_kept = costs["BilledCost"] if valid_rows == n else pc.filter(costs["BilledCost"], keep)
    total = pc.sum(billed_kept).as_py() or 0.0
    return ValidatedBatch(rows_read=n, valid=valid, billed_cost=float(total), rejected=rejected)


def _non_object_json(tags: pa.Array, flat: pa.Array) -> np.ndarray:
    """Rows whose tags are not the fast flat shape and are not a JSON object either."""
    bad = np.zeros(len(tags), dtype=bool)
    for index in np.flatnonzero(~flat.to_numpy(zero_copy_only=False)):
        text = tags[int(index)].as_py()
        try:
            parsed = json.loads(text)
            # A lone surrogate survives json.loads but not UTF-8 encoding (nor jsonb).
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
            ok = isinstance(parsed, dict) and "\x00" not in text and "\\u0000" not in text
        except (ValueError, UnicodeEncodeError):
            ok = False
        bad[index] = not ok
    return bad


def applications_of(tags: pa.Array, flat: pa.Array) -> pa.Array:
    """The `application` tag of each (valid) row, `unassigned` when absent or empty.

    `flat` marks the rows whose tags are a flat JSON object: a vectorized regex
    reads those; the rare others (nested objects, escaped characters) are
    parsed as JSON, where the top-level key is the one that counts.
    """
    if len(tags) == 0:
        return pa.array([], pa.string())
    found = pc.struct_field(pc.extract_regex(tags, _APPLICATION_RE), "app")
    unsure = pc.or_(
        pc.and_(
            pc.is_null(found),
            pc.fill_null(pc.match_substring(tags, f'"{APPLICATION_TAG}"'), False),
        ),
        pc.and_(pc.invert(flat), pc.is_valid(tags)),
    )
    if pc.any(unsure).as_py():
        values = found.to_pylist()
        for index in np.flatnonzero(unsure.to_numpy(zero_copy_only=False)):
            try:
                parsed = json.loads(tags[int(index)].as_py())
            except ValueError:
                continue
            value = parsed.get(APPLICATION_TAG) if isinstance(parsed, dict) else None
            if value is not None and not isinstance(value, str):
                value = json.dumps(value)
            values[int(index)] = value
        found = pa.array(values, pa.string())
    empty = pc.fill_null(pc.equal(found, ""), True)
    return pc.if_else(empty, UNASSIGNED_APPLICATION, found)


def to_csv_bytes(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False, batch_size=65_536))
    return sink.getvalue().to_pybytes()
