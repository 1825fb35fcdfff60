"""The read model's schema `finops_admin`: its only owner, migrated by `finops_pipeline.migrations`.

`runs` has typed columns for every filter and sort plus the list item JSON; the
detail JSON lives in `run_details`. Measured at 100k runs: `periods` (GIN) is
the selective filter; a GIN on `domains` (4 values, each in a large share of
runs) made the planner AND a bitmap of most of the table into every
domain-filtered query (18-48 ms instead of 4 ms), so domains are rechecked on
the rows the other indexes find instead of being indexed; a btree on `trigger`
(2 values) was ANDed the same way (+2.7 ms on a domain + period + trigger page),
so it is gone too.

`run_counts` keeps the number of runs per distinct (status, trigger, periods,
domains, anomalous), maintained by statement-level triggers on `runs`, so the
list's `totalItems` for any combination of those filters is a sum over a few
hundred rows instead of a count over the matching runs (7.5 ms for all of
100k runs, 48 ms for a domain filter). Counts stay exact: the triggers run in
the writing transaction. `signature_counts` does the same for `failures` (runs and
first failure per failure signature: "seen in N runs since ..."). `blocks` and
`period_loads` serve anomaly baselines
and coverage. Everything here is derived from Dagster and rebuilt by `reindex`.
"""

from __future__ import annotations

from typing import Final

import psycopg

from finops_pipeline.migrations import Migration, migrate

__all__ = ["MIGRATIONS", "SCHEMA", "ensure_schema"]

SCHEMA: Final = "finops_admin"
# Advisory lock class of this schema (the warehouse loader uses its own class).
LOCK_CLASS: Final = 7_420_001
PROJECTOR_LOCK: Final = 2

