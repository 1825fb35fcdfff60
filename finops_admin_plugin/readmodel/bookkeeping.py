"""The projector's bookkeeping in the read model: its lock, its watermark, the version each run was
projected from, and the housekeeping of a rebuild (truncate, vacuum)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from finops_admin_plugin.mapping.runs import MAPPING_VERSION
from finops_admin_plugin.readmodel.schema import LOCK_CLASS, PROJECTOR_LOCK, SCHEMA

__all__ = [
    "StoredVersion",
    "active_runs",
    "delete_run",
    "mark_mapped",
    "projector_lock",
    "set_watermark",
    "stale_runs",
    "truncate",
    "vacuum",
    "versions",
    "watermark",
]


@dataclass(frozen=True)
class StoredVersion:
    dagster_updated: float
    event_id: int
    active: bool


@contextmanager
def projector_lock(conn: psycopg.Connection) -> Iterator[psycopg.Connection | None]:
    """`conn` holding the projector lock, or None when another process holds it."""
    got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK)).fetchone()
    if not got or not got[0]:
        yield None
        return
    try:
        yield conn
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK))


def watermark(conn: psycopg.Connection) -> float | None:
    row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'watermark'").fetchone()
    return float(row[0]) if row else None


def set_watermark(conn: psycopg.Connection, value: float) -> None:
    conn.execute(
        f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('watermark', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value "
        f"WHERE {SCHEMA}.meta.value::double precision < EXCLUDED.value::double precision",
        (repr(value),),
    )


def versions(conn: psycopg.Connection, run_ids: Sequence[str]) -> dict[str, StoredVersion]:
    rows = conn.execute(
        f"SELECT run_id, dagster_updated, event_id, active FROM {SCHEMA}.runs WHERE run_id = ANY(%s)",
        (list(run_ids),),
    ).fetchall()
    return {r[0]: StoredVersion(r[1], r[2], r[3]) for r in rows}


def active_runs(conn: psycopg.Connection) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute(f"SELECT run_id, event_id FROM {SCHEMA}.runs WHERE active")]


def stale_runs(conn: psycopg.Connection, limit: int) -> list[str]:
    """Runs projected by an older mapping than this code's, newest first."""
    rows = conn.execute(
        f"SELECT run_id FROM {SCHEMA}.runs WHERE mapping_version < %s ORDER BY sort_time DESC LIMIT %s",
        (MAPPING_VERSION, limit),
    ).fetchall()
    return [r[0] for r in rows]


def mark_mapped(conn: psycopg.Connection, run_id: str) -> None:
    """Count a run as projected by this mapping (one it cannot map stays as it was)."""
    conn.execute(
        f"UPDATE {SCHEMA}.runs SET mapping_version = %s WHERE run_id = %s", (MAPPING_VERSION, run_id)
    )


def delete_run(conn: psycopg.Connection, run_id: str) -> None:
    conn.execute(f"DELETE FROM {SCHEMA}.runs WHERE run_id = %s", (run_id,))


def truncate(conn: psycopg.Connection) -> None:
    conn.execute(
        f"TRUNCATE {SCHEMA}.runs, {SCHEMA}.run_details, {SCHEMA}.blocks, {SCHEMA}.period_loads, "
        f"{SCHEMA}.load_quality, {SCHEMA}.failures"
    )
    conn.execute(f"DELETE FROM {SCHEMA}.meta WHERE key = 'watermark'")


def vacuum(conn: psycopg.Connection) -> None:
    """VACUUM ANALYZE the read model after a rebuild (`conn` in autocommit, outside a transaction).

    Right after a reindex the tables have no statistics and no visibility map:
    the planner guesses, and `count(*)` reads the heap instead of an index,
    until autovacuum comes by. Doing it here makes the first page as fast as
    the thousandth.
    """
    conn.execute(
        f"VACUUM (ANALYZE) {SCHEMA}.runs, {SCHEMA}.run_details, {SCHEMA}.blocks, {SCHEMA}.period_loads, "
        f"{SCHEMA}.load_quality, {SCHEMA}.failures"
    )
