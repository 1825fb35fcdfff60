"""Load one (period, domain) into finops.releves: lock, delete, COPY, commit.

Everything happens in one transaction, so a failure or a killed connection
leaves the previous rows exactly as they were. A transaction-scoped advisory
lock on the (period, domain) pair makes a second batch wait for the first
(up to `lock_timeout_seconds`) and then fail with a message naming the holder;
two loads of one pair never interleave.

Files are read, validated and turned into CSV on a producer thread while the
main thread streams the previous chunk into `COPY`, so the client-side work
overlaps with PostgreSQL's.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql

from finops_pipeline.landing.focus import COPY_COLUMNS, to_csv_bytes, validate_file
from finops_pipeline.landing.store import LandingStore
from finops_pipeline.warehouse.partitions import ensure_partition

__all__ = ["LOAD_LOCK_CLASS", "LoadConflict", "PeriodLoad", "load_period"]

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
    inserted: int = 0
    deleted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    billed_cost: float = 0.0
    seconds: float = 0.0

    @property
    def rejected_total(self) -> int:
        return int(self.rejected.total())


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
) -> None:
    try:
        for file in files:
            with store.open(file) as handle:
                for checked in validate_file(handle, file.name, domain, period, run_id):
                    result.rows_read += checked.rows_read
                    result.rejected.update(checked.rejected)
                    result.billed_cost += checked.billed_cost
                    if checked.valid is not None:
                        result.inserted += checked.valid.num_rows
                        chunk = to_csv_bytes(checked.valid)
                        while not stop.is_set():
                            try:
                                out.put(chunk, timeout=0.5)
                                break
                            except queue.Full:
                                continue
                    if stop.is_set():
                        return
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def _chunks(out: queue.Queue[Any]) -> Iterator[bytes]:
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


def load_period(
    database_url: str,
    store: LandingStore,
    domain: str,
    period: str,
    run_id: str,
    *,
    lock_timeout_seconds: float = 30.0,
    on_locked: Callable[[], None] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> PeriodLoad:
    """Replace the rows of (period, domain) with the validated landing files.

    Raises LandingFolderMissing when the folder has no file, LoadConflict when
    the pair stays locked by another run, FocusFileError for an unreadable file.
    `before_commit` runs inside the transaction after the COPY: raising there rolls it back
    (the op checks its run is still alive).
    """
    started = time.perf_counter()
    files = store.list_files(domain, period)
    result = PeriodLoad(domain=domain, period=period, files=[f.name for f in files])
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
            cursor = conn.execute(sql.SQL("DELETE FROM {}").format(leaf))
            result.deleted = cursor.rowcount

            out: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
            stop = threading.Event()
            producer = threading.Thread(
                target=_produce,
                args=(store, files, domain, period, run_id, result, out, stop),
                name=f"finops-load-{domain}-{period}",
                daemon=True,
            )
            producer.start()
            try:
                with conn.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(leaf, _COPY_COLUMNS_SQL)
                ) as copy:
                    for chunk in _chunks(out):
                        copy.write(chunk)
            finally:
                stop.set()
                # A consumer that failed before reading _DONE (a killed connection) leaves
                # the producer blocked on a full queue: drain it, or join() waits forever.
                while producer.is_alive():
                    with contextlib.suppress(queue.Empty):
                        out.get_nowait()
                    producer.join(0.05)
            if before_commit is not None:
                before_commit()
    result.seconds = time.perf_counter() - started
    return result
