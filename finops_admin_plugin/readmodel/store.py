"""`ReadModel`: what the API, the projector and `finops reindex` use of the read model, in one object.

It owns the connection pool (`pool`) and the cursor key; each method is one
call of the module that does that job: `bookkeeping` (the projector's lock,
watermark and versions), `writes` (projected runs), `scoring` (anomalies of
stored runs) and `query` (reads).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg

from finops_admin_plugin.models import LogExcerpt, RunDetailResponse
from finops_admin_plugin.readmodel import bookkeeping, failures, query, scoring, writes
from finops_admin_plugin.readmodel.bookkeeping import StoredVersion
from finops_admin_plugin.readmodel.pool import Pool, ReadModelUnavailable
from finops_admin_plugin.readmodel.query import CursorKey, Page, RunExport, RunFilters, StoredDetail
from finops_admin_plugin.readmodel.schema import ensure_schema
from finops_admin_plugin.readmodel.writes import Projected

__all__ = ["Page", "Projected", "ReadModel", "ReadModelUnavailable", "StoredDetail", "StoredVersion"]


class ReadModel:
    """One per process; thread-safe (a connection pool)."""

    def __init__(self, database_url: str, *, max_connections: int = 8) -> None:
        if not database_url:
            raise ValueError("FINOPS_DATABASE_URL is not set: the read model needs a PostgreSQL database")
        self.database_url = database_url
        self._pool = Pool(database_url, max_connections=max_connections)
        self._cursor_key: CursorKey | None = None

    # --- lifecycle ----------------------------------------------------------------

    def open(self) -> None:
        self._pool.open()
        with self.connection() as conn:
            ensure_schema(conn)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection; `ReadModelUnavailable` when the database does not answer."""
        with self._pool.connection() as conn:
            yield conn

    def cursor_key(self) -> CursorKey:
        if self._cursor_key is None:
            with self.connection() as conn:
                key = query.load_cursor_key(conn)
            if key is None:
                raise ReadModelUnavailable(
                    "the read model is not initialised (no cursor key); restart the API"
                )
            self._cursor_key = key
        return self._cursor_key

    # --- projector bookkeeping -------------------------------------------------------

    @contextmanager
    def projector_lock(self) -> Iterator[psycopg.Connection | None]:
        """A connection holding the projector lock, or None when another process holds it."""
        with self.connection() as conn, bookkeeping.projector_lock(conn) as held:
            yield held

    def watermark(self, conn: psycopg.Connection) -> float | None:
        return bookkeeping.watermark(conn)

    def set_watermark(self, conn: psycopg.Connection, value: float) -> None:
        bookkeeping.set_watermark(conn, value)

    def versions(self, conn: psycopg.Connection, run_ids: Sequence[str]) -> dict[str, StoredVersion]:
        return bookkeeping.versions(conn, run_ids)

    def active_runs(self, conn: psycopg.Connection) -> list[tuple[str, int]]:
        return bookkeeping.active_runs(conn)

    def stale_runs(self, conn: psycopg.Connection, limit: int) -> list[str]:
        """Runs projected by an older mapping than this code's, newest first."""
        return bookkeeping.stale_runs(conn, limit)

    def mark_mapped(self, conn: psycopg.Connection, run_id: str) -> None:
        bookkeeping.mark_mapped(conn, run_id)

    def delete_run(self, conn: psycopg.Connection, run_id: str) -> None:
        bookkeeping.delete_run(conn, run_id)

    def truncate(self, conn: psycopg.Connection) -> None:
        bookkeeping.truncate(conn)

    def vacuum(self, conn: psycopg.Connection) -> None:
        bookkeeping.vacuum(conn)

    # --- writing a projection ---------------------------------------------------------

    def save(
        self,
        conn: psycopg.Connection,
        detail: RunDetailResponse,
        *,
        dagster_updated: float,
        event_id: int,
        excerpt: LogExcerpt | None = None,
        score: bool = True,
    ) -> bool:
        """Upsert one run (`writes.save`); True when written."""
        return writes.save(
            conn, detail, dagster_updated=dagster_updated, event_id=event_id, excerpt=excerpt, score=score
        )

    def insert_new(self, conn: psycopg.Connection, projected: Sequence[Projected]) -> int:
        """COPY runs into an emptied read model (`writes.insert_new`)."""
        return writes.insert_new(conn, projected)

    def rescore_all(self, conn: psycopg.Connection) -> int:
        """Score every finished run in one pass (`scoring.rescore_all`); returns how many were flagged."""
        return scoring.rescore_all(conn)

    # --- reading ----------------------------------------------------------------------------

    def page(self, filters: RunFilters, limit: int, after: tuple[Any, str] | None) -> Page:
        with self.connection() as conn:
            return query.page(conn, filters, limit, after)

    def export(self, filters: RunFilters, batch: int = 1000) -> RunExport:
        """Every run matching `filters`, in order, streamed with a server-side cursor, and the
        currencies of their billed cost. Raises here, not while streaming, when the database is down."""
        stream = self._export(filters, batch)
        currencies: list[str] = next(stream)
        return RunExport(currencies, stream)

    def _export(self, filters: RunFilters, batch: int) -> Iterator[Any]:
        with self.connection() as conn:
            yield from query.export_rows(conn, filters, batch)

    def detail(self, run_id: str) -> StoredDetail | None:
        """The stored detail of a run, or None when the read model has not seen it."""
        with self.connection() as conn:
            return query.stored_detail(conn, run_id)

    def summary(self, run_id: str) -> dict[str, Any] | None:
        with self.connection() as conn:
            return query.stored_summary(conn, run_id)

    def latest_loads(self, periods: Sequence[str]) -> list[dict[str, Any]]:
        with self.connection() as conn:
            return query.latest_loads(conn, periods)

    def failure_page(
        self, filters: failures.FailureFilters, limit: int, after: tuple[datetime, str] | None
    ) -> failures.FailurePage:
        """Failure signatures, last seen first (`failures.failures_page`)."""
        with self.connection() as conn:
            return failures.failures_page(conn, filters, limit, after)

    def signature_stats(self, signatures: Sequence[str]) -> dict[str, failures.SignatureStats]:
        """Runs and first failure of each signature (`failures.signature_stats`)."""
        with self.connection() as conn:
            return failures.signature_stats(conn, signatures)

    def count(self) -> int:
        with self.connection() as conn:
            return query.count_runs(conn)
