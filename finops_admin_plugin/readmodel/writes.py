"""Writes of projected runs: one run upserted as the projector follows Dagster (`save`), or whole
batches sent with COPY into an emptied read model by a reindex (`insert_new`).

A run is stored as its `runs` row (typed columns for filters and sorts, and the
list item JSON), its detail JSON in `run_details`, and the rows derived from its
blocks (`blocks`, `period_loads`, `load_quality`) and, for a FAILED run, its failure signatures
(`failures`, with `errors.signature` set in both JSON documents).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from finops_admin_plugin.mapping.runs import MAPPING_VERSION, detail_payload, summary_payload
from finops_admin_plugin.models import LogExcerpt, Money, RunDetailResponse
from finops_admin_plugin.readmodel.anomalies import SCORED_RUN_STATUSES, period_roles
from finops_admin_plugin.readmodel.failures import FAILURE_COLUMNS, failure_rows, signed
from finops_admin_plugin.readmodel.schema import SCHEMA
from finops_admin_plugin.readmodel.scoring import score_stored_run

__all__ = ["Projected", "insert_new", "save"]


@dataclass(frozen=True)
class Projected:
    """A run mapped from Dagster and the version of what it was mapped from."""

    detail: RunDetailResponse
    dagster_updated: float
    event_id: int
    excerpt: LogExcerpt | None = None  # of a FAILED run: its failing step and the end of its stderr


def save(
    conn: psycopg.Connection,
    detail: RunDetailResponse,
    *,
    dagster_updated: float,
    event_id: int,
    excerpt: LogExcerpt | None = None,
    score: bool = True,
) -> bool:
    """Upsert one run; an older projection never overwrites a newer one. True when written.

    `score` computes the anomalies of a finished run against what is stored
    already (reindex scores afterwards, in start order, instead).
    """
    detail, _ = signed(detail)
    with conn.transaction():
        row = conn.execute(
            f"""
            INSERT INTO {SCHEMA}.runs AS r ({_RUN_COLUMNS}, projected_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (run_id) DO UPDATE SET
                status = EXCLUDED.status, trigger = EXCLUDED.trigger, periods = EXCLUDED.periods,
                domains = EXCLUDED.domains, period_count = EXCLUDED.period_count,
                period_roles = EXCLUDED.period_roles,
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
            f"INSERT INTO {SCHEMA}.run_details (run_id, detail, excerpt) VALUES (%s, %s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET detail = EXCLUDED.detail, excerpt = EXCLUDED.excerpt",
            (detail.run_id, Jsonb(detail_payload(detail)), _excerpt_json(excerpt)),
        )
        for table, columns, rows_of in _RUN_CHILDREN:
            conn.execute(f"DELETE FROM {SCHEMA}.{table} WHERE run_id = %s", (detail.run_id,))
            rows = rows_of(detail)
            if rows:
                with conn.cursor() as cur:
                    placeholders = ", ".join(["%s"] * len(rows[0]))
                    cur.executemany(f"INSERT INTO {SCHEMA}.{table} ({columns}) VALUES ({placeholders})", rows)
        if score and detail.status in SCORED_RUN_STATUSES:
            score_stored_run(conn, detail.run_id)
    return True


def insert_new(conn: psycopg.Connection, projected: Sequence[Projected]) -> int:
    """Write runs the read model does not hold yet (a reindex after `truncate`), in one transaction.

    The same rows as `save`, sent with COPY: at 100k runs, one statement per
    table per batch instead of six round trips per run. Anomalies are left
    empty for `scoring.rescore_all`.
    """
    if not projected:
        return 0
    projected = [replace(p, detail=signed(p.detail)[0]) for p in projected]
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(f"COPY {SCHEMA}.runs ({_RUN_COLUMNS}) FROM STDIN") as copy:
            for p in projected:
                copy.write_row(_run_row(p.detail, dagster_updated=p.dagster_updated, event_id=p.event_id))
        with cur.copy(f"COPY {SCHEMA}.run_details (run_id, detail, excerpt) FROM STDIN") as copy:
            for p in projected:
                copy.write_row((p.detail.run_id, Jsonb(detail_payload(p.detail)), _excerpt_json(p.excerpt)))
        for table, columns, rows_of in _RUN_CHILDREN:
            with cur.copy(f"COPY {SCHEMA}.{table} ({columns}) FROM STDIN") as copy:
                for p in projected:
                    for row in rows_of(p.detail):
                        copy.write_row(row)
    return len(projected)


_RUN_COLUMNS = (
    "run_id, status, trigger, periods, domains, period_count, created_time, start_time, end_time, "
    "sort_time, duration_seconds, duration_sort, releves_inserted, billed_cost, anomalous, active, "
    "dagster_updated, event_id, summary, mapping_version, period_roles"
)
_BLOCK_COLUMNS = (
    "run_id, domain, status, period_count, sort_time, duration_seconds, releves_inserted, billed_cost, "
    "trigger, period_roles"
)
_LOAD_COLUMNS = "run_id, domain, period, loaded_at, releves_inserted, rows_read"
_QUALITY_COLUMNS = "run_id, domain, period, loaded_at, rows_read, rows_loaded, rejected, gate"


def _costs_json(money: Money) -> Jsonb:
    """A figure per currency as the `billed_cost` columns hold it: {currency: "exact decimal"}."""
    return Jsonb({item.currency: item.amount for item in money})


def _excerpt_json(excerpt: LogExcerpt | None) -> Jsonb | None:
    return Jsonb(excerpt.model_dump(by_alias=True, mode="json")) if excerpt is not None else None


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
        _costs_json(detail.volumes.billed_cost),
        False,
        detail.status in ("QUEUED", "RUNNING"),
        dagster_updated,
        event_id,
        Jsonb(summary_payload(detail)),
        MAPPING_VERSION,
        _period_roles(detail),
    )


def _period_roles(detail: RunDetailResponse) -> str:
    return period_roles((p.period for p in detail.periods), _sort_start(detail))


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
            _costs_json(b.volumes.billed_cost),
            detail.trigger,
            _period_roles(detail),
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


def _failure_rows(detail: RunDetailResponse) -> list[tuple[Any, ...]]:
    # `detail` is signed already: signing again is pure, and cheap next to a run's mapping.
    return failure_rows(detail, signed(detail)[1])


# The tables derived from a run besides `runs` and `run_details`: (table, columns, rows of a run).
_RUN_CHILDREN: Final[tuple[tuple[str, str, Callable[[RunDetailResponse], list[tuple[Any, ...]]]], ...]] = (
    ("blocks", _BLOCK_COLUMNS, _block_rows),
    ("period_loads", _LOAD_COLUMNS, _load_rows),
    ("load_quality", _QUALITY_COLUMNS, _quality_rows),
    ("failures", FAILURE_COLUMNS, _failure_rows),
)
