"""Schema `finops_sources`: what each scan of a source saw, and which delivery each load took.

Written by the Dagster side only: the delivery sensor records every scan (`record_scan`), a
load records the delivery it took in the same transaction as the rows it replaced
(`record_load`, status LOADED) or, when its gate fails, on its own (status FAILED). The admin
API reads these tables (`source_months`) and never lists a bucket itself, so it needs no
cloud credentials and a slow bucket never slows a screen.

| table | one row per | holds |
|---|---|---|
| `scans` | source | when it was last listed, and the listing's error if it failed |
| `deliveries` | (source, period, delivery id) | each complete delivery seen: time, files, bytes |
| `incomplete` | (source, period) | data without a complete delivery at the last scan (replaced each scan) |
| `loads` | (source, period, run id) | a load's outcome: LOADED, or FAILED with its gate |
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from finops_pipeline.migrations import Migration, migrate
from finops_pipeline.sources.model import Delivery, SourceScan

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "DeliveryRow",
    "LoadRow",
    "MonthRow",
    "ScanRow",
    "SourceActivity",
    "ensure_schema",
    "last_scans",
    "loaded_deliveries",
    "record_load",
    "record_scan",
    "source_activity",
    "source_months",
]

SCHEMA: Final = "finops_sources"

_DDL: Final = """
CREATE TABLE finops_sources.scans (
    source      text PRIMARY KEY,
    scanned_at  timestamptz NOT NULL,
    error       text
);
CREATE TABLE finops_sources.deliveries (
    source        text NOT NULL,
    period        text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    delivery_id   text NOT NULL,
    delivered_at  timestamptz NOT NULL,
    files         integer NOT NULL CHECK (files >= 0),
    bytes         bigint NOT NULL CHECK (bytes >= 0),
    manifest      text,
    file_list     jsonb NOT NULL,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, period, delivery_id)
);
CREATE INDEX deliveries_latest ON finops_sources.deliveries (source, period, delivered_at DESC);
CREATE TABLE finops_sources.incomplete (
    source   text NOT NULL,
    period   text NOT NULL,
    since    timestamptz NOT NULL,
    files    integer NOT NULL,
    reason   text NOT NULL,
    seen_at  timestamptz NOT NULL,
    PRIMARY KEY (source, period)
);
CREATE TABLE finops_sources.loads (
    source       text NOT NULL,
    period       text NOT NULL,
    run_id       text NOT NULL,
    delivery_id  text NOT NULL,
    status       text NOT NULL CHECK (status IN ('LOADED', 'FAILED')),
    gate         text,
    message      text,
    files        integer NOT NULL,
    bytes        bigint NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, period, run_id)
);
CREATE INDEX loads_latest ON finops_sources.loads (source, period, at DESC);
"""

# (version, description, SQL). Append only: a shipped migration never changes.
MIGRATIONS: Final = (Migration(1, "scans, deliveries, incomplete deliveries, loads", _DDL),)

LoadStatus = Literal["LOADED", "FAILED"]


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Apply this schema's migrations (`conn` must not be in a transaction)."""
    migrate(conn, SCHEMA, MIGRATIONS)


def record_scan(conn: psycopg.Connection[Any], scan: SourceScan, error: str | None = None) -> None:
    """Store one listing of a source: its complete deliveries (kept as history) and its
    incomplete ones (replacing the previous scan's). With `error`, only the scan's time and
    error change: what the previous scan saw stays."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO finops_sources.scans (source, scanned_at, error) VALUES (%s, %s, %s) "
            "ON CONFLICT (source) DO UPDATE SET scanned_at = EXCLUDED.scanned_at, error = EXCLUDED.error",
            (scan.source, scan.scanned_at, error),
        )
        if error is not None:
            return
        for delivery in scan.deliveries.values():
            conn.execute(
                "INSERT INTO finops_sources.deliveries (source, period, delivery_id, delivered_at, files, "
                "bytes, manifest, file_list) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (source, period, delivery_id) DO NOTHING",
                (
                    delivery.source,
                    delivery.period,
                    delivery.delivery_id,
                    delivery.delivered_at,
                    len(delivery.files),
                    delivery.bytes,
                    delivery.manifest,
                    Jsonb(delivery.file_list()),
                ),
            )
        conn.execute("DELETE FROM finops_sources.incomplete WHERE source = %s", (scan.source,))
        for item in scan.incomplete:
            conn.execute(
                "INSERT INTO finops_sources.incomplete (source, period, since, files, reason, seen_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (item.source, item.period, item.since, item.files, item.reason, scan.scanned_at),
            )


def record_load(
    conn: psycopg.Connection[Any],
    delivery: Delivery,
    run_id: str,
    status: LoadStatus,
    gate: str | None = None,
    message: str | None = None,
) -> None:
    """A load's outcome for one source's delivery. LOADED is written in the transaction that
    replaced the rows (so it commits with them); FAILED after that transaction rolled back."""
    conn.execute(
        "INSERT INTO finops_sources.loads (source, period, run_id, delivery_id, status, gate, message, "
        "files, bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (source, period, run_id) DO UPDATE SET delivery_id = EXCLUDED.delivery_id, "
        "status = EXCLUDED.status, gate = EXCLUDED.gate, message = EXCLUDED.message, "
        "files = EXCLUDED.files, bytes = EXCLUDED.bytes, at = now()",
        (
            delivery.source,
            delivery.period,
            run_id,
            delivery.delivery_id,
            status,
            gate,
            message,
            len(delivery.files),
            delivery.bytes,
        ),
    )


def loaded_deliveries(conn: psycopg.Connection[Any], sources: Iterable[str]) -> dict[tuple[str, str], str]:
    """(source, period) -> the id of the delivery last LOADED, for the given sources."""
    rows = conn.execute(
        "SELECT DISTINCT ON (source, period) source, period, delivery_id FROM finops_sources.loads "
        "WHERE status = 'LOADED' AND source = ANY(%s) ORDER BY source, period, at DESC",
        (list(sources),),
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


@dataclass(frozen=True)
class DeliveryRow:
    delivery_id: str
    delivered_at: datetime
    files: int
    bytes: int


@dataclass(frozen=True)
class LoadRow:
    delivery_id: str
    run_id: str
    at: datetime
    status: LoadStatus
    gate: str | None
    message: str | None


@dataclass(frozen=True)
class MonthRow:
    """One month of one source as the admin shows it; the state is derived by the reader."""

    source: str
    period: str
    latest: DeliveryRow | None  # the newest complete delivery seen
    loaded: LoadRow | None  # the newest LOADED load
    last_attempt: LoadRow | None  # the newest load, LOADED or FAILED
    incomplete_since: datetime | None
    incomplete_files: int | None
    incomplete_reason: str | None


_MONTHS_SQL: Final = """
WITH months AS (
    SELECT source, period FROM finops_sources.deliveries WHERE source = ANY(%(sources)s)
    UNION SELECT source, period FROM finops_sources.incomplete WHERE source = ANY(%(sources)s)
    UNION SELECT source, period FROM finops_sources.loads WHERE source = ANY(%(sources)s)
), ranked AS (
    SELECT m.*, row_number() OVER (PARTITION BY m.source ORDER BY m.period DESC) AS n FROM months m
)
SELECT r.source, r.period,
       d.delivery_id AS d_id, d.delivered_at AS d_at, d.files AS d_files, d.bytes AS d_bytes,
       l.delivery_id AS l_id, l.run_id AS l_run, l.at AS l_at,
       a.delivery_id AS a_id, a.run_id AS a_run, a.at AS a_at, a.status AS a_status,
       a.gate AS a_gate, a.message AS a_message,
       i.since AS i_since, i.files AS i_files, i.reason AS i_reason
