"""The `finops` warehouse schema: its migrations, applied by `finops_pipeline.migrations`.

This module is the schema's only owner. Running the bootstrap again changes nothing.
"""

from __future__ import annotations

from typing import Final

import psycopg

from finops_pipeline import migrations
from finops_pipeline.constants import SCHEMA
from finops_pipeline.contract import DOMAINS
from finops_pipeline.warehouse import mviews

__all__ = ["MIGRATIONS", "ensure_schema", "schema_version"]

_RELEVES = (
    """
CREATE TABLE finops.releves (
    period               char(7)        NOT NULL,
    domain               text           NOT NULL,
    billing_account_id   text,
    billing_period_start timestamptz    NOT NULL,
    billing_period_end   timestamptz    NOT NULL,
    charge_period_start  timestamptz    NOT NULL,
    charge_period_end    timestamptz    NOT NULL,
    charge_category      text           NOT NULL,
    billed_cost          numeric(20, 6) NOT NULL,
    effective_cost       numeric(20, 6) NOT NULL,
    billing_currency     char(3)        NOT NULL,
    service_name         text           NOT NULL,
    service_category     text           NOT NULL,
    provider_name        text,
    region_id            text,
    resource_id          text,
    resource_name        text,
    sub_account_id       text           NOT NULL,
    sub_account_name     text,
    consumed_quantity    numeric,
    consumed_unit        text,
    tags                 jsonb,
    application          text           NOT NULL DEFAULT 'unassigned',
    dagster_run_id       text           NOT NULL,
    source_file          text           NOT NULL
) PARTITION BY LIST (domain);
COMMENT ON TABLE finops.releves IS
    'FinOps cost records (FOCUS 1.2), one row per record; replaced per (period, domain) by finops_batch. '
    'Partitioned by domain, then by period: one leaf per (domain, period), created by the first load.';
COMMENT ON COLUMN finops.releves.application IS
    'the "application" key of tags, or unassigned; set by the loader';
"""
    + "".join(
        f"CREATE TABLE finops.releves_{domain} PARTITION OF finops.releves "
        f"FOR VALUES IN ('{domain}') PARTITION BY LIST (period);\n"
        for domain in DOMAINS
    )
    + """
CREATE TABLE finops.applications (
    application text PRIMARY KEY,
    family      text NOT NULL,
    label       text
);
COMMENT ON TABLE finops.applications IS
    'Reference data: the family each application belongs to (Vue Famille / Vue Application)';

CREATE VIEW finops.releves_enriched AS
SELECT r.*, coalesce(a.family, 'Unassigned') AS family
FROM finops.releves r
LEFT JOIN finops.applications a USING (application);
"""
)

# (version, description, SQL). Append only: a shipped migration never changes.
MIGRATIONS: Final[tuple[tuple[int, str, str], ...]] = (
    (1, "releves, applications reference, enriched view", _RELEVES),
    (2, "dashboard materialized views", mviews.create_all_sql()),
)


def schema_version(conn: psycopg.Connection) -> int:
    """The highest applied migration, 0 when the schema was never bootstrapped."""
    return migrations.schema_version(conn, SCHEMA)


def ensure_schema(database_url: str) -> list[int]:
    """Apply the missing migrations; return the versions applied by this call."""
    with psycopg.connect(database_url, autocommit=False) as conn:
        return migrations.migrate(conn, SCHEMA, MIGRATIONS)
