"""Load one (period, domain) into finops.releves: lock, stage, check the gates, swap, commit.

Everything happens in one transaction, so a failure or a killed connection
leaves the previous rows exactly as they were. A transaction-scoped advisory
lock on the (period, domain) pair makes a second batch wait for the first
(up to `lock_timeout_seconds`) and then fail with a message naming the holder;
two loads of one pair never interleave.

The rows are COPYed into a new table shaped like the pair's leaf partition.
The quality gates (`gates.py`) are then checked; only when they pass does the
new table replace the leaf (DETACH and DROP the old leaf, rename, ATTACH: the
table's CHECK constraint spares ATTACH a scan). A failed gate rolls everything
back: the old leaf was never touched. Rows are written once, as in a plain COPY.

Files are read, validated and encoded (`copy_stream`: COPY's binary format where
every value has an exact binary form, CSV otherwise) on a producer thread while
the main thread streams the previous chunk into `COPY`, so the client-side work
overlaps with PostgreSQL's.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

import psycopg
from psycopg import sql

from finops_pipeline.landing.focus import COPY_COLUMNS, FocusFileError, ReadRules, validate_file
from finops_pipeline.landing.quality import PeriodQuality
from finops_pipeline.landing.store import LandingFileRefused, LandingFolderMissing, LandingStore
from finops_pipeline.money import ByCurrency, add_by_currency
from finops_pipeline.warehouse.copy_stream import CopyChunk, CopyEncoder
from finops_pipeline.warehouse.gates import GatePolicy, check_gates
from finops_pipeline.warehouse.partitions import ensure_partition, partition_name

__all__ = ["LOAD_LOCK_CLASS", "LoadConflict", "PeriodLoad", "QualityGateFailed", "load_period"]

LOAD_LOCK_CLASS: Final = 0x46494E4F  # first key of every (period, domain) advisory lock
_QUEUE_DEPTH: Final = 4
_COPY_COLUMNS_SQL: Final = sql.SQL(", ").join(sql.Identifier(c) for c in COPY_COLUMNS)


class LoadConflict(RuntimeError):
    """Another run holds the (period, domain) lock for longer than we may wait."""


@dataclass
class PeriodLoad:
    """What one (period, domain) load did; the numbers behind the op's metadata."""

    domain: str
    period: str
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    inserted: int = 0  # committed rows (0 when a gate failed)
    deleted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    billed_cost: ByCurrency = field(default_factory=dict)  # the committed rows' BilledCost, per currency
    seconds: float = 0.0
    quality: PeriodQuality = field(default_factory=lambda: PeriodQuality(period=""))

    def __post_init__(self) -> None:
        if not self.quality.period:
            self.quality.period = self.period

    @property
    def rejected_total(self) -> int:
        return int(self.rejected.total())


class QualityGateFailed(RuntimeError):
    """A (period, domain) whose new rows must not replace the old ones; `load` says what was seen."""

    def __init__(self, gate: str, message: str, load: PeriodLoad) -> None:
        super().__init__(message)
        self.gate, self.load = gate, load
        load.quality.gate = gate
        load.inserted, load.deleted, load.billed_cost = 0, 0, {}
        load.quality.rows_loaded = 0


_DONE = object()