_DDL: Final = f"""
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
DROP INDEX IF EXISTS {SCHEMA}.runs_by_trigger;
CREATE INDEX IF NOT EXISTS runs_periods ON {SCHEMA}.runs USING gin (periods);
CREATE INDEX IF NOT EXISTS runs_anomalous ON {SCHEMA}.runs (sort_time DESC, run_id DESC) WHERE anomalous;
CREATE INDEX IF NOT EXISTS runs_active ON {SCHEMA}.runs (run_id) WHERE active;
CREATE INDEX IF NOT EXISTS runs_id_prefix ON {SCHEMA}.runs (run_id text_pattern_ops);
CREATE INDEX IF NOT EXISTS runs_history ON {SCHEMA}.runs (domains, period_count, sort_time DESC)
    WHERE status = 'SUCCESS';

CREATE TABLE IF NOT EXISTS {SCHEMA}.run_counts (
    status    text NOT NULL,
    trigger   text NOT NULL,
    periods   text[] NOT NULL,
    domains   text[] NOT NULL,
    anomalous boolean NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (status, trigger, periods, domains, anomalous)
);

CREATE OR REPLACE FUNCTION {SCHEMA}.count_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- old_rows / new_rows exist only for the events that declare them: each branch reads its own.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO {SCHEMA}.run_counts AS c (status, trigger, periods, domains, anomalous, n)
        SELECT status, trigger, periods, domains, anomalous, -count(*) FROM old_rows GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (status, trigger, periods, domains, anomalous) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO {SCHEMA}.run_counts AS c (status, trigger, periods, domains, anomalous, n)
        SELECT status, trigger, periods, domains, anomalous, count(*) FROM new_rows GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (status, trigger, periods, domains, anomalous) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {SCHEMA}.reset_run_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {SCHEMA}.run_counts;
    RETURN NULL;
END $$;

-- Created once: DROP TRIGGER would lock out readers at every API start.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'runs_count_insert'
                   AND tgrelid = '{SCHEMA}.runs'::regclass) THEN
        CREATE TRIGGER runs_count_insert AFTER INSERT ON {SCHEMA}.runs
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.count_runs();
        CREATE TRIGGER runs_count_update AFTER UPDATE ON {SCHEMA}.runs
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.count_runs();
        CREATE TRIGGER runs_count_delete AFTER DELETE ON {SCHEMA}.runs
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.count_runs();
        CREATE TRIGGER runs_count_truncate AFTER TRUNCATE ON {SCHEMA}.runs
            FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.reset_run_counts();
    END IF;
END $$;

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


_RECOUNT: Final = f"""
DELETE FROM {SCHEMA}.run_counts;
INSERT INTO {SCHEMA}.run_counts (status, trigger, periods, domains, anomalous, n)
SELECT status, trigger, periods, domains, anomalous, count(*) FROM {SCHEMA}.runs GROUP BY 1, 2, 3, 4, 5;
"""

# The key that signs list cursors, shared by every API process through this table.
_CURSOR_KEY: Final = f"""
INSERT INTO {SCHEMA}.meta (key, value)
VALUES ('cursor_key', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (key) DO NOTHING;
"""

# What each (run, domain, period) load saw, for the metrics: rows read and loaded, rejects by
# reason, the quality gate that failed it. Filled by the projector; a reindex fills it for history.
_LOAD_QUALITY: Final = f"""
CREATE TABLE {SCHEMA}.load_quality (
    run_id      text NOT NULL REFERENCES {SCHEMA}.runs (run_id) ON DELETE CASCADE,
    domain      text NOT NULL,
    period      text NOT NULL,
    loaded_at   timestamptz NOT NULL,
    rows_read   bigint,
    rows_loaded bigint,
    rejected    jsonb NOT NULL DEFAULT '{{}}',
    gate        text,
    PRIMARY KEY (run_id, domain, period)
);
CREATE INDEX load_quality_gated ON {SCHEMA}.load_quality (domain, gate) WHERE gate IS NOT NULL;
"""

_MAPPING_VERSION: Final = f"""
ALTER TABLE {SCHEMA}.runs ADD COLUMN mapping_version integer NOT NULL DEFAULT 0;
CREATE INDEX runs_mapping_version ON {SCHEMA}.runs (mapping_version, sort_time DESC);
"""

# The failure excerpt of an ended FAILED run (`logs.build_excerpt`), stored by the projector so a
# detail is answered without reading Dagster's event log and compute logs. Admins only: the API
# withholds it from read-only callers.
_EXCERPT: Final = f"""
ALTER TABLE {SCHEMA}.run_details ADD COLUMN excerpt jsonb;
"""

# Costs per currency, exact: {currency: "decimal text"} (as `finops_pipeline.contract` writes them),
# for anomaly scores per currency. A double added currencies together and lost digits. The old
# figures cannot be split: the runs read {} until the projector re-projects them (mapping 3).
# DROP + ADD with a constant default rewrites no row: instant at any size.
_COSTS_PER_CURRENCY: Final = f"""
ALTER TABLE {SCHEMA}.runs DROP COLUMN billed_cost;
ALTER TABLE {SCHEMA}.runs ADD COLUMN billed_cost jsonb NOT NULL DEFAULT '{{}}';
ALTER TABLE {SCHEMA}.blocks DROP COLUMN billed_cost;
ALTER TABLE {SCHEMA}.blocks ADD COLUMN billed_cost jsonb NOT NULL DEFAULT '{{}}';
"""

# The signatures of FAILED runs (`readmodel.failures`): one row per (run, signature), with the
# domains it struck and the run's source. FAILED runs stored before are marked for re-projection
# (mapping version 0): the projector signs them in the background, newest first, so existing
# history shows up without a `finops reindex`.
_FAILURES: Final = f"""
CREATE TABLE {SCHEMA}.failures (
    run_id    text NOT NULL REFERENCES {SCHEMA}.runs (run_id) ON DELETE CASCADE,
    signature text NOT NULL,
    kind      text NOT NULL,
    text      text NOT NULL,
    domains   text[] NOT NULL,
    source    text,
    failed_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, signature)
);
CREATE INDEX failures_by_signature ON {SCHEMA}.failures (signature, failed_at DESC);
CREATE INDEX failures_by_time ON {SCHEMA}.failures (failed_at DESC);
UPDATE {SCHEMA}.runs SET mapping_version = 0 WHERE status = 'FAILED';
"""

# Anomalies compare like with like (`anomalies.RUN_HISTORY` / `BLOCK_HISTORY`): the trigger and the
# roles of the periods (CURRENT / PREVIOUS / OTHER month of the run's start, sorted, as
# `anomalies.period_roles` writes them) join the keys, and blocks carry their run's. Stored runs get
# them computed here; their anomalies follow the new keys after `finops reindex`.
_COMPARABLE_KEYS: Final = f"""
ALTER TABLE {SCHEMA}.runs ADD COLUMN period_roles text NOT NULL DEFAULT '';
ALTER TABLE {SCHEMA}.blocks ADD COLUMN trigger text NOT NULL DEFAULT '';
ALTER TABLE {SCHEMA}.blocks ADD COLUMN period_roles text NOT NULL DEFAULT '';
UPDATE {SCHEMA}.runs r SET period_roles = coalesce((
    SELECT string_agg(role, ',' ORDER BY role COLLATE "C") FROM (
        SELECT CASE p
            WHEN to_char(r.sort_time AT TIME ZONE 'UTC', 'YYYY-MM') THEN 'CURRENT'
            WHEN to_char((r.sort_time AT TIME ZONE 'UTC') - interval '1 month', 'YYYY-MM') THEN 'PREVIOUS'
            ELSE 'OTHER' END AS role
        FROM unnest(r.periods) AS p) roles), '');
