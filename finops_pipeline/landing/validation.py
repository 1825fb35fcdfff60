"""One batch of a landing file -> the rows to load (in COPY layout), counted rejects and warnings.

Validation is vectorized with Arrow compute kernels. A row is rejected only when
it cannot be stored truthfully, counted once under the first reason, in this
order: missing or duplicated required column, malformed CSV row (counted by the
reader), missing value of a required column, unparsable number, unparsable
timestamp, unknown billing currency, billing (or charge) period outside the
landing month, NUL character. Any other FOCUS rule a row breaks is counted as a
conformance warning and the row loads.

`validate_batch` reads as the list of its steps; each step is a function below it,
in the same order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from finops_pipeline.constants import DEFAULT_APPLICATION_TAG_KEYS, UNASSIGNED_APPLICATION
from finops_pipeline.landing.attribution import applications_of
from finops_pipeline.landing.focus_columns import (
    CHARGE_CATEGORIES,
    FOCUS_COLUMNS,
    RELEVES_COLUMNS,
    REQUIRED_COLUMNS,
    SERVICE_CATEGORIES,
    billing_currencies,
)
from finops_pipeline.landing.quality import MAX_SAMPLES, RejectSample
from finops_pipeline.landing.sources import MAX_ROW_GROUP_BYTES, OpenedFile
from finops_pipeline.landing.values import (
    NUMBER_RE,
    TS_TYPE,
    KeyValues,
    as_text,
    extra_objects,
    has_nul,
    is_nested,
    key_value_objects,
    object_json_rows,
    parse_timestamps,
)
from finops_pipeline.money import DECIMAL256_DIGITS, ByCurrency, exact_decimal128, sum_by_currency
from finops_pipeline.periods import month_bounds

__all__ = ["COPY_COLUMNS", "ReadRules", "ValidatedBatch", "Where", "validate_batch"]

# Columns of finops.releves written by COPY, in table order.
COPY_COLUMNS: Final = RELEVES_COLUMNS
_BY_SQL: Final = {c.sql: c for c in FOCUS_COLUMNS}
_JSON_COLUMNS: Final = ("Tags", "SkuPriceDetails")


@dataclass(frozen=True)
class ReadRules:
    """How rows are assigned to a landing month and to an application."""

    period_basis: str = "billing"  # billing: BillingPeriodStart in the month; charge: ChargePeriodStart
    application_tag_keys: tuple[str, ...] = DEFAULT_APPLICATION_TAG_KEYS
    # Files feeding two months (OCI): rows of another month are skipped, not rejected, and rows
    # whose month cannot be read count only in `home_period`, so no row is counted twice.
    skip_other_periods: bool = False
    home_period: str | None = None
    max_row_group_bytes: int = MAX_ROW_GROUP_BYTES  # larger Parquet row groups: unreadable_file

    def __post_init__(self) -> None:
        if self.period_basis not in ("billing", "charge"):
            raise ValueError(f"period basis must be 'billing' or 'charge', got {self.period_basis!r}")


@dataclass
class ValidatedBatch:
    rows_read: int
    # COPY_COLUMNS: decimals as exact decimal128 (else exact text), timestamps typed, JSON as text
    valid: pa.RecordBatch | None
    billed_cost: ByCurrency = field(default_factory=dict)  # the valid rows' BilledCost, per BillingCurrency
    rejected: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[RejectSample]] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    unassigned_cost: ByCurrency = field(default_factory=dict)
    unassigned_rows: int = 0
    focus_version: str = "1.2"


@dataclass(frozen=True)
class Where:
    """Where a batch starts in its file: what reject samples name."""

    relative: str
    row_group: int | None
    first_line: int


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


@dataclass
class _Columns:
    """One batch's FOCUS columns as read (`raw`) and as text, its `extra` columns as text.

    A nested Parquet column (struct, map, list) becomes JSON text; a nested Tags or
    SkuPriceDetails becomes the key-value object FOCUS describes (`key_values`).
    """

    n: int
    present: dict[str, str]  # FOCUS name -> batch column, for the columns the file has
    raw: dict[str, pa.Array]
    text: dict[str, pa.Array]
    extra: list[tuple[str, pa.Array]]
    key_values: dict[str, KeyValues]  # nested JSON-kind FOCUS columns, read as written

    @classmethod
    def of(cls, batch: pa.RecordBatch, source: OpenedFile) -> _Columns:
        present = source.columns.focus

        def column(name: str) -> pa.Array:
            return batch.column(batch.schema.get_field_index(name))

        raw = {c.name: column(present[c.name]) for c in FOCUS_COLUMNS if c.name in present}
        key_values = {
            name: key_value_objects(values)
            for name, values in raw.items()
            if name in _JSON_COLUMNS and is_nested(values.type)
        }
        text = {
            name: key_values[name].objects if name in key_values else as_text(values)
            for name, values in raw.items()
        }
        extra = [(key, as_text(column(name))) for key, name in source.columns.extra]
        return cls(batch.num_rows, present, raw, text, extra, key_values)


def validate_batch(
    batch: pa.RecordBatch,
    source: OpenedFile,
    where: Where,
    *,
    domain: str,
    period: str,
    run_id: str,
    source_file: str,
    rules: ReadRules,
) -> ValidatedBatch:
    """Split one batch into the rows to load (as COPY_COLUMNS), counted rejects and warnings."""
    result = ValidatedBatch(rows_read=batch.num_rows, valid=None, focus_version=source.columns.version)
    if batch.num_rows == 0:
        return result
    columns = _Columns.of(batch, source)
    marks = _Marks(columns.n)
    if rules.skip_other_periods:
        _skip_other_periods(marks, columns, period, rules)

    # Rejects, in the order a row's first reason is chosen.
    _reject_missing_columns(marks, columns, source.columns.duplicated)
    _reject_missing_values(marks, columns)
    decimals = _type_decimals(marks, columns)
    stamps = _type_timestamps(marks, columns)
    _reject_unknown_billing_currency(marks, columns)
    _reject_outside_month(marks, columns, stamps, period, rules)
    _reject_nul_characters(marks, columns)
    keep = _count_rejects(result, marks, where)
    if keep is None:
        return result

    # What loads: warnings, JSON objects, applications, money, then the COPY batch.
    kept = _KeptRows(keep, columns, decimals, stamps)
    warnings = _conformance_warnings(kept, columns.present)
    json_ok = _check_json_columns(kept, warnings)
    application = _attribute(result, kept, json_ok, rules)
    result.valid = _copy_batch(
        kept,
        application,
        where,
        domain=domain,
        period=period,
        run_id=run_id,
        source_file=source_file,
        version=source.columns.version,
    )
    result.warnings = +warnings
    return result


# --- rejects ------------------------------------------------------------------------------------

# Not a reject: the row belongs to another month's load (files feeding two months).
_OTHER_PERIOD: Final = "_other_period"


def _skip_other_periods(marks: _Marks, columns: _Columns, period: str, rules: ReadRules) -> None:
    """Marks the rows of another month first, so they are skipped whatever else they break."""
    basis = "BillingPeriodStart" if rules.period_basis == "billing" else "ChargePeriodStart"
    raw = columns.raw.get(basis)
    if raw is None:
        if rules.home_period not in (None, period):
            marks.mark(np.ones(columns.n, dtype=bool), _OTHER_PERIOD, None, None)
        return
    start, end = month_bounds(period)
    anchor = parse_timestamps(raw)
    other = pc.or_(
        pc.less(anchor, pa.scalar(start, TS_TYPE)), pc.greater_equal(anchor, pa.scalar(end, TS_TYPE))
    )
    if rules.home_period not in (None, period):
        # A row whose month cannot be read is rejected once, by the month the file was written in.
        other = pc.or_kleene(other, pc.is_null(anchor))
    marks.mark(other, _OTHER_PERIOD, None, None)


def _reject_missing_columns(marks: _Marks, columns: _Columns, duplicated: list[str]) -> None:
    everything = np.ones(columns.n, dtype=bool)
    for name in REQUIRED_COLUMNS:
        if name not in columns.present:
            # FOCUS column IDs are case-sensitive; a header that differs only in case is
            # named, so the reader sees what to rename.
            found = [key for key, _ in columns.extra if key.lower() == name.lower()]
            hint = f" (found {', '.join(repr(key) for key in found)})" if found else ""
            marks.mark(everything, f"missing_column:{name}{hint}", name, None)
    for name in duplicated:
        marks.mark(everything, f"duplicate_column:{name}", name, None)


def _reject_missing_values(marks: _Marks, columns: _Columns) -> None:
    for name in REQUIRED_COLUMNS:
        values = columns.text.get(name)
        if values is not None and values.null_count:
            marks.mark(pc.is_null(values), f"missing_value:{name}", name, values)


def _decimal_reason(name: str) -> str:
    if name.endswith("Cost"):
        return "invalid_cost"
    if name.endswith("Quantity"):
        return "invalid_quantity"
    return "invalid_price"


def _type_decimals(marks: _Marks, columns: _Columns) -> dict[str, pa.Array]:
    """The decimal columns typed exactly where every value of the column allows it; the
    values no number can be read from are rejected."""
    decimals: dict[str, pa.Array] = {}
    for column in FOCUS_COLUMNS:
        if column.kind != "decimal" or column.name not in columns.text:
            continue
        values, raw = columns.text[column.name], columns.raw[column.name]
        typed = exact_decimal128(values)
        if typed is not None:  # Arrow's decimal parser takes only plain numbers: all good
            decimals[column.name] = typed
            continue
        if pa.types.is_floating(raw.type):
            marks.mark(pc.invert(pc.is_finite(raw)), _decimal_reason(column.name), column.name, values)
            continue
        try:
            pc.cast(values, pa.decimal256(DECIMAL256_DIGITS, 38))
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # Text, or a type no number is written in (a list, a boolean...): each value is a
        # plain number or the row is rejected, naming its file, line and column.
        bad = pc.invert(pc.fill_null(pc.match_substring_regex(values, NUMBER_RE), True))
        marks.mark(bad, _decimal_reason(column.name), column.name, values)
    return decimals


def _type_timestamps(marks: _Marks, columns: _Columns) -> dict[str, pa.Array]:
    """Every FOCUS datetime column as timestamp[us, UTC] (absent: nulls); unparsable values rejected."""
    stamps: dict[str, pa.Array] = {}
    for column in FOCUS_COLUMNS:
        if column.kind != "datetime":
            continue
        values = columns.raw.get(column.name)
        if values is None:
            stamps[column.name] = pa.nulls(columns.n, TS_TYPE)
            continue
        stamps[column.name] = typed = parse_timestamps(values)
        text = columns.text[column.name]
        bad = pc.and_(pc.is_valid(text), pc.is_null(typed))
        marks.mark(bad, f"invalid_timestamp:{column.name}", column.name, text)
    return stamps


def _reject_unknown_billing_currency(marks: _Marks, columns: _Columns) -> None:
    currency = columns.text.get("BillingCurrency")
    if currency is not None:
        known = pa.array(sorted(billing_currencies()))
        unknown = pc.invert(pc.fill_null(pc.is_in(currency, value_set=known), True))
        marks.mark(unknown, "unknown_currency", "BillingCurrency", currency)


def _reject_outside_month(
    marks: _Marks, columns: _Columns, stamps: dict[str, pa.Array], period: str, rules: ReadRules
) -> None:
    start, end = month_bounds(period)
    month_start, month_end = pa.scalar(start, TS_TYPE), pa.scalar(end, TS_TYPE)
    basis = "BillingPeriodStart" if rules.period_basis == "billing" else "ChargePeriodStart"
    anchor = stamps[basis]
    outside = pc.or_(pc.less(anchor, month_start), pc.greater_equal(anchor, month_end))
    marks.mark(outside, f"{rules.period_basis}_period_outside_month", basis, columns.text.get(basis))


def _reject_nul_characters(marks: _Marks, columns: _Columns) -> None:
    """PostgreSQL text cannot hold a NUL character."""
    named = [*((name, v) for name, v in columns.text.items() if pa.types.is_string(v.type)), *columns.extra]
    for name, values in named:
        if has_nul(values):
            nul = pc.fill_null(pc.match_substring(values, "\x00"), False)
            marks.mark(nul, "invalid_character", name, None)


def _count_rejects(result: ValidatedBatch, marks: _Marks, where: Where) -> pa.Array | None:
    """Counts and samples each reason into `result`; the mask of the rows that load, or None
    when none does."""
    codes = marks.codes
    if codes.any():
        found, counts = np.unique(codes[codes > 0], return_counts=True)
        for found_code, how_many in zip(found, counts, strict=True):
            reason_name, column_name, values = marks.reasons[int(found_code) - 1]
            if reason_name == _OTHER_PERIOD:
                result.rows_read -= int(how_many)  # read by the other month's load, counted there
                continue
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
    keep = codes == 0
    return pa.array(keep) if keep.any() else None


# --- the rows that load -------------------------------------------------------------------------


class _KeptRows:
    """The columns of the rows that load (everything when nothing was rejected)."""

    def __init__(
        self, keep: pa.Array, columns: _Columns, decimals: dict[str, pa.Array], stamps: dict[str, pa.Array]
    ) -> None:
        self.keep, self.total = keep, columns.n
        self.n = int(pc.sum(keep).as_py() or 0)
        self.text = {name: self.rows(values) for name, values in columns.text.items()}
        self.stamps = {name: self.rows(values) for name, values in stamps.items()}
        self.decimals = {name: self.rows(values) for name, values in decimals.items()}
        self.extra = [(key, self.rows(values)) for key, values in columns.extra]
        self.key_values = {
            name: KeyValues(
                self.rows(kv.objects),
                kv.unreadable if self.n == self.total else kv.unreadable[keep.to_numpy(zero_copy_only=False)],
                None if kv.written is None else self.rows(kv.written),
            )
            for name, kv in columns.key_values.items()
        }

    def rows(self, values: pa.Array) -> pa.Array:
        return values if self.n == self.total else pc.filter(values, self.keep)

    def count(self, mask: pa.Array) -> int:
        return int(pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() or 0)


def _conformance_warnings(kept: _KeptRows, present: dict[str, str]) -> Counter[str]:
    """FOCUS rules the loading rows break: counted, never a reason to drop money."""
    warnings: Counter[str] = Counter()
    for column in FOCUS_COLUMNS:
        if column.level == "mandatory" and column.name not in present:
            warnings[f"{column.name}:mandatory_column_missing"] += kept.n
        elif not column.nullable and column.name in kept.text and column.name not in REQUIRED_COLUMNS:
            nulls = kept.text[column.name].null_count
            if nulls:
                warnings[f"{column.name}:null_not_allowed"] += nulls
    count, text = kept.count, kept.text
    category = text.get("ChargeCategory")
    if category is not None:
        allowed = pa.array(sorted(CHARGE_CATEGORIES))
        warnings["ChargeCategory:unknown_value"] += count(
            pc.and_(pc.is_valid(category), pc.invert(pc.is_in(category, allowed)))
        )
        quantity = text.get("ConsumedQuantity")
        if quantity is not None:
            warnings["ConsumedQuantity:not_null_unless_usage"] += count(
                pc.and_(pc.is_valid(quantity), pc.not_equal(category, "Usage"))
            )
    service = text.get("ServiceCategory")
    if service is not None:
        allowed = pa.array(sorted(SERVICE_CATEGORIES))
        warnings["ServiceCategory:unknown_value"] += count(
            pc.and_(pc.is_valid(service), pc.invert(pc.is_in(service, allowed)))
        )
    charge_class = text.get("ChargeClass")
    if charge_class is not None:
        warnings["ChargeClass:unknown_value"] += count(pc.not_equal(charge_class, "Correction"))
    # No rule on PricingCurrency's value: FOCUS 1.2 lets it be "the national or virtual
    # currency denomination" a service was priced in (`columns/pricingcurrency.md`), and
    # CurrencyFormat asks for an ISO 4217 code only "when the value is presented in national
    # currency" (`attributes/currency_format.md`): `Token` or `Credits` are as valid as `USD`.
    # BillingCurrency, which every amount here is in, must be national: checked as a reject.
    charge_start, charge_end = kept.stamps["ChargePeriodStart"], kept.stamps["ChargePeriodEnd"]
    warnings["ChargePeriodEnd:not_after_start"] += count(pc.less_equal(charge_end, charge_start))
    billing_start, billing_end = kept.stamps["BillingPeriodStart"], kept.stamps["BillingPeriodEnd"]
    warnings["BillingPeriodEnd:not_after_start"] += count(pc.less_equal(billing_end, billing_start))
    warnings["ChargePeriodStart:outside_billing_period"] += count(
        pc.or_(pc.less(charge_start, billing_start), pc.greater_equal(charge_start, billing_end))
    )
    return warnings


def _check_json_columns(kept: _KeptRows, warnings: Counter[str]) -> dict[str, np.ndarray]:
    """JSON columns: an object jsonb can hold, or null with the value as written in `extra`.

    Returns, per JSON column present, where the row holds a usable object.
    """
    json_ok: dict[str, np.ndarray] = {}
    for name in _JSON_COLUMNS:
        values = kept.text.get(name)
        if values is None:
            continue
        nested = kept.key_values.get(name)
        if nested is not None:  # built by key_value_objects: valid JSON objects where not null
            if nested.unreadable.any():
                warnings[f"{name}:not_key_value"] += int(nested.unreadable.sum())
            if nested.written is not None:
                kept.extra.append((name, nested.written))
            json_ok[name] = pc.is_valid(values).to_numpy(zero_copy_only=False)
            continue
        ok = object_json_rows(values)
        bad = ~ok & ~pc.is_null(values).to_numpy(zero_copy_only=False)
        if bad.any():
            warnings[f"{name}:invalid_json"] += int(bad.sum())
            kept.extra.append((name, pc.if_else(pa.array(bad), values, pa.scalar(None, pa.string()))))
            kept.text[name] = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), values)
        json_ok[name] = ok & ~bad
    return json_ok


def _attribute(
    result: ValidatedBatch, kept: _KeptRows, json_ok: dict[str, np.ndarray], rules: ReadRules
) -> pa.Array:
    """Each loading row's application; the batch's billed and unassigned money into `result`."""
    tags = kept.text.get("Tags")
    if tags is None or tags.null_count == kept.n:
        application = pa.array([UNASSIGNED_APPLICATION] * kept.n, pa.string())
    else:
        application = applications_of(tags, json_ok["Tags"], rules.application_tag_keys)
    unassigned = pc.equal(application, UNASSIGNED_APPLICATION)
    billed = kept.decimals.get("BilledCost", kept.text["BilledCost"])
    currency, written = kept.text["BillingCurrency"], kept.text["BilledCost"]
    result.billed_cost = sum_by_currency(billed, currency, written)
    result.unassigned_rows = kept.count(unassigned)
    if result.unassigned_rows:
        result.unassigned_cost = sum_by_currency(
            pc.filter(billed, unassigned), pc.filter(currency, unassigned), pc.filter(written, unassigned)
        )
    return application


def _constant(value: str, length: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(length, dtype=np.int32)), pa.array([value], pa.string())
    )


def _copy_batch(
    kept: _KeptRows,
    application: pa.Array,
    where: Where,
    *,
    domain: str,
    period: str,
    run_id: str,
    source_file: str,
    version: str,
) -> pa.RecordBatch:
    """The loading rows as COPY_COLUMNS: decimals exact, timestamps typed, JSON as text."""
    n = kept.n
    lines = np.arange(where.first_line, where.first_line + kept.total, dtype=np.int64)
    arrays: list[pa.Array] = []
    for name in COPY_COLUMNS:
        focus = _BY_SQL.get(name)
        if focus is not None:
            if focus.kind == "datetime":
                arrays.append(kept.stamps[focus.name])
            elif focus.name in kept.decimals:
                arrays.append(kept.decimals[focus.name])
            else:
                arrays.append(kept.text.get(focus.name, pa.nulls(n, pa.string())))
        elif name == "period":
            arrays.append(_constant(period, n))
        elif name == "domain":
            arrays.append(_constant(domain, n))
        elif name == "application":
            arrays.append(application)
        elif name == "extra":
            arrays.append(extra_objects(kept.extra, n))
        elif name == "focus_version":
            arrays.append(_constant(version, n))
        elif name == "source_file":
            arrays.append(_constant(source_file, n))
        elif name == "source_line":
            arrays.append(kept.rows(pa.array(lines)))
        elif name == "dagster_run_id":
            arrays.append(_constant(run_id, n))
        else:  # pragma: no cover - COPY_COLUMNS and this function change together
            raise AssertionError(f"no value for column {name}")
    return pa.RecordBatch.from_arrays(arrays, names=list(COPY_COLUMNS))
