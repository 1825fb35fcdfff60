"""Ingest benchmark: the loader end to end against raw COPY and pandas `to_sql`.

The input is full width: every FOCUS 1.2 column plus two provider `x_` columns,
as a FOCUS 1.2 export carries them. All three write the same validated rows into
`finops.releves` of one embedded PostgreSQL (pgserver) started here, in the same run:

* **raw COPY** (the anchor): the rows already in the loader's COPY layout,
  streamed from a file into `COPY finops.releves (...) FROM STDIN (FORMAT csv)`
  in one transaction: PostgreSQL's own cost of parsing and storing the rows.
* **raw binary COPY** (for information): the same rows already encoded the way
  the loader encodes them (`copy_stream`, COPY's binary format), streamed from
  a file: PostgreSQL's cost of storing the rows, with nothing left to parse.
* **end to end**: `load_period` with a `LocalLandingStore` reading the FOCUS CSV
  landing files: read, validate, convert, COPY and commit.
* **pandas `to_sql`**: the same rows, typed, through SQLAlchemy + psycopg 3
  with pandas' default `method=None` (SQLAlchemy's executemany), on a subset
  when `--to-sql-rows` is smaller than the row count.

Each measurement starts from an empty table (TRUNCATE, then CHECKPOINT so no
run pays for the previous one's dirty pages) and is repeated; the median is
reported. Exit status 1 when a target is missed, 0 when all are met.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--repeat 3] [--to-sql-rows 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from common import workdir
from psycopg import sql

from finops_pipeline.demo_data import generate_focus_table
from finops_pipeline.landing.focus import COPY_COLUMNS, validate_file
from finops_pipeline.landing.focus_columns import FOCUS_COLUMNS
from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.money import add_exact, decimal_sum
from finops_pipeline.warehouse.copy_stream import CopyEncoder, to_csv_bytes
from finops_pipeline.warehouse.loads import load_period
from finops_pipeline.warehouse.partitions import ensure_partition, partition_name
from finops_pipeline.warehouse.schema import ensure_schema

DOMAIN = "public"
PERIOD = "2026-10"
# Targets from the requirements: end to end at least as fast as raw COPY of the same
# rows into the same table, and at least five times as fast as pandas to_sql.
TARGET_VS_COPY = 1.0
TARGET_VS_TO_SQL = 5.0
# The anchor writes into the same leaf partition of finops.releves as the loader.
_COPY_SQL = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})")
_LEAF = sql.Identifier("finops", partition_name(DOMAIN, PERIOD))
_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in COPY_COLUMNS)
_NUMBERS = tuple(c.sql for c in FOCUS_COLUMNS if c.kind == "decimal")
_JSON = (*(c.sql for c in FOCUS_COLUMNS if c.kind == "json"), "extra")
_WORDS = ("Standard", "Committed", "Dynamic", "eu-west-3a", "Compute Instance", "On-Demand", "Used")


def widen(table: pa.Table, seed: int = 2) -> pa.Table:
    """The demo rows with every other FOCUS 1.2 column filled in, and two `x_` columns."""
    rng = np.random.default_rng(seed)
    n = table.num_rows
    columns = {name: table.column(name) for name in table.column_names}
    for column in FOCUS_COLUMNS:
        if column.name in columns:
            continue
        if column.kind == "decimal":
            values = np.round(rng.lognormal(1.0, 1.5, size=n), 10).astype(str)
        elif column.kind == "json":
            values = np.char.add('{"size": "', np.array(_WORDS)[rng.integers(0, len(_WORDS), size=n)])
            values = np.char.add(values, '"}')
        elif column.name.endswith("Currency"):
            values = np.full(n, "EUR")
        else:
            values = np.array(_WORDS)[rng.integers(0, len(_WORDS), size=n)]
        columns[column.name] = pa.array(values.astype(object), pa.string())
    columns["x_ServiceCode"] = pa.array(np.char.add("svc-", rng.integers(0, 500, size=n).astype(str)))
    columns["x_UsageType"] = pa.array(np.array(_WORDS)[rng.integers(0, len(_WORDS), size=n)].astype(object))
    return pa.table(columns)


@dataclass
class Measure:
    label: str
    rows: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.rows / self.median


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="FOCUS rows to generate and load")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (median kept)")
    parser.add_argument(
        "--to-sql-rows",
        type=int,
        default=50_000,
        help="rows written by pandas to_sql (a subset: it is slow); 0 skips it",
    )
    parser.add_argument("--files", type=int, default=4, help="CSV landing files the rows are split into")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where PostgreSQL and the files live (default: a temporary directory, removed after)",
    )
    args = parser.parse_args(argv)
    for name in ("rows", "repeat", "files"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.to_sql_rows < 0:
        parser.error(f"--to-sql-rows must be 0 or more, got {args.to_sql_rows}")
    return args


def _start_postgres(work: Path) -> tuple[Any, str]:
    # pgserver warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    server = pgserver.get_server(work / "pg", cleanup_mode="stop")
    base_url = server.get_uri()
    name = "bench_ingest"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base_url.replace("/postgres?", f"/{name}?", 1)
    ensure_schema(url)
    return server, url


def _write_landing(table: pa.Table, landing: Path, files: int) -> list[Path]:
    folder = landing / DOMAIN / PERIOD
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths = []
    step = -(-table.num_rows // files)
    for index in range(files):
        part = table.slice(index * step, step)
        if part.num_rows == 0:
            break
        path = folder / f"export-{index:03d}.csv"
        pacsv.write_csv(part, str(path))
        paths.append(path)
    return paths


def _validated(paths: list[Path], run_id: str) -> Iterator[pa.RecordBatch]:
    """The loader's own validation of the landing files: what it sends to COPY."""
    for path in paths:
        with open(path, "rb") as handle:
            for checked in validate_file(handle, str(path), DOMAIN, PERIOD, run_id):
                if checked.valid is not None:
                    yield checked.valid


