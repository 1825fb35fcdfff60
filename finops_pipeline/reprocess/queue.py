"""The reprocess queue in PostgreSQL (FINOPS_DATABASE_URL): the only module with its SQL.

The admin API files requests here; the code location's sensor reads the
pending ones in order and records what became of them. The tables live in
schema `finops_reprocess`, which this module owns and migrates through
`finops_pipeline.migrations` (whichever side uses the queue first applies them).

- `reprocess_requests`: one row per request; `sequence` orders them.
- `reprocess_idempotency`: (caller, Idempotency-Key) -> request, so a retried POST
  finds the request its first attempt created or matched.
- `reprocess_rate_events`: per-caller log of accepted POSTs in the rate window, so
  the limit holds across API processes.

Writes for one caller are serialized by a transaction-scoped advisory lock on
the caller, which makes "look for an existing request, else count against the
rate limit, else insert" atomic without table locks.

Waiting for that lock holds no connection: the API's queue (`pool_size` set) takes
pooled connections, lets the threads of one process wait for a caller in the process
(a lock per caller), and asks PostgreSQL for the advisory lock without blocking
(`pg_try_advisory_xact_lock`), handing its connection back between tries. A burst of
POSTs from one admin then uses at most one connection per API process, and the whole
queue at most `pool_size` (measured: 120 parallel POSTs over 3 API processes had
filled PostgreSQL's 100 connections, 33 answered 503, when each waited on its own).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from finops_pipeline.migrations import Migration, migrate
from finops_pipeline.reprocess.rules import CheckedRequest

__all__ = [
    "STATES",
    "IdempotencyConflict",
    "QueueUnavailable",
    "RateLimit",
    "RateLimited",
    "ReprocessQueue",
    "ReprocessRequest",
    "State",
    "Submission",
    "parse_request_id",
]

State = Literal["PENDING", "LAUNCHED", "FAILED", "REJECTED"]
STATES: Final[tuple[State, ...]] = ("PENDING", "LAUNCHED", "FAILED", "REJECTED")

SCHEMA: Final = "finops_reprocess"
_FORMER_SCHEMA: Final = "finops_admin"  # where versions before finops_reprocess kept the tables
# Advisory lock class of the reprocess tables (the read model and the loader use their own).
LOCK_CLASS: Final = 7_420_002
MESSAGE_LIMIT: Final = 2000
# How long a write waits for its caller's lock, held by another API process, before it is
# answered 503 ("try again"); each holder keeps it for a few milliseconds.
LOCK_WAIT_SECONDS: Final = 10.0
_LOCK_RETRY_FIRST: Final = 0.002
_LOCK_RETRY_MAX: Final = 0.05

_ADOPT_FORMER_TABLES: Final = f"""
DO $$
BEGIN
    IF to_regclass('{_FORMER_SCHEMA}.reprocess_requests') IS NOT NULL
       AND to_regclass('{SCHEMA}.reprocess_requests') IS NULL THEN
        ALTER TABLE {_FORMER_SCHEMA}.reprocess_requests SET SCHEMA {SCHEMA};
        ALTER TABLE {_FORMER_SCHEMA}.reprocess_idempotency SET SCHEMA {SCHEMA};
        ALTER TABLE {_FORMER_SCHEMA}.reprocess_rate_events SET SCHEMA {SCHEMA};
    END IF;
END $$;
"""

_DDL: Final = f"""

CREATE TABLE IF NOT EXISTS {SCHEMA}.reprocess_requests (
    request_id      uuid PRIMARY KEY,
    sequence        bigserial NOT NULL UNIQUE,
    periods         text[] NOT NULL,
    domains         text[] NOT NULL,
    reason          text NOT NULL,
    requested_by    text NOT NULL,
    state           text NOT NULL DEFAULT 'PENDING'
                    CHECK (state IN ('PENDING', 'LAUNCHED', 'FAILED', 'REJECTED')),
    message         text,
    run_id          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    launched_at     timestamptz,
    launch_attempts integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz
);
CREATE INDEX IF NOT EXISTS reprocess_requests_pending
    ON {SCHEMA}.reprocess_requests (sequence) WHERE state = 'PENDING';