def _produce(
    store: LandingStore,
    files: list[Any],
    domain: str,
    period: str,
    run_id: str,
    result: PeriodLoad,
    out: queue.Queue[Any],
    stop: threading.Event,
    rules: ReadRules,
) -> None:
    quality = result.quality
    encoder = CopyEncoder()

    def put(chunk: CopyChunk) -> bool:
        while not stop.is_set():
            try:
                out.put(chunk, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    try:
        for file in files:
            file_rules = rules
            if getattr(file, "skip_other_periods", False):
                file_rules = replace(rules, skip_other_periods=True, home_period=file.home_period)
            with store.open(file) as handle:
                checks = validate_file(
                    handle, file.name, domain, period, run_id, relative=file.label, rules=file_rules
                )
                for checked in checks:
                    quality.focus_versions.add(checked.focus_version)
                    result.rows_read += checked.rows_read
                    result.rejected.update(checked.rejected)
                    for reason, samples in checked.samples.items():
                        quality.reject(reason, 0, samples)
                    quality.warnings.update(checked.warnings)
                    quality.unassigned_cost = add_by_currency(
                        quality.unassigned_cost, checked.unassigned_cost
                    )
                    quality.unassigned_rows += checked.unassigned_rows
                    result.billed_cost = add_by_currency(result.billed_cost, checked.billed_cost)
                    if checked.valid is not None:
                        result.inserted += checked.valid.num_rows
                        for chunk in encoder.encode(checked.valid):
                            if not put(chunk):
                                return
                    if stop.is_set():
                        return
        for chunk in encoder.finish():
            if not put(chunk):
                return
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def _chunks(out: queue.Queue[Any]) -> Iterator[CopyChunk]:
    while True:
        item = out.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _lock_holder(conn_factory: Callable[[], psycopg.Connection], key: str) -> str:
    try:
        with conn_factory() as conn:
            row = conn.execute(
                """
                SELECT a.application_name, a.pid, now() - a.xact_start
                FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted
                  AND l.classid = %s AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295)
                  AND l.objsubid = 2
                """,
                (LOAD_LOCK_CLASS, key),
            ).fetchone()
    except psycopg.Error:
        return "another session"
    if not row:
        return "another session (it has just finished)"
    return f"{row[0] or 'a session'} (pid {row[1]}, for {row[2]})"


def _sync_quality(result: PeriodLoad) -> None:
    quality = result.quality
    quality.rows_read = result.rows_read
    quality.rows_loaded = result.inserted
    quality.rejected = Counter(result.rejected)


def load_period(
    database_url: str,
    store: LandingStore,
    domain: str,
    period: str,
    run_id: str,
    *,
    lock_timeout_seconds: float = 30.0,
    on_locked: Callable[[], None] | None = None,
    rules: ReadRules | None = None,
    policy: GatePolicy | None = None,
    before_commit: Callable[[], None] | None = None,
    in_transaction: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> PeriodLoad:
    """Replace the rows of (period, domain) with the validated landing files.

    Raises QualityGateFailed (with what the load saw) when the new rows must not
    replace the old ones: no landing row, an unreadable file, too many rejects, a
    shrink; LoadConflict when the pair stays locked by another run. `before_commit` runs inside
    the transaction once the new rows are in place: raising there rolls it back (the op checks
    its run is still alive). `in_transaction` then writes on the load's own connection, so what
    it records (which delivery was loaded) commits with the rows, or not at all.
    """
    started = time.perf_counter()
    rules = rules or ReadRules()
    policy = policy or GatePolicy()
    result = PeriodLoad(domain=domain, period=period)
    try:
        files = store.list_files(domain, period)
    except LandingFolderMissing as exc:
        raise QualityGateFailed("empty", f"{exc}; the previous rows are kept", result) from None
    except LandingFileRefused as exc:
        raise QualityGateFailed("unreadable_file", f"{exc}; the previous rows are kept", result) from None
    result.files = [f.name for f in files]
    result.quality.files = len(files)
    # Files in sub-folders are not part of the month: said, with their folder, beside the load.
    for folder, count in store.skipped_sub_folders(domain, period).items():
        result.quality.warnings[f"skipped_sub_folder:{folder}/"] += count
    try:
        _load(
            database_url,
            store,
            files,
            result,
            run_id,
            lock_timeout_seconds,
            on_locked,
            rules,
            policy,
            before_commit,
            in_transaction,
        )
    except (FocusFileError, LandingFileRefused) as exc:
        _sync_quality(result)
        raise QualityGateFailed("unreadable_file", f"{exc}; the previous rows are kept", result) from None
    result.seconds = time.perf_counter() - started
    return result


def _load(
    database_url: str,
    store: LandingStore,
    files: list[Any],
    result: PeriodLoad,
    run_id: str,
    lock_timeout_seconds: float,
    on_locked: Callable[[], None] | None,
    rules: ReadRules,
    policy: GatePolicy,
    before_commit: Callable[[], None] | None = None,
    in_transaction: Callable[[psycopg.Connection[Any]], None] | None = None,
) -> None:
    domain, period = result.domain, result.period
    key = f"{period}:{domain}"
    application_name = f"finops-batch {run_id[:8]} {domain} {period}"

    def connect() -> psycopg.Connection:
        # autocommit: each `conn.transaction()` below is a real transaction, not a savepoint.
        return psycopg.connect(database_url, application_name=application_name[:63], autocommit=True)

    with connect() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        leaf = ensure_partition(conn, domain, period)
        with conn.transaction():
            conn.execute(
                sql.SQL("SET LOCAL lock_timeout = {}").format(
                    sql.Literal(f"{int(lock_timeout_seconds * 1000)}ms")
                )
            )
            try:
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOAD_LOCK_CLASS, key))
            except psycopg.errors.LockNotAvailable:
                holder = _lock_holder(connect, key)
                raise LoadConflict(
                    f"domain {domain!r}, period {period} is being loaded by {holder}; waited "
                    f"{lock_timeout_seconds:g}s. Let that run finish, then launch this one again."
                ) from None
            if on_locked is not None:
                on_locked()
            conn.execute("SET LOCAL lock_timeout = 0")
            # The leaf holds exactly this (period, domain): no WHERE, no index needed.
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(leaf)).fetchone()
            previous = int(row[0]) if row else 0
            # Created in this transaction: gone with it on any failure. LIKE the leaf (not the
            # domain table), so staging takes no lock other loads or readers could wait on.
            name = partition_name(domain, period)
            staging = sql.Identifier("finops", f"{name}_next")
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                    staging, leaf
                )
            )
            # A CHECK that implies the leaf's partition bounds lets ATTACH PARTITION skip the
            # scan it would otherwise make of every new row (the leaf keeps it; its next staging
            # table inherits it through LIKE ... INCLUDING CONSTRAINTS).
            bounds = f"{name}_bounds"
            found = conn.execute(
                "SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
                (f"finops.{name}_next", bounds),
            ).fetchone()
            if not found:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (domain = {} AND period = {})").format(
                        staging, sql.Identifier(bounds), sql.Literal(domain), sql.Literal(period)
                    )
                )

            out: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
            stop = threading.Event()
            producer = threading.Thread(
                target=_produce,
                args=(store, files, domain, period, run_id, result, out, stop, rules),
                name=f"finops-load-{domain}-{period}",
                daemon=True,
            )
            producer.start()
            # FREEZE: the table is new in this transaction, so its rows can be written
            # frozen, sparing later vacuums a pass over them.
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {}, FREEZE)")
            try:
                for (_, binary), chunks in itertools.groupby(
                    _chunks(out), key=lambda c: (c.statement, c.binary)
                ):
                    copy_format = sql.SQL("binary" if binary else "csv")
                    copy_sql = statement.format(staging, _COPY_COLUMNS_SQL, copy_format)
                    with conn.cursor().copy(copy_sql) as copy:
                        for chunk in chunks:
                            copy.write(chunk.data)
            finally:
                stop.set()
                # A consumer that failed before reading _DONE (a killed connection) leaves
                # the producer blocked on a full queue: drain it, or join() waits forever.
                while producer.is_alive():
                    with contextlib.suppress(queue.Empty):
                        out.get_nowait()
                    producer.join(0.05)
            _sync_quality(result)
            failed = check_gates(result.quality, previous, policy)
            if failed is not None:
                raise QualityGateFailed(failed[0], failed[1], result)
            parent = sql.Identifier("finops", f"releves_{domain}")
            conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, leaf))
            conn.execute(sql.SQL("DROP TABLE {}").format(leaf))
            conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(staging, sql.Identifier(name)))
            conn.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                    parent, leaf, sql.Literal(period)
                )
            )
            result.deleted = previous
            if in_transaction is not None:
                in_transaction(conn)
            if before_commit is not None:
                before_commit()  # raising here rolls the whole swap back