def _billed_total(values: pa.Array) -> Decimal:
    """What sum(billed_cost) will say: the exact sum (numeric without a scale cap)."""
    return decimal_sum(values)


@dataclass
class Inputs:
    """The validated rows, as the COPY anchor file and as the subset given to to_sql."""

    copy_file: Path
    binary_files: list[tuple[bool, Path]]  # one file per COPY statement of the loader's encoding
    rows: int
    billed: Decimal
    subset: pa.Table | None
    subset_billed: Decimal


def _prepare_inputs(paths: list[Path], copy_file: Path, to_sql_rows: int) -> Inputs:
    rows = 0
    billed = Decimal(0)
    kept: list[pa.RecordBatch] = []
    run_id = str(uuid.uuid4())  # as long as the ids load_period writes
    encoder = CopyEncoder()
    statements: dict[int, tuple[bool, Any]] = {}

    def write_encoded(chunks: Iterator[Any]) -> None:
        for chunk in chunks:
            if chunk.statement not in statements:
                path = copy_file.with_name(f"{copy_file.stem}-{chunk.statement}.copy")
                statements[chunk.statement] = (chunk.binary, open(path, "wb"))  # noqa: SIM115
            statements[chunk.statement][1].write(chunk.data)

    try:
        with open(copy_file, "wb") as out:
            for batch in _validated(paths, run_id):
                out.write(to_csv_bytes(batch))
                write_encoded(encoder.encode(batch))
                if rows < to_sql_rows:
                    kept.append(batch.slice(0, to_sql_rows - rows))
                rows += batch.num_rows
                billed = add_exact(billed, _billed_total(batch.column(COPY_COLUMNS.index("billed_cost"))))
            write_encoded(encoder.finish())
    finally:
        for _, handle in statements.values():
            handle.close()
    binary_files = [(binary, Path(handle.name)) for binary, handle in statements.values()]
    subset = pa.Table.from_batches(kept) if kept else None
    subset_billed = _billed_total(subset.column("billed_cost").combine_chunks()) if subset else Decimal(0)
    return Inputs(copy_file, binary_files, rows, billed, subset, subset_billed)