CREATE INDEX IF NOT EXISTS reprocess_requests_by_state
    ON {SCHEMA}.reprocess_requests (state, sequence DESC);
CREATE INDEX IF NOT EXISTS reprocess_requests_by_caller
    ON {SCHEMA}.reprocess_requests (requested_by, state);
COMMENT ON TABLE {SCHEMA}.reprocess_requests IS
    'Reprocess requests filed through the admin API, launched by the finops_reprocess_sensor';

CREATE TABLE IF NOT EXISTS {SCHEMA}.reprocess_idempotency (
    requested_by    text NOT NULL,
    idempotency_key text NOT NULL,
    request_id      uuid NOT NULL REFERENCES {SCHEMA}.reprocess_requests (request_id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (requested_by, idempotency_key)
);

CREATE TABLE IF NOT EXISTS {SCHEMA}.reprocess_rate_events (
    caller text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS reprocess_rate_events_by_caller
    ON {SCHEMA}.reprocess_rate_events (caller, at);
"""

_COLUMN_NAMES: Final = (
    "request_id",
    "sequence",
    "periods",
    "domains",
    "reason",
    "requested_by",
    "state",
    "message",
    "run_id",
    "created_at",
    "updated_at",
    "launched_at",
    "launch_attempts",
)
_COLUMNS: Final = ", ".join(_COLUMN_NAMES)
_R_COLUMNS: Final = ", ".join(f"r.{c}" for c in _COLUMN_NAMES)
# (version, description, SQL). Append only: a shipped migration never changes.
MIGRATIONS: Final = (
    Migration(1, "requests, idempotency keys, rate events (adopting those of finops_admin)",
              _ADOPT_FORMER_TABLES + _DDL),
)  # fmt: skip


class QueueUnavailable(RuntimeError):
    """PostgreSQL cannot be reached (or dropped the connection)."""


class RateLimited(Exception):
    def __init__(self, caller: str, limit: RateLimit, retry_after_seconds: int) -> None:
        super().__init__(
            f"{caller} filed {limit.limit} reprocess request(s) in the last {limit.window_seconds:g}s, "
            f"the most allowed; retry in {retry_after_seconds}s"
        )
        self.retry_after_seconds = retry_after_seconds


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused by its caller with a different request body."""

    def __init__(self, key: str, existing: ReprocessRequest) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for request {existing.request_id} "
            f"(periods {','.join(existing.periods)}; domains {','.join(existing.domains)}) with a "
            "different body; use a new key for a different request"
        )
        self.existing = existing


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window_seconds: float


@dataclass(frozen=True)
class ReprocessRequest:
    request_id: str
    sequence: int
    periods: list[str]
    domains: list[str]
    reason: str
    requested_by: str
    state: State
    message: str | None
    run_id: str | None
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None
    launch_attempts: int


@dataclass(frozen=True)
class Submission:
    request: ReprocessRequest
    created: bool
    matched: Literal["new", "idempotency_key", "identical_pending"]


def parse_request_id(value: str) -> str | None:
    """The canonical form of a request id, or None when `value` is not a UUID."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return None


def _request(row: dict[str, Any]) -> ReprocessRequest:
    return ReprocessRequest(
        request_id=str(row["request_id"]),
        sequence=int(row["sequence"]),
        periods=list(row["periods"]),
        domains=list(row["domains"]),
        reason=row["reason"],
        requested_by=row["requested_by"],
        state=row["state"],
        message=row["message"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        launched_at=row["launched_at"],
        launch_attempts=int(row["launch_attempts"]),
    )


class _CallerLocks:
    """One lock per caller, kept while a thread holds or waits for it: the threads of a process
    that write for one caller wait here, holding no database connection."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, caller: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(caller, (threading.Lock(), 0))
            self._locks[caller] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[caller]
                if users == 1:
                    del self._locks[caller]
                else:
                    self._locks[caller] = (lock, users - 1)


class ReprocessQueue:
    """Requests, idempotency keys and rate events.

    Without `pool_size` (the sensor, a tick now and then) each call opens one short
    connection; with it (the admin API) calls share a pool of at most `pool_size`
    connections, each checked before use, so a connection the database dropped (it
    restarted) is replaced instead of failing the request. Call `close()` when done.
    """

    def __init__(
        self, database_url: str, *, connect_timeout_seconds: int = 5, pool_size: int | None = None
    ) -> None:
        if not database_url:
            raise QueueUnavailable(
                "FINOPS_DATABASE_URL is not set: reprocess requests are kept in PostgreSQL"
            )
        if pool_size is not None and pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.database_url = database_url
        self.connect_timeout_seconds = connect_timeout_seconds
        self._ready = False
        self._ready_lock = threading.Lock()
        self._callers = _CallerLocks()
        self._pool: ConnectionPool[Any] | None = None
        if pool_size is not None:
            self._pool = ConnectionPool(
                database_url,
                connection_class=psycopg.Connection,
                min_size=0,
                max_size=pool_size,
                kwargs={
                    "row_factory": dict_row,
                    "autocommit": True,
                    "connect_timeout": connect_timeout_seconds,
                    "options": "-c TimeZone=UTC",
                    "application_name": "finops-admin-reprocess",
                },
                check=ConnectionPool.check_connection,
                open=False,
                name="finops-reprocess",
            )
        self._pool_opened = False
        self._pool_lock = threading.Lock()

    def close(self) -> None:
        """Close the pool's connections (a queue without a pool holds none)."""
        with self._pool_lock:
            if self._pool is not None and self._pool_opened:
                self._pool.close()
                self._pool_opened = False

    def _open_pool(self, pool: ConnectionPool[Any]) -> None:
        with self._pool_lock:
            if not self._pool_opened:
                # Without waiting: a database down at start is reported by the first call.
                pool.open(wait=False)
                self._pool_opened = True

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        if self._pool is not None:
            if not self._pool_opened:
                self._open_pool(self._pool)
            try:
                with self._pool.connection(timeout=float(self.connect_timeout_seconds)) as pooled:
                    yield cast("psycopg.Connection[dict[str, Any]]", pooled)  # row_factory=dict_row
            except PoolTimeout as exc:
                raise QueueUnavailable(
                    f"no PostgreSQL connection (FINOPS_DATABASE_URL) free within "
                    f"{self.connect_timeout_seconds}s: {exc}"
                ) from exc
            except psycopg.OperationalError as exc:
                raise QueueUnavailable(f"PostgreSQL (FINOPS_DATABASE_URL) failed: {exc}") from exc
            return
        try:
            conn = psycopg.connect(
                self.database_url,
                row_factory=dict_row,
                connect_timeout=self.connect_timeout_seconds,
                options="-c TimeZone=UTC",
            )
        except psycopg.OperationalError as exc:
            raise QueueUnavailable(f"cannot connect to PostgreSQL (FINOPS_DATABASE_URL): {exc}") from exc
        try:
            yield conn
        except psycopg.OperationalError as exc:
            raise QueueUnavailable(f"PostgreSQL (FINOPS_DATABASE_URL) failed: {exc}") from exc
        finally:
            conn.close()

    # --- bootstrap ---------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Apply the queue's migrations once per process (see `finops_pipeline.migrations`)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            with self.connection() as conn:
                migrate(conn, SCHEMA, MIGRATIONS)
            self._ready = True

    # --- the API side ------------------------------------------------------------------------

    @contextmanager
    def _caller_transaction(self, caller: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A transaction holding `caller`'s advisory lock. Waiting for the lock holds no
        connection: first behind this process's other threads for `caller`, then by tries
        without blocking, the connection handed back between them."""
        with self._callers.hold(caller):
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            pause = _LOCK_RETRY_FIRST
            while True:
                with self.connection() as conn, conn.transaction():
                    row = conn.execute(
                        "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s)) AS locked", (LOCK_CLASS, caller)
                    ).fetchone()
                    if row is not None and row["locked"]:
                        yield conn
                        return
                if time.monotonic() >= deadline:
                    raise QueueUnavailable(
                        f"another API process kept the reprocess requests of {caller} locked for "
                        f"{LOCK_WAIT_SECONDS:g}s; try again in a moment"
                    )
                time.sleep(
                    pause * (0.5 + random.random())
                )  # jitter: callers of several processes do not retry in step
                pause = min(pause * 2, _LOCK_RETRY_MAX)

    @staticmethod
    def _take_rate(conn: psycopg.Connection[Any], caller: str, limit: RateLimit) -> None:
        window = float(limit.window_seconds)
        conn.execute(
            f"DELETE FROM {SCHEMA}.reprocess_rate_events "
            "WHERE caller = %s AND at <= now() - make_interval(secs => %s)",
            (caller, window),
        )
        row = conn.execute(
            f"SELECT count(*) AS n, min(at) AS oldest, now() AS now "
            f"FROM {SCHEMA}.reprocess_rate_events WHERE caller = %s",
            (caller,),
        ).fetchone()
        assert row is not None
        if row["n"] >= limit.limit:
            remaining = window - (row["now"] - row["oldest"]).total_seconds() if row["oldest"] else window
            raise RateLimited(caller, limit, max(1, math.ceil(remaining)))
        conn.execute(f"INSERT INTO {SCHEMA}.reprocess_rate_events (caller) VALUES (%s)", (caller,))

    def take_rate(self, caller: str, limit: RateLimit) -> None:
        """Count one call of `caller` (a dry run); raises RateLimited when over the limit."""
        self.ensure_schema()
        with self._caller_transaction(caller) as conn:
            self._take_rate(conn, caller, limit)

    def submit(
        self,
        checked: CheckedRequest,
        *,
        requested_by: str,
        idempotency_key: str | None = None,
        rate_limit: RateLimit | None = None,
    ) -> Submission:
        """File a request, or return the one this call repeats.

        Order: a known (caller, Idempotency-Key) returns its request (IdempotencyConflict
        if the body differs); then an identical PENDING request of the same caller is
        returned; only a new request counts against the rate limit (RateLimited).
        """
        self.ensure_schema()
        with self._caller_transaction(requested_by) as conn:
            if idempotency_key:
                row = conn.execute(
                    f"SELECT {_R_COLUMNS} "
                    f"FROM {SCHEMA}.reprocess_idempotency k "
                    f"JOIN {SCHEMA}.reprocess_requests r USING (request_id) "
                    "WHERE k.requested_by = %s AND k.idempotency_key = %s",
                    (requested_by, idempotency_key),
                ).fetchone()
                if row:
                    existing = _request(row)
                    same = (existing.periods, existing.domains, existing.reason) == (
                        checked.periods,
                        checked.domains,
                        checked.reason,
                    )
                    if not same:
                        raise IdempotencyConflict(idempotency_key, existing)
                    return Submission(existing, created=False, matched="idempotency_key")
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.reprocess_requests "
                "WHERE requested_by = %s AND state = 'PENDING' AND periods = %s AND domains = %s "
                "AND reason = %s ORDER BY sequence LIMIT 1",
                (requested_by, checked.periods, checked.domains, checked.reason),
            ).fetchone()
            if row:
                submission = Submission(_request(row), created=False, matched="identical_pending")
            else:
                if rate_limit is not None:
                    self._take_rate(conn, requested_by, rate_limit)
                row = conn.execute(
                    f"INSERT INTO {SCHEMA}.reprocess_requests "
                    "(request_id, periods, domains, reason, requested_by) VALUES (%s, %s, %s, %s, %s) "
                    f"RETURNING {_COLUMNS}",
                    (uuid.uuid4(), checked.periods, checked.domains, checked.reason, requested_by),
                ).fetchone()
                assert row is not None
                submission = Submission(_request(row), created=True, matched="new")
            if idempotency_key:
                conn.execute(
                    f"INSERT INTO {SCHEMA}.reprocess_idempotency (requested_by, idempotency_key, request_id) "
                    "VALUES (%s, %s, %s)",
                    (requested_by, idempotency_key, submission.request.request_id),
                )
            return submission

    def get(self, request_id: str) -> ReprocessRequest | None:
        canonical = parse_request_id(request_id)
        if canonical is None:
            return None
        self.ensure_schema()
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.reprocess_requests WHERE request_id = %s",
                (canonical,),
            ).fetchone()
        return _request(row) if row else None

    def page(
        self, *, states: Sequence[str] = (), limit: int = 50, before_sequence: int | None = None
    ) -> tuple[list[ReprocessRequest], int]:
        """Newest first; `before_sequence` continues after the previous page. Returns (items, total)."""
        self.ensure_schema()
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if states:
            where.append("state = ANY(%s)")
            params.append(list(states))
        with self.connection() as conn:
            total_row = conn.execute(
                f"SELECT count(*) AS n FROM {SCHEMA}.reprocess_requests WHERE {' AND '.join(where)}",
                params,
            ).fetchone()
            if before_sequence is not None:
                where.append("sequence < %s")
                params.append(before_sequence)
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.reprocess_requests WHERE {' AND '.join(where)} "
                "ORDER BY sequence DESC LIMIT %s",
                [*params, limit],
            ).fetchall()
        return [_request(r) for r in rows], int(total_row["n"]) if total_row else 0

    # --- the sensor side ---------------------------------------------------------------------

    def pending(self, limit: int) -> list[ReprocessRequest]:
        """The oldest PENDING requests, in the order they were filed."""
        self.ensure_schema()
        with self.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.reprocess_requests WHERE state = 'PENDING' "
                "ORDER BY sequence LIMIT %s",
                (limit,),
            ).fetchall()
        return [_request(r) for r in rows]

    def note_attempt(self, request_id: str) -> int:
        """Count one RunRequest emitted for a pending request; returns the new count."""
        with self.connection() as conn, conn.transaction():
            row = conn.execute(
                f"UPDATE {SCHEMA}.reprocess_requests "
                "SET launch_attempts = launch_attempts + 1, last_attempt_at = now(), updated_at = now() "
                "WHERE request_id = %s AND state = 'PENDING' RETURNING launch_attempts",
                (request_id,),
            ).fetchone()
        return int(row["launch_attempts"]) if row else 0

    def mark_launched(self, request_id: str, run_id: str, launched_at: datetime | None) -> bool:
        """PENDING -> LAUNCHED with its run; False when the request was no longer pending."""
        with self.connection() as conn, conn.transaction():
            cursor = conn.execute(
                f"UPDATE {SCHEMA}.reprocess_requests "
                "SET state = 'LAUNCHED', run_id = %s, launched_at = coalesce(%s, now()), "
                "message = NULL, updated_at = now() WHERE request_id = %s AND state = 'PENDING'",
                (run_id, launched_at, request_id),
            )
            return cursor.rowcount == 1

    def mark_ended(self, request_id: str, state: Literal["FAILED", "REJECTED"], message: str) -> bool:
        """PENDING -> FAILED or REJECTED with the reason; False when no longer pending."""
        if state not in ("FAILED", "REJECTED"):
            raise ValueError(f"a request can end FAILED or REJECTED, not {state!r}")
        with self.connection() as conn, conn.transaction():
            cursor = conn.execute(
                f"UPDATE {SCHEMA}.reprocess_requests SET state = %s, message = %s, updated_at = now() "
                "WHERE request_id = %s AND state = 'PENDING'",
                (state, message[:MESSAGE_LIMIT], request_id),
            )
            return cursor.rowcount == 1
