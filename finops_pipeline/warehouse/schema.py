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

# Migration 3: the whole FOCUS 1.2 record. Written out literally (not generated from
# focus_columns) so that this shipped migration never changes with the code.
_RELEVES_FOCUS = (
    """
DROP MATERIALIZED VIEW IF EXISTS
    finops.mv_dashboard_monthly, finops.mv_domain_monthly, finops.mv_family_monthly,
    finops.mv_application_monthly, finops.mv_application_rankings, finops.mv_domain_history;
DROP VIEW finops.releves_enriched;

-- Keep the version-1 table aside under other names while the new one is built.
DO $$
DECLARE
    leaf record;
BEGIN
    FOR leaf IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'finops'
          AND p.relname IN ('releves_open', 'releves_private', 'releves_public', 'releves_native')
    LOOP
        EXECUTE format('ALTER TABLE finops.%I RENAME TO %I', leaf.relname, leaf.relname || '_v1');
    END LOOP;
END $$;
"""
    + "".join(f"ALTER TABLE finops.releves_{domain} RENAME TO releves_{domain}_v1;\n" for domain in DOMAINS)
    + """
ALTER TABLE finops.releves RENAME TO releves_v1;

CREATE TABLE finops.releves (
    period                                 char(7)     NOT NULL,
    domain                                 text        NOT NULL,
    availability_zone                      text,
    billed_cost                            numeric NOT NULL,
    billing_account_id                     text,
    billing_account_name                   text,
    billing_account_type                   text,
    billing_currency                       text NOT NULL,
    billing_period_end                     timestamptz NOT NULL,
    billing_period_start                   timestamptz NOT NULL,
    capacity_reservation_id                text,
    capacity_reservation_status            text,
    charge_category                        text,
    charge_class                           text,
    charge_description                     text,
    charge_frequency                       text,
    charge_period_end                      timestamptz NOT NULL,
    charge_period_start                    timestamptz NOT NULL,
    commitment_discount_category           text,
    commitment_discount_id                 text,
    commitment_discount_name               text,
    commitment_discount_quantity           numeric,
    commitment_discount_status             text,
    commitment_discount_type               text,
    commitment_discount_unit               text,
    consumed_quantity                      numeric,
    consumed_unit                          text,
    contracted_cost                        numeric,
    contracted_unit_price                  numeric,
    effective_cost                         numeric,
    invoice_id                             text,
    invoice_issuer_name                    text,
    list_cost                              numeric,
    list_unit_price                        numeric,
    pricing_category                       text,
    pricing_currency                       text,
    pricing_currency_contracted_unit_price numeric,
    pricing_currency_effective_cost        numeric,
    pricing_currency_list_unit_price       numeric,
    pricing_quantity                       numeric,
    pricing_unit                           text,
    provider_name                          text,
    publisher_name                         text,
    region_id                              text,
    region_name                            text,
    resource_id                            text,
    resource_name                          text,
    resource_type                          text,
    service_category                       text,
    service_name                           text,
    service_subcategory                    text,
    sku_id                                 text,
    sku_meter                              text,
    sku_price_details                      jsonb,
    sku_price_id                           text,
    sub_account_id                         text,
    sub_account_name                       text,
    sub_account_type                       text,
    tags                                   jsonb,
    application                            text        NOT NULL DEFAULT 'unassigned',
    extra                                  jsonb,
    focus_version                          text,
    source_file                            text        NOT NULL,
    source_line                            bigint,
    dagster_run_id                         text        NOT NULL
) PARTITION BY LIST (domain);
COMMENT ON TABLE finops.releves IS
    'FinOps cost records: the FOCUS 1.2 Cost and Usage columns, one row per record; replaced per '
    '(period, domain) by finops_batch. Partitioned by domain, then by period: one leaf per '
    '(domain, period).';
COMMENT ON COLUMN finops.releves.period IS
    'landing month: the month of BillingPeriodStart (or ChargePeriodStart with FINOPS_PERIOD_BASIS=charge)';
COMMENT ON COLUMN finops.releves.application IS
    'first of FINOPS_APPLICATION_TAG_KEYS found in tags (case-insensitive), or unassigned';
COMMENT ON COLUMN finops.releves.extra IS
    'provider-specific and x_ columns of the export, unparsed (column name -> text)';
COMMENT ON COLUMN finops.releves.focus_version IS 'FOCUS version detected in the source file';
COMMENT ON COLUMN finops.releves.source_line IS
    'CSV: record number + 1 (header = line 1); Parquet: row number in the file';
"""
    + "".join(
        f"CREATE TABLE finops.releves_{domain} PARTITION OF finops.releves "
        f"FOR VALUES IN ('{domain}') PARTITION BY LIST (period);\n"
        for domain in DOMAINS
    )
    + """
DO $$
DECLARE
    pair record;
    leaf text;
BEGIN
    FOR pair IN SELECT DISTINCT domain, period FROM finops.releves_v1 LOOP
        leaf := format('releves_%s_%s', pair.domain, replace(pair.period, '-', '_'));
        EXECUTE format(
            'CREATE TABLE finops.%I (LIKE finops.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
            'CONSTRAINT %I CHECK (domain = %L AND period = %L))',
            leaf, 'releves_' || pair.domain, leaf || '_bounds', pair.domain, pair.period);
        EXECUTE format('ALTER TABLE finops.%I ATTACH PARTITION finops.%I FOR VALUES IN (%L)',
            'releves_' || pair.domain, leaf, pair.period);
    END LOOP;
END $$;
INSERT INTO finops.releves (
    period, domain, billing_account_id, billing_period_start, billing_period_end,
    charge_period_start, charge_period_end, charge_category, billed_cost, effective_cost,
    billing_currency, service_name, service_category, provider_name, region_id,
    resource_id, resource_name, sub_account_id, sub_account_name, consumed_quantity,
    consumed_unit, tags, application, dagster_run_id, source_file
)
SELECT
    period, domain, billing_account_id, billing_period_start, billing_period_end,
    charge_period_start, charge_period_end, charge_category, billed_cost, effective_cost,
    billing_currency, service_name, service_category, provider_name, region_id,
    resource_id, resource_name, sub_account_id, sub_account_name, consumed_quantity,
    consumed_unit, tags, application, dagster_run_id, source_file
FROM finops.releves_v1;
DROP TABLE finops.releves_v1 CASCADE;

CREATE VIEW finops.releves_enriched AS
SELECT r.*, coalesce(a.family, 'Unassigned') AS family
FROM finops.releves r
LEFT JOIN finops.applications a USING (application);
"""
    + mviews.create_all_sql()
)

# (version, description, SQL). Append only: a shipped migration never changes.
MIGRATIONS: Final[tuple[tuple[int, str, str], ...]] = (
    (1, "releves, applications reference, enriched view", _RELEVES),
    (2, "dashboard materialized views", mviews.create_all_sql()),
    (3, "releves: every FOCUS 1.2 column, exact numerics, extra, focus_version", _RELEVES_FOCUS),
)


def schema_version(conn: psycopg.Connection) -> int:
    """The highest applied migration, 0 when the schema was never bootstrapped."""
    return migrations.schema_version(conn, SCHEMA)


def ensure_schema(database_url: str) -> list[int]:
    """Apply the missing migrations; return the versions applied by this call."""
    with psycopg.connect(database_url, autocommit=False) as conn:
        return migrations.migrate(conn, SCHEMA, MIGRATIONS)