UPDATE {SCHEMA}.blocks b SET trigger = r.trigger, period_roles = r.period_roles
    FROM {SCHEMA}.runs r WHERE r.run_id = b.run_id;
DROP INDEX IF EXISTS {SCHEMA}.runs_history;
DROP INDEX IF EXISTS {SCHEMA}.blocks_history;
CREATE INDEX runs_history ON {SCHEMA}.runs (domains, trigger, period_count, period_roles, sort_time DESC)
    WHERE status = 'SUCCESS';
CREATE INDEX blocks_history ON {SCHEMA}.blocks (domain, trigger, period_count, period_roles, sort_time DESC)
    WHERE status = 'SUCCESS';
"""

# How many runs failed with each signature and when the first did, kept by triggers like
# `run_counts`: "seen in N runs since ..." on the list and the detail is one primary-key read,
# where counting `failures` per request read every run of a signature (14,922 runs of one cause
# in the 100,000-run history of bench/api.py). `failures` has one row per (run, signature): its
# rows per signature are the signature's runs. A delete recomputes `first_seen` from
# `failures_by_signature` (one index read per signature touched).
_SIGNATURE_COUNTS: Final = f"""
CREATE TABLE {SCHEMA}.signature_counts (
    signature  text PRIMARY KEY,
    runs       bigint NOT NULL,
    first_seen timestamptz NOT NULL
);

CREATE FUNCTION {SCHEMA}.count_signatures() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE {SCHEMA}.signature_counts c SET runs = c.runs - o.n
            FROM (SELECT signature, count(*) AS n FROM old_rows GROUP BY 1) o
            WHERE c.signature = o.signature;
        DELETE FROM {SCHEMA}.signature_counts WHERE runs <= 0;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO {SCHEMA}.signature_counts AS c (signature, runs, first_seen)
        SELECT signature, count(*), min(failed_at) FROM new_rows GROUP BY 1
        ON CONFLICT (signature) DO UPDATE
            SET runs = c.runs + EXCLUDED.runs, first_seen = least(c.first_seen, EXCLUDED.first_seen);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE {SCHEMA}.signature_counts c
            SET first_seen = (SELECT min(f.failed_at) FROM {SCHEMA}.failures f
                              WHERE f.signature = c.signature)
            WHERE c.signature IN (SELECT DISTINCT signature FROM old_rows);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION {SCHEMA}.reset_signature_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {SCHEMA}.signature_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER failures_count_insert AFTER INSERT ON {SCHEMA}.failures
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.count_signatures();
CREATE TRIGGER failures_count_update AFTER UPDATE ON {SCHEMA}.failures
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.count_signatures();
CREATE TRIGGER failures_count_delete AFTER DELETE ON {SCHEMA}.failures
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.count_signatures();
CREATE TRIGGER failures_count_truncate AFTER TRUNCATE ON {SCHEMA}.failures
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.reset_signature_counts();

INSERT INTO {SCHEMA}.signature_counts (signature, runs, first_seen)
SELECT signature, count(*), min(failed_at) FROM {SCHEMA}.failures GROUP BY 1;
"""

# (version, description, SQL). Append only: a shipped migration never changes.
MIGRATIONS: Final = (
    Migration(1, "runs, counts, details, blocks, period loads", _DDL),
    # Counts what a version before run_counts stored. The triggers of version 1 make
    # writers wait for this transaction, so nothing is counted twice.
    Migration(2, "count the runs stored before run_counts existed", _RECOUNT),
    Migration(3, "cursor signing key", _CURSOR_KEY),
    Migration(4, "load quality per run, domain and period (run `finops reindex` to fill it for history)",
              _LOAD_QUALITY),
    Migration(5, "the mapping version each run was projected with (older ones are re-projected)",
              _MAPPING_VERSION),
    Migration(6, "the failure excerpt of FAILED runs beside their detail", _EXCERPT),
    Migration(7, "billed cost of runs and blocks per currency, exact (jsonb)", _COSTS_PER_CURRENCY),
    Migration(8, "failure signatures of FAILED runs (re-projects the FAILED runs stored before)", _FAILURES),
    Migration(9, "trigger and period roles as anomaly comparability keys (run `finops reindex` to rescore)",
              _COMPARABLE_KEYS),
    Migration(10, "runs and first failure per failure signature, kept by triggers", _SIGNATURE_COUNTS),
)  # fmt: skip


def ensure_schema(conn: psycopg.Connection) -> list[int]:
    """Apply the missing migrations; safe when several API processes start at once."""
    return migrate(conn, SCHEMA, MIGRATIONS)
