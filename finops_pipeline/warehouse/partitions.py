"""One leaf partition of finops.releves per (domain, period), created on first use.

A load writes into its leaf only: replacing a (period, domain) is a DELETE of
one small table with no index to maintain, and COPY goes straight to the leaf.
The leaf is created as a plain table carrying the partition's CHECK, then
attached: ATTACH PARTITION takes a SHARE UPDATE EXCLUSIVE lock on the domain
table, which blocks neither readers nor loads of other periods.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from finops_pipeline.contract import DOMAINS
from finops_pipeline.periods import parse_period

__all__ = ["ensure_partition", "partition_name"]

_DDL_LOCK_CLASS = 0x46494E50  # one advisory lock key space for partition DDL


def partition_name(domain: str, period: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    day = parse_period(period)  # validates YYYY-MM: the name never carries raw input
    return f"releves_{domain}_{day.year:04d}_{day.month:02d}"


def ensure_partition(conn: psycopg.Connection, domain: str, period: str) -> sql.Identifier:
    """Create the (domain, period) leaf if needed; return its qualified name.

    Runs its own short transaction: call it outside the load's transaction.
    """
    name = partition_name(domain, period)
    leaf = sql.Identifier("finops", name)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"finops.{name}",)).fetchone()
    if row and row[0]:
        return leaf
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_DDL_LOCK_CLASS, name))
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"finops.{name}",)).fetchone()
        if not (row and row[0]):
            parent = sql.Identifier("finops", f"releves_{domain}")
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {leaf} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                    "CONSTRAINT {check} CHECK (domain = {domain} AND period = {period}))"
                ).format(
                    leaf=leaf,
                    parent=parent,
                    check=sql.Identifier(f"{name}_bounds"),
                    domain=sql.Literal(domain),
                    period=sql.Literal(period),
                )
            )
            conn.execute(
                sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {leaf} FOR VALUES IN ({period})").format(
                    parent=parent, leaf=leaf, period=sql.Literal(period)
                )
            )
    return leaf
