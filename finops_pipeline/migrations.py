"""The one migration mechanism for every PostgreSQL schema of the project.

Each schema has one owner module, which declares its migrations as
`(version, description, sql)`, append-only, and calls `migrate`:

| schema | owner |
|---|---|
| `finops` | `finops_pipeline.warehouse.schema` (cost records, reference, MVs) |
| `finops_reprocess` | `finops_pipeline.reprocess.queue` (reprocess requests) |
| `finops_sources` | `finops_pipeline.sources.state` (source scans, deliveries, their loads) |
| `finops_admin` | `finops_admin_plugin.readmodel.schema` (the admin read model) |

A migration runs once, in order, in its own transaction, recorded in
`<schema>.schema_migrations`. Every migration of every schema takes the same
transaction-scoped advisory lock, so processes starting together (API
replicas, the Dagster daemon, run workers) apply each one a single time and
never race to create the same object. Checking that nothing is missing costs
one indexed read, without the lock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

__all__ = ["MIGRATION_LOCK_KEY", "Migration", "migrate", "schema_version"]

MIGRATION_LOCK_KEY: Final = 0x46494E4F  # "FINO": one lock for every schema's migrations
_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Migration(NamedTuple):
    version: int
    description: str
    sql: str


def _table(schema: str) -> sql.Composed:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name must be a lower-case identifier, got {schema!r}")
    return sql.SQL("{}.schema_migrations").format(sql.Identifier(schema))


def schema_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The highest applied migration of `schema`, 0 when it was never migrated."""
    table = _table(schema)
    cur = conn.cursor(row_factory=tuple_row)  # whatever rows the caller's connection makes
    row = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_migrations",)).fetchone()
    if not row or not row[0]:
        return 0
    row = cur.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def migrate(
    conn: psycopg.Connection[Any], schema: str, migrations: Sequence[tuple[int, str, str]]
) -> list[int]:
    """Apply the migrations of `schema` not applied yet; return the versions this call applied.

    `conn` must not be in a transaction (each migration commits on its own).
    """
    versions = [m[0] for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"migrations of {schema} must have increasing, unique versions: {versions}")
    table = _table(schema)
    if migrations and schema_version(conn, schema) >= versions[-1]:
        conn.rollback()  # end the read-only transaction the check opened
        return []
    conn.rollback()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, description text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
    applied: list[int] = []
    for version, description, statement in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            done = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(table), (version,)
            ).fetchone()
            if done:
                continue
            conn.execute(statement)  # type: ignore[arg-type]  # trusted, static SQL of the owner module
            conn.execute(
                sql.SQL("INSERT INTO {} (version, description) VALUES (%s, %s)").format(table),
                (version, description),
            )
            applied.append(version)
    return applied