def _typed_frame(table: pa.Table) -> Any:
    """The validated rows as a DataFrame typed like the table: timestamps, Decimals, dicts."""
    columns: dict[str, Any] = {}
    for name in table.column_names:
        values = table.column(name)
        if pa.types.is_dictionary(values.type):
            values = values.cast(pa.string())
        columns[name] = values
    frame = pa.table(columns).to_pandas()
    for name in _NUMBERS:  # exact values, as the loader sends them
        frame[name] = [None if v is None else Decimal(v) for v in frame[name]]
    for name in _JSON:
        frame[name] = [None if t is None else json.loads(t) for t in frame[name]]
    return frame


def _reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE finops.releves")
        ensure_partition(conn, DOMAIN, PERIOD)
        conn.execute("CHECKPOINT")


def _fingerprint(url: str) -> tuple[int, Decimal]:
    """Row count and billed total: every method must commit the rows it was given."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*), coalesce(sum(billed_cost), 0) FROM finops.releves").fetchone()
    return (int(row[0]), Decimal(row[1])) if row else (0, Decimal(0))


def _timed(url: str, action: Callable[[], object], expected: tuple[int, Decimal], label: str) -> float:
    """Seconds `action` takes from an empty table to committed rows, checked against `expected`."""
    _reset(url)
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    found = _fingerprint(url)
    if found != expected:
        raise SystemExit(
            f"FAILED: {label} committed {found[0]:,} rows billing {found[1]}, expected "
            f"{expected[0]:,} rows billing {expected[1]}: it did not load the rows it was given"
        )
    return seconds


def _raw_copy(url: str, files: list[tuple[bool, Path]]) -> None:
    """Each file streamed into one COPY statement, all in one transaction."""
    with psycopg.connect(url) as conn:
        for binary, path in files:
            statement = _COPY_SQL.format(_LEAF, _COLUMNS, sql.SQL("binary" if binary else "csv"))
            with conn.cursor().copy(statement) as copy, open(path, "rb") as src:
                while chunk := src.read(1 << 20):
                    copy.write(chunk)


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def _to_sql_writer(url: str, frame: Any) -> tuple[Callable[[], None], Callable[[], None]]:
    """pandas' default path: to_sql(method=None), i.e. SQLAlchemy executemany on psycopg 3."""
    from sqlalchemy import create_engine
    from sqlalchemy.dialects.postgresql import JSONB, NUMERIC, TIMESTAMP

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    timestamps = [c.sql for c in FOCUS_COLUMNS if c.kind == "datetime"]
    dtype: dict[str, Any] = (
        {c: TIMESTAMP(timezone=True) for c in timestamps}
        | {c: JSONB for c in _JSON}
        | {c: NUMERIC for c in _NUMBERS}
    )

    def write() -> None:
        frame.to_sql("releves", engine, schema="finops", if_exists="append", index=False, dtype=dtype)

    return write, engine.dispose


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    print(
        f"Ingest benchmark: {args.rows:,} full-width FOCUS rows ({DOMAIN}, {PERIOD}) in "
        f"{args.files} CSV files, "
        f"{os.cpu_count()} CPUs, {args.repeat} runs of each measurement",
        flush=True,
    )
    with workdir(args.data_dir, "finops-bench-") as work:
        started = time.perf_counter()
        table = widen(generate_focus_table(DOMAIN, PERIOD, args.rows, seed=1))
        landing = work / "landing"
        paths = _write_landing(table, landing, args.files)
        del table
        size = sum(p.stat().st_size for p in paths)
        print(
            f"generated {args.rows:,} rows ({size / 1e6:,.0f} MB of CSV) in "
            f"{time.perf_counter() - started:.1f}s (not measured)",
            flush=True,
        )
        server, url = _start_postgres(work)
        try:
            to_sql_rows = min(args.to_sql_rows, args.rows)
            inputs = _prepare_inputs(paths, work / "copy-input.csv", to_sql_rows)
            print(
                f"rows committed by each run: {inputs.rows:,} "
                f"({args.rows - inputs.rows:,} rejected by the FOCUS rules)",
                flush=True,
            )
            measures = _measure(url, landing, inputs, args.repeat)
        finally:
            server.cleanup()
    return _report(*measures, input_rows=args.rows, repeat=args.repeat)


