"""Tables of the read model, in the plugin's own schema `finops_admin` (created idempotently).

`runs` has typed columns for every filter and sort plus the list item JSON; the
detail JSON lives in `run_details`. Measured at 100k runs: `periods` (GIN) is
the selective filter; a GIN on `domains` (4 values, each in a large share of
runs) made the planner AND a bitmap of most of the table into every
domain-filtered query (18-48 ms instead of 4 ms), so domains are rechecked on
the rows the other indexes find instead of being indexed. `blocks` and
`period_loads` serve anomaly baselines and coverage. Everything here is derived
from Dagster and rebuilt by `reindex`.
"""

from __future__ import annotations

import secrets
from typing import Final

import psycopg

__all__ = ["SCHEMA", "SCHEMA_VERSION", "ensure_schema"]

SCHEMA: Final = "finops_admin"
SCHEMA_VERSION: Final = 1
# Advisory lock class of this schema (the warehouse loader uses its own class).
LOCK_CLASS: Final = 7_420_001
SCHEMA_LOCK: Final = 1
PROJECTOR_LOCK: Final = 2

_DDL: Final = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};

CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS {SCHEMA}.runs (
    run_id           text PRIMARY KEY,
    status           text NOT NULL,
    trigger          text NOT NULL,
    periods          text[] NOT NULL,
    domains          text[] NOT NULL,
    period_count     integer NOT NULL,
    created_time     timestamptz NOT NULL,
    start_time       timestamptz,
    end_time         timestamptz,
    sort_time        timestamptz NOT NULL,          -- start time, or creation time until it starts
    duration_seconds double precision,
    duration_sort    double precision NOT NULL,     -- -1 while unknown: last in -durationSeconds
    releves_inserted bigint NOT NULL,
    billed_cost      double precision NOT NULL,
    anomalous        boolean NOT NULL DEFAULT false,
    active           boolean NOT NULL,
    dagster_updated  double precision NOT NULL,     -- projection version, part 1: Dagster's update time
    event_id         bigint NOT NULL,               -- projection version, part 2: last event storage id
    summary          jsonb NOT NULL,
    projected_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS runs_by_start ON {SCHEMA}.runs (sort_time DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_duration ON {SCHEMA}.runs (duration_sort DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON {SCHEMA}.runs (status, sort_time DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_trigger ON {SCHEMA}.runs (trigger, sort_time DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_periods ON {SCHEMA}.runs USING gin (periods);
CREATE INDEX IF NOT EXISTS runs_anomalous ON {SCHEMA}.runs (sort_time DESC, run_id DESC) WHERE anomalous;
CREATE INDEX IF NOT EXISTS runs_active ON {SCHEMA}.runs (run_id) WHERE active;
CREATE INDEX IF NOT EXISTS runs_id_prefix ON {SCHEMA}.runs (run_id text_pattern_ops);
CREATE INDEX IF NOT EXISTS runs_history ON {SCHEMA}.runs (domains, period_count, sort_time DESC)
    WHERE status = 'SUCCESS';

CREATE TABLE IF NOT EXISTS {SCHEMA}.run_details (
    run_id text PRIMARY KEY REFERENCES {SCHEMA}.runs (run_id) ON DELETE CASCADE,
    detail jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS {SCHEMA}.blocks (
    run_id           text NOT NULL REFERENCES {SCHEMA}.runs (run_id) ON DELETE CASCADE,
    domain           text NOT NULL,
    status           text NOT NULL,
    period_count     integer NOT NULL,
    sort_time        timestamptz NOT NULL,
    duration_seconds double precision,
    releves_inserted bigint,
    billed_cost      double precision,
    PRIMARY KEY (run_id, domain)
);
CREATE INDEX IF NOT EXISTS blocks_history ON {SCHEMA}.blocks (domain, period_count, sort_time DESC)
    WHERE status = 'SUCCESS';

CREATE TABLE IF NOT EXISTS {SCHEMA}.period_loads (
    run_id           text NOT NULL REFERENCES {SCHEMA}.runs (run_id) ON DELETE CASCADE,
    domain           text NOT NULL,
    period           text NOT NULL,
    loaded_at        timestamptz NOT NULL,
    releves_inserted bigint,
    rows_read        bigint,
    PRIMARY KEY (run_id, domain, period)
);
CREATE INDEX IF NOT EXISTS period_loads_latest ON {SCHEMA}.period_loads (period, domain, loaded_at DESC);
"""


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the schema if needed; safe when several API processes start at once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, SCHEMA_LOCK))
        conn.execute(_DDL)
        conn.execute(
            f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('schema_version', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (str(SCHEMA_VERSION),),
        )
        # The key that signs list cursors: shared by every API process through this table.
        conn.execute(
            f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('cursor_key', %s) ON CONFLICT (key) DO NOTHING",
            (secrets.token_hex(32),),
        )