FROM ranked r
LEFT JOIN LATERAL (
    SELECT * FROM finops_sources.deliveries d
    WHERE d.source = r.source AND d.period = r.period ORDER BY d.delivered_at DESC LIMIT 1
) d ON true
LEFT JOIN LATERAL (
    SELECT * FROM finops_sources.loads l
    WHERE l.source = r.source AND l.period = r.period AND l.status = 'LOADED' ORDER BY l.at DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT * FROM finops_sources.loads a
    WHERE a.source = r.source AND a.period = r.period ORDER BY a.at DESC LIMIT 1
) a ON true
LEFT JOIN finops_sources.incomplete i ON i.source = r.source AND i.period = r.period
WHERE r.n <= %(limit)s
ORDER BY r.source, r.period DESC
"""


def source_months(conn: psycopg.Connection[Any], sources: Sequence[str], limit: int = 24) -> list[MonthRow]:
    """Every month the given sources hold something for (a delivery, incomplete data, a load),
    newest first, at most `limit` per source."""
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(_MONTHS_SQL, {"sources": list(sources), "limit": limit}).fetchall()
    out = []
    for r in rows:
        out.append(
            MonthRow(
                source=r["source"],
                period=r["period"],
                latest=DeliveryRow(r["d_id"], r["d_at"], r["d_files"], r["d_bytes"]) if r["d_id"] else None,
                loaded=LoadRow(r["l_id"], r["l_run"], r["l_at"], "LOADED", None, None) if r["l_id"] else None,
                last_attempt=LoadRow(
                    r["a_id"], r["a_run"], r["a_at"], r["a_status"], r["a_gate"], r["a_message"]
                )
                if r["a_id"]
                else None,
                incomplete_since=r["i_since"],
                incomplete_files=r["i_files"],
                incomplete_reason=r["i_reason"],
            )
        )
    return out


@dataclass(frozen=True)
class ScanRow:
    source: str
    scanned_at: datetime
    error: str | None


def last_scans(conn: psycopg.Connection[Any], sources: Sequence[str]) -> dict[str, ScanRow]:
    """source -> its last listing (time, and the error when it failed), for the given sources."""
    rows = conn.execute(
        "SELECT source, scanned_at, error FROM finops_sources.scans WHERE source = ANY(%s)",
        (list(sources),),
    ).fetchall()
    return {r[0]: ScanRow(r[0], r[1], r[2]) for r in rows}


@dataclass(frozen=True)
class SourceActivity:
    """A source's figures over all its months, for metrics and alerts."""

    source: str
    last_delivered_at: datetime | None  # the newest complete delivery's time
    last_loaded_at: datetime | None  # the newest LOADED load's time
    incomplete: int  # months with data but no complete delivery at the last scan
    incomplete_since: datetime | None  # the oldest of them


_ACTIVITY_SQL: Final = """
SELECT s.source,
       (SELECT max(delivered_at) FROM finops_sources.deliveries d WHERE d.source = s.source),
       (SELECT max(at) FROM finops_sources.loads l WHERE l.source = s.source AND l.status = 'LOADED'),
       (SELECT count(*) FROM finops_sources.incomplete i WHERE i.source = s.source),
       (SELECT min(since) FROM finops_sources.incomplete i WHERE i.source = s.source)
FROM unnest(%s::text[]) AS s(source)
"""


def source_activity(conn: psycopg.Connection[Any], sources: Sequence[str]) -> dict[str, SourceActivity]:
    """source -> its newest delivery and load times and its incomplete deliveries."""
    rows = conn.execute(_ACTIVITY_SQL, (list(sources),)).fetchall()
    return {r[0]: SourceActivity(r[0], r[1], r[2], int(r[3]), r[4]) for r in rows}
