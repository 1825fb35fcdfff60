"""The read model's database: its connection pool, projector bookkeeping, writes of projected runs, and
the reads the routes serve (pages, details, coverage). Anomaly scores come from `anomalies`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from finops_admin_plugin.mapping.runs import MAPPING_VERSION, detail_payload, summary_payload
from finops_admin_plugin.models import Anomaly, RunDetailResponse
from finops_admin_plugin.readmodel.anomalies import (
    HISTORY_STATUS,
    SCORED_RUN_STATUSES,
    WINDOW,
    MetricValues,
    ScoredBlock,
    ScoredRun,
    metric_values,
    score_in_order,
    score_run,
)
from finops_admin_plugin.readmodel.query import CursorKey, RunFilters, count_and_page_sql, export_sql
from finops_admin_plugin.readmodel.schema import LOCK_CLASS, PROJECTOR_LOCK, SCHEMA, ensure_schema

__all__ = ["Page", "Projected", "ReadModel", "ReadModelUnavailable", "StoredVersion"]

log = logging.getLogger(__name__)


_SET_RUN_ANOMALIES: Final = (
    f"UPDATE {SCHEMA}.runs SET anomalous = %s, summary = jsonb_set(summary, '{{anomalies}}', %s) "
    "WHERE run_id = %s"
)
_SET_DETAIL: Final = f"UPDATE {SCHEMA}.run_details SET detail = %s WHERE run_id = %s"


def _attach_anomalies(
    detail: dict[str, Any], run_found: list[Anomaly], by_domain: dict[str, list[Anomaly]]
) -> tuple[list[Anomaly], list[dict[str, Any]]]:
    """Put each block's anomalies into `detail`; return the run's (its own + its blocks') and their JSON."""
    found = list(run_found)
    for block_json in detail.get("blocks", []):
        block = by_domain.get(block_json["domain"], [])
        block_json["anomalies"] = [a.model_dump(by_alias=True, mode="json") for a in block]
        found += block
    items = [a.model_dump(by_alias=True, mode="json") for a in found]
    detail["anomalies"] = items
    return found, items


class ReadModelUnavailable(RuntimeError):
    """The read model's database does not answer."""


@dataclass(frozen=True)
class StoredVersion:
    dagster_updated: float
    event_id: int
    active: bool


@dataclass(frozen=True)
class Projected:
    """A run mapped from Dagster and the version of what it was mapped from."""

    detail: RunDetailResponse
    dagster_updated: float
    event_id: int


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_after: tuple[Any, str] | None  # (sort value, run id) of the last item when there is more
    total: int


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


class ReadModel:
    """One per process; thread-safe (a connection pool)."""

    def __init__(self, database_url: str, *, max_connections: int = 8) -> None:
        if not database_url:
            raise ValueError("FINOPS_DATABASE_URL is not set: the read model needs a PostgreSQL database")
        self.database_url = database_url
        self._pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "application_name": "finops-admin"},
            configure=_configure,
            open=False,
            name="finops-admin-readmodel",
        )
        self._opened = False
        self._cursor_key: CursorKey | None = None

    # --- lifecycle ----------------------------------------------------------------

    def open(self) -> None:
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True
        with self.connection() as conn:
            ensure_schema(conn)

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True
        try:
            with self._pool.connection(timeout=5.0) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            log.warning("read model database: %s: %s", type(exc).__name__, exc)
            raise ReadModelUnavailable(
                "the admin read model's database (PostgreSQL) does not answer; try again in a moment"
            ) from exc

    def cursor_key(self) -> CursorKey:
        if self._cursor_key is None:
            with self.connection() as conn:
                row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'cursor_key'").fetchone()
            if row is None:
                raise ReadModelUnavailable(
                    "the read model is not initialised (no cursor key); restart the API"
                )
            self._cursor_key = CursorKey(bytes.fromhex(row[0]))
        return self._cursor_key

    # --- projector bookkeeping -------------------------------------------------------

    @contextmanager
    def projector_lock(self) -> Iterator[psycopg.Connection | None]:
        """A connection holding the projector lock, or None when another process holds it."""
        with self.connection() as conn:
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK)).fetchone()
            if not got or not got[0]:
                yield None
                return
            try:
                yield conn
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK))

    def watermark(self, conn: psycopg.Connection) -> float | None:
        row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'watermark'").fetchone()
        return float(row[0]) if row else None

    def set_watermark(self, conn: psycopg.Connection, value: float) -> None:
        conn.execute(
            f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('watermark', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value "
            f"WHERE {SCHEMA}.meta.value::double precision < EXCLUDED.value::double precision",
            (repr(value),),
        )

    def versions(self, conn: psycopg.Connection, run_ids: Sequence[str]) -> dict[str, StoredVersion]:
        rows = conn.execute(
            f"SELECT run_id, dagster_updated, event_id, active FROM {SCHEMA}.runs WHERE run_id = ANY(%s)",
            (list(run_ids),),
        ).fetchall()
        return {r[0]: StoredVersion(r[1], r[2], r[3]) for r in rows}

    def active_runs(self, conn: psycopg.Connection) -> list[tuple[str, int]]:
        return [
            (r[0], r[1]) for r in conn.execute(f"SELECT run_id, event_id FROM {SCHEMA}.runs WHERE active")
        ]

    def stale_runs(self, conn: psycopg.Connection, limit: int) -> list[str]:
        """Runs projected by an older mapping than this code's, newest first."""
        rows = conn.execute(
            f"SELECT run_id FROM {SCHEMA}.runs WHERE mapping_version < %s ORDER BY sort_time DESC LIMIT %s",
            (MAPPING_VERSION, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def mark_mapped(self, conn: psycopg.Connection, run_id: str) -> None:
        """Count a run as projected by this mapping (one it cannot map stays as it was)."""
        conn.execute(
            f"UPDATE {SCHEMA}.runs SET mapping_version = %s WHERE run_id = %s", (MAPPING_VERSION, run_id)
        )

    def delete_run(self, conn: psycopg.Connection, run_id: str) -> None:
        conn.execute(f"DELETE FROM {SCHEMA}.runs WHERE run_id = %s", (run_id,))

    def truncate(self, conn: psycopg.Connection) -> None:
        conn.execute(
            f"TRUNCATE {SCHEMA}.runs, {SCHEMA}.run_details, {SCHEMA}.blocks, {SCHEMA}.period_loads, "
            f"{SCHEMA}.load_quality"
        )
        conn.execute(f"DELETE FROM {SCHEMA}.meta WHERE key = 'watermark'")

    def vacuum(self, conn: psycopg.Connection) -> None:
        """VACUUM ANALYZE the read model after a rebuild (`conn` in autocommit, outside a transaction).

        Right after a reindex the tables have no statistics and no visibility map:
        the planner guesses, and `count(*)` reads the heap instead of an index,
        until autovacuum comes by. Doing it here makes the first page as fast as
        the thousandth.
        """
        conn.execute(
            f"VACUUM (ANALYZE) {SCHEMA}.runs, {SCHEMA}.run_details, {SCHEMA}.blocks, {SCHEMA}.period_loads, "
            f"{SCHEMA}.load_quality"
        )

    # --- writing a projection ---------------------------------------------------------

    def save(
        self,
        conn: psycopg.Connection,
        detail: RunDetailResponse,
        *,
        dagster_updated: float,
        event_id: int,
        score: bool = True,
    ) -> bool:
        """Upsert one run; an older projection never overwrites a newer one. True when written.

        `score` computes the anomalies of a finished run against what is stored
        already (reindex scores afterwards, in start order, instead).
        """
        with conn.transaction():
            row = conn.execute(
                f"""
                INSERT INTO {SCHEMA}.runs AS r ({_RUN_COLUMNS}, projected_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (run_id) DO UPDATE SET
                    status = EXCLUDED.status, trigger = EXCLUDED.trigger, periods = EXCLUDED.periods,
                    domains = EXCLUDED.domains, period_count = EXCLUDED.period_count,
                    created_time = EXCLUDED.created_time, start_time = EXCLUDED.start_time,
                    end_time = EXCLUDED.end_time, sort_time = EXCLUDED.sort_time,
                    duration_seconds = EXCLUDED.duration_seconds, duration_sort = EXCLUDED.duration_sort,
                    releves_inserted = EXCLUDED.releves_inserted, billed_cost = EXCLUDED.billed_cost,
                    anomalous = false, active = EXCLUDED.active,
                    dagster_updated = EXCLUDED.dagster_updated, event_id = EXCLUDED.event_id,
                    summary = EXCLUDED.summary, mapping_version = EXCLUDED.mapping_version,
                    projected_at = now()
                WHERE (r.event_id, r.dagster_updated) <= (EXCLUDED.event_id, EXCLUDED.dagster_updated)
                RETURNING run_id
                """,
                _run_row(detail, dagster_updated=dagster_updated, event_id=event_id),
            ).fetchone()
            if row is None:
                return False
            conn.execute(
                f"INSERT INTO {SCHEMA}.run_details (run_id, detail) VALUES (%s, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET detail = EXCLUDED.detail",
                (detail.run_id, Jsonb(detail_payload(detail))),
            )
            for table, columns, rows_of in _RUN_CHILDREN:
                conn.execute(f"DELETE FROM {SCHEMA}.{table} WHERE run_id = %s", (detail.run_id,))
                rows = rows_of(detail)
                if rows:
                    with conn.cursor() as cur:
                        placeholders = ", ".join(["%s"] * len(rows[0]))
                        cur.executemany(
                            f"INSERT INTO {SCHEMA}.{table} ({columns}) VALUES ({placeholders})", rows
                        )
            if score and detail.status in SCORED_RUN_STATUSES:
                self._score(conn, detail.run_id)
        return True

    def insert_new(self, conn: psycopg.Connection, projected: Sequence[Projected]) -> int:
        """Write runs the read model does not hold yet (a reindex after `truncate`), in one transaction.

        The same rows as `save`, sent with COPY: at 100k runs, one statement per
        table per batch instead of six round trips per run. Anomalies are left
        empty for `rescore_all`.
        """
        if not projected:
            return 0
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(f"COPY {SCHEMA}.runs ({_RUN_COLUMNS}) FROM STDIN") as copy:
                for p in projected:
                    copy.write_row(_run_row(p.detail, dagster_updated=p.dagster_updated, event_id=p.event_id))
            with cur.copy(f"COPY {SCHEMA}.run_details (run_id, detail) FROM STDIN") as copy:
                for p in projected:
                    copy.write_row((p.detail.run_id, Jsonb(detail_payload(p.detail))))
            for table, columns, rows_of in _RUN_CHILDREN:
                with cur.copy(f"COPY {SCHEMA}.{table} ({columns}) FROM STDIN") as copy:
                    for p in projected:
                        for row in rows_of(p.detail):
                            copy.write_row(row)
        return len(projected)

    # --- anomalies ---------------------------------------------------------------------

    def _score(self, conn: psycopg.Connection, run_id: str) -> list[Anomaly]:
        """Compute and store the anomalies of a finished run against earlier comparable runs.

        The queries read the history `anomalies.score_run` describes; `rescore_all` gives the
        same scores in one pass (a test holds them equal).
        """
        cur = conn.cursor(row_factory=dict_row)
        row = cur.execute(
            f"SELECT r.run_id, r.status, r.domains, r.period_count, r.sort_time, r.duration_seconds, "
            f"r.releves_inserted, r.billed_cost, d.detail FROM {SCHEMA}.runs r "
            f"JOIN {SCHEMA}.run_details d USING (run_id) WHERE run_id = %s",
            (run_id,),
        ).fetchone()
        if row is None:
            return []
        blocks = cur.execute(
            f"SELECT domain, status, duration_seconds, releves_inserted, billed_cost FROM {SCHEMA}.blocks "
            "WHERE run_id = %s ORDER BY domain",
            (run_id,),
        ).fetchall()
        run = _scored_run(row, blocks)
        run_history: list[MetricValues] = []
        if run.status == HISTORY_STATUS:
            run_history = [
                _values(h)
                for h in cur.execute(
                    f"SELECT duration_seconds, releves_inserted, billed_cost FROM {SCHEMA}.runs "
                    "WHERE status = %s AND domains = %s AND period_count = %s AND sort_time < %s "
                    "AND run_id <> %s ORDER BY sort_time DESC LIMIT %s",
                    (HISTORY_STATUS, row["domains"], run.period_count, run.sort_time, run_id, WINDOW),
                ).fetchall()
            ]
        block_history: dict[str, list[MetricValues]] = {}
        for block in run.blocks:
            if block.status != HISTORY_STATUS:
                continue
            block_history[block.domain] = [
                _values(h)
                for h in cur.execute(
                    f"SELECT duration_seconds, releves_inserted, billed_cost FROM {SCHEMA}.blocks "
                    "WHERE status = %s AND domain = %s AND period_count = %s AND sort_time < %s "
                    "AND run_id <> %s ORDER BY sort_time DESC LIMIT %s",
                    (HISTORY_STATUS, block.domain, run.period_count, run.sort_time, run_id, WINDOW),
                ).fetchall()
            ]
        scores = score_run(run, run_history, block_history)
        detail = row["detail"]
        found, items = _attach_anomalies(detail, scores.run, scores.blocks)
        cur.execute(_SET_RUN_ANOMALIES, (bool(found), Jsonb(items), run_id))
        cur.execute(_SET_DETAIL, (Jsonb(detail), run_id))
        return found

    def rescore_all(self, conn: psycopg.Connection) -> int:
        """Score every finished run, oldest first (after a reindex); returns how many were flagged.

        One pass over the stored metrics (`anomalies.score_in_order`) instead of several queries
        per run. Only flagged runs are written: a reindex stores every run with no anomalies.
        """
        cur = conn.cursor(row_factory=dict_row)
        blocks_of: dict[str, list[dict[str, Any]]] = {}
        for block in cur.execute(
            f"SELECT run_id, domain, status, duration_seconds, releves_inserted, billed_cost "
            f"FROM {SCHEMA}.blocks ORDER BY run_id, domain"
        ):
            blocks_of.setdefault(block["run_id"], []).append(block)
        runs = [
            _scored_run(row, blocks_of.get(row["run_id"], []))
            for row in cur.execute(
                f"SELECT run_id, status, domains, period_count, sort_time, duration_seconds, "
                f"releves_inserted, billed_cost FROM {SCHEMA}.runs ORDER BY sort_time, run_id"
            ).fetchall()
        ]
        flagged = [(s.run_id, s.run, s.blocks) for s in score_in_order(runs) if s.flagged]
        for start in range(0, len(flagged), 500):
            self._store_anomalies(conn, flagged[start : start + 500])
        return len(flagged)

    def _store_anomalies(
        self, conn: psycopg.Connection, flagged: Sequence[tuple[str, list[Anomaly], dict[str, list[Anomaly]]]]
    ) -> None:
        """Write computed anomalies into runs and details exactly as `_score` does."""
        details: dict[str, dict[str, Any]] = {
            row[0]: row[1]
            for row in conn.execute(
                f"SELECT run_id, detail FROM {SCHEMA}.run_details WHERE run_id = ANY(%s)",
                ([f[0] for f in flagged],),
            )
        }
        run_updates = []
        detail_updates = []
        for run_id, run_found, by_domain in flagged:
            detail = details[run_id]
            found, items = _attach_anomalies(detail, run_found, by_domain)
            run_updates.append((bool(found), Jsonb(items), run_id))
            detail_updates.append((Jsonb(detail), run_id))
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_SET_RUN_ANOMALIES, run_updates)
            cur.executemany(_SET_DETAIL, detail_updates)

    # --- reading ----------------------------------------------------------------------------

    def page(self, filters: RunFilters, limit: int, after: tuple[Any, str] | None) -> Page:
        query, params = count_and_page_sql(filters, limit, after)
        with self.connection() as conn:
            rows = conn.execute(query, params).fetchall()
        total = int(rows[0][0]) if rows else 0
        items = [(r[1], r[2], r[3]) for r in rows if r[2] is not None]
        next_after = None
        if len(items) > limit:
            items = items[:limit]
            next_after = (items[-1][0], items[-1][1])
        return Page(items=[i[2] for i in items], next_after=next_after, total=total)

    def export(self, filters: RunFilters, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every run matching `filters`, in order, streamed with a server-side cursor."""
        query, params = export_sql(filters)
        with self.connection() as conn, conn.transaction(), conn.cursor(name="finops_export") as cur:
            cur.itersize = batch
            cur.execute(query, params)
            for (summary,) in cur:
                yield summary

    def detail(self, run_id: str) -> tuple[dict[str, Any], bool] | None:
        """(stored detail JSON, active) of a run, or None when the read model has not seen it."""
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT d.detail, r.active FROM {SCHEMA}.runs r JOIN {SCHEMA}.run_details d USING (run_id) "
                "WHERE r.run_id = %s",
                (run_id,),
            ).fetchone()
        return (row[0], bool(row[1])) if row else None

    def summary(self, run_id: str) -> dict[str, Any] | None:
        with self.connection() as conn:
            row = conn.execute(f"SELECT summary FROM {SCHEMA}.runs WHERE run_id = %s", (run_id,)).fetchone()
        return row[0] if row else None

    def latest_loads(self, periods: Sequence[str]) -> list[dict[str, Any]]:
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                f"SELECT DISTINCT ON (period, domain) period, domain, run_id, loaded_at, releves_inserted, "
                f"rows_read FROM {SCHEMA}.period_loads WHERE period = ANY(%s) "
                "ORDER BY period, domain, loaded_at DESC",
                (list(periods),),
            ).fetchall()

    def count(self) -> int:
        with self.connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.runs").fetchone()
        return int(row[0]) if row else 0


_RUN_COLUMNS = (
    "run_id, status, trigger, periods, domains, period_count, created_time, start_time, end_time, "
    "sort_time, duration_seconds, duration_sort, releves_inserted, billed_cost, anomalous, active, "
    "dagster_updated, event_id, summary, mapping_version"
)
_BLOCK_COLUMNS = (
    "run_id, domain, status, period_count, sort_time, duration_seconds, releves_inserted, billed_cost"
)
_LOAD_COLUMNS = "run_id, domain, period, loaded_at, releves_inserted, rows_read"
_QUALITY_COLUMNS = "run_id, domain, period, loaded_at, rows_read, rows_loaded, rejected, gate"


def _sort_start(detail: RunDetailResponse) -> datetime:
    return detail.start_time or detail.created_time


def _run_row(detail: RunDetailResponse, *, dagster_updated: float, event_id: int) -> tuple[Any, ...]:
    """The `runs` row of a projection (anomalies not scored yet), in `_RUN_COLUMNS` order."""
    return (
        detail.run_id,
        detail.status,
        detail.trigger,
        [p.period for p in detail.periods],
        detail.domains,
        len(detail.periods),
        detail.created_time,
        detail.start_time,
        detail.end_time,
        _sort_start(detail),
        detail.duration_seconds,
        detail.duration_seconds if detail.duration_seconds is not None else -1.0,
        detail.volumes.releves_inserted,
        detail.volumes.billed_cost,
        False,
        detail.status in ("QUEUED", "RUNNING"),
        dagster_updated,
        event_id,
        Jsonb(summary_payload(detail)),
        MAPPING_VERSION,
    )


def _block_rows(detail: RunDetailResponse) -> list[tuple[Any, ...]]:
    start = _sort_start(detail)
    return [
        (
            detail.run_id,
            b.domain,
            b.status,
            len(detail.periods),
            start,
            b.duration_seconds,
            b.volumes.releves_inserted,
            b.volumes.billed_cost,
        )
        for b in detail.blocks
        if b.status != "NOT_SELECTED"
    ]


def _quality_rows(detail: RunDetailResponse) -> list[tuple[Any, ...]]:
    start = _sort_start(detail)
    return [
        (
            detail.run_id,
            b.domain,
            q.period,
            b.end_time or detail.end_time or start,
            q.rows_read,
            q.rows_loaded,
            Jsonb({r.reason: r.count for r in q.rejected}),
            q.gate,
        )
        for b in detail.blocks
        for q in b.quality
    ]


def _load_rows(detail: RunDetailResponse) -> list[tuple[Any, ...]]:
    start = _sort_start(detail)
    return [
        (
            detail.run_id,
            b.domain,
            p.period,
            b.end_time or detail.end_time or start,
            p.releves_inserted,
            p.rows_read,
        )
        for b in detail.blocks
        if b.status != "NOT_SELECTED"
        for p in b.periods
        if p.gate is None  # a gated month kept its previous rows: this run did not load it
    ]


def _values(row: dict[str, Any]) -> MetricValues:
    return metric_values(row["duration_seconds"], row["releves_inserted"], row["billed_cost"])


def _scored_run(row: dict[str, Any], blocks: Sequence[dict[str, Any]]) -> ScoredRun:
    return ScoredRun(
        run_id=row["run_id"],
        status=row["status"],
        domains=tuple(row["domains"]),
        period_count=row["period_count"],
        sort_time=row["sort_time"],
        values=_values(row),
        blocks=tuple(ScoredBlock(b["domain"], b["status"], _values(b)) for b in blocks),
    )


# The tables derived from a run besides `runs` and `run_details`: (table, columns, rows of a run).
_RUN_CHILDREN: Final[tuple[tuple[str, str, Callable[[RunDetailResponse], list[tuple[Any, ...]]]], ...]] = (
    ("blocks", _BLOCK_COLUMNS, _block_rows),
    ("period_loads", _LOAD_COLUMNS, _load_rows),
    ("load_quality", _QUALITY_COLUMNS, _quality_rows),
)