def _measure(
    url: str, landing: Path, inputs: Inputs, repeat: int
) -> tuple[Measure, Measure, Measure, Measure | None]:
    store = LocalLandingStore(landing)
    expected = (inputs.rows, inputs.billed)
    copy = Measure("raw COPY (anchor)", inputs.rows, [])
    binary = Measure("raw binary COPY", inputs.rows, [])
    loader = Measure("end to end (load_period)", inputs.rows, [])
    to_sql: Measure | None = None
    write_frame, dispose = None, None
    if inputs.subset is not None:
        rows = inputs.subset.num_rows
        to_sql = Measure(f"pandas to_sql ({rows:,}-row subset)", rows, [])
        write_frame, dispose = _to_sql_writer(url, _typed_frame(inputs.subset))
    inputs.subset = None

    def load() -> None:
        result = load_period(url, store, DOMAIN, PERIOD, str(uuid.uuid4()))
        if result.inserted != inputs.rows:
            raise SystemExit(
                f"FAILED: load_period inserted {result.inserted:,} rows, expected {inputs.rows:,}"
            )

    try:
        csv_file = [(False, inputs.copy_file)]
        for run in range(1, repeat + 1):
            copy.seconds.append(_timed(url, lambda: _raw_copy(url, csv_file), expected, copy.label))
            loader.seconds.append(_timed(url, load, expected, loader.label))
            binary.seconds.append(
                _timed(url, lambda: _raw_copy(url, inputs.binary_files), expected, binary.label)
            )
            line = (
                f"run {run}: raw COPY {copy.seconds[-1]:.2f}s, end to end {loader.seconds[-1]:.2f}s, "
                f"raw binary COPY {binary.seconds[-1]:.2f}s"
            )
            if to_sql is not None and write_frame is not None:
                subset_expected = (to_sql.rows, inputs.subset_billed)
                to_sql.seconds.append(_timed(url, write_frame, subset_expected, to_sql.label))
                line += f", to_sql {to_sql.seconds[-1]:.2f}s"
            print(line, flush=True)
    finally:
        if dispose is not None:
            dispose()
    _reset(url)
    return copy, loader, binary, to_sql


def _report(
    copy: Measure, loader: Measure, binary: Measure, to_sql: Measure | None, *, input_rows: int, repeat: int
) -> int:
    print()
    print(f"{'method':<38} {'rows':>10} {'median s':>9} {'min-max s':>12} {'rows/s':>10}")
    for m in (copy, loader, binary, *([to_sql] if to_sql else [])):
        spread = f"{min(m.seconds):.2f}-{max(m.seconds):.2f}"
        print(f"{m.label:<38} {m.rows:>10,} {m.median:>9.2f} {spread:>12} {_fmt(m.rate):>10}")
    print(
        f"(rows/s = rows committed / median seconds of {repeat} runs, each from an empty "
        f"finops.releves; end to end also read {input_rows:,} input rows: "
        f"{_fmt(input_rows / loader.median)} input rows/s)"
    )
    print()
    failures = []
    vs_copy = loader.rate / copy.rate
    ok = vs_copy >= TARGET_VS_COPY
    print(
        f"end to end / raw COPY = {vs_copy:.2f}x (target >= {TARGET_VS_COPY}x): {'met' if ok else 'MISSED'}"
    )
    if not ok:
        failures.append("end to end / raw COPY")
    print(
        f"end to end / raw binary COPY = {loader.rate / binary.rate:.2f}x (no target: what the "
        f"loader's reading, validation and encoding cost beyond PostgreSQL's own work)"
    )
    if to_sql is not None:
        vs_to_sql = loader.rate / to_sql.rate
        ok = vs_to_sql >= TARGET_VS_TO_SQL
        print(
            f"end to end / pandas to_sql = {vs_to_sql:.1f}x (target >= {TARGET_VS_TO_SQL:g}x): "
            f"{'met' if ok else 'MISSED'}"
        )
        if not ok:
            failures.append("end to end / pandas to_sql")
    else:
        print("end to end / pandas to_sql: not measured (--to-sql-rows 0)")
    if failures:
        print(f"FAILED: target missed: {', '.join(failures)}")
        return 1
    if to_sql is None:
        print("OK: the raw COPY target is met; the to_sql target was not checked (--to-sql-rows 0)")
    else:
        print("OK: all ingest targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
