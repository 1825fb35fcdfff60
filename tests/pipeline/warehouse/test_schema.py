"""The warehouse bootstrap: every migration once, idempotent, views ready for concurrent refresh."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from finops_pipeline.contract import MATERIALIZED_VIEWS
from finops_pipeline.warehouse.mviews import MV_DEFINITIONS
from finops_pipeline.warehouse.partitions import ensure_partition
from finops_pipeline.warehouse.schema import MIGRATIONS, ensure_schema, schema_version
from tests.support import create_database, query


def _catalog(url: str) -> dict[str, Any]:
    """What the bootstrap creates, as PostgreSQL's catalog describes it."""
    return {
        "relations": query(
            url,
            "SELECT c.relname, c.relkind, c.oid FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'finops' ORDER BY 1",
        ),
        "columns": query(
            url,
            "SELECT table_name, column_name, data_type, is_nullable, column_default, generation_expression "
            "FROM information_schema.columns WHERE table_schema = 'finops' ORDER BY 1, ordinal_position",
        ),
        "indexes": query(
            url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'finops' ORDER BY 1"
        ),
        "matviews": query(
            url, "SELECT matviewname, definition FROM pg_matviews WHERE schemaname = 'finops' ORDER BY 1"
        ),
        "views": query(
            url, "SELECT viewname, definition FROM pg_views WHERE schemaname = 'finops' ORDER BY 1"
        ),
        "constraints": query(
            url,
            "SELECT conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'finops' ORDER BY 1",
        ),
        "migrations": query(
            url, "SELECT version, description, applied_at FROM finops.schema_migrations ORDER BY 1"
        ),
    }


def test_bootstrap_applies_every_migration_then_nothing(pg_base_url: str) -> None:
    url = create_database(pg_base_url, "schema")
    with psycopg.connect(url) as conn:
        assert schema_version(conn) == 0

    versions = [version for version, _, _ in MIGRATIONS]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert ensure_schema(url) == versions
    first = _catalog(url)
    assert [(v, d) for v, d, _ in first["migrations"]] == [(v, d) for v, d, _ in MIGRATIONS]
    relations = {name: kind for name, kind, _ in first["relations"]}
    assert relations["releves"] == "p" and relations["applications"] == "r"
    assert relations["releves_enriched"] == "v"
    assert {name for name, kind in relations.items() if kind == "m"} == set(MATERIALIZED_VIEWS)

    # A second bootstrap (and a third) changes nothing, not even object ids.
    assert ensure_schema(url) == []
    assert ensure_schema(url) == []
    assert _catalog(url) == first
    with psycopg.connect(url) as conn:
        assert schema_version(conn) == versions[-1]


def test_every_view_has_a_unique_index_and_refreshes_concurrently(pg_base_url: str) -> None:
    url = create_database(pg_base_url, "schema")
    ensure_schema(url)
    unique = query(
        url,
        """
        SELECT t.relname, array_agg(a.attname::text ORDER BY k.ord)
        FROM pg_index i
        JOIN pg_class t ON t.oid = i.indrelid AND t.relkind = 'm'
        JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'finops'
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
        GROUP BY t.relname, i.indexrelid
        """,
    )
    assert {name: tuple(cols) for name, cols in unique} == {
        name: MV_DEFINITIONS[name].unique_columns for name in MATERIALIZED_VIEWS
    }
    # Proof by use: CONCURRENTLY is refused on a view without such an index.
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_partition(conn, "open", "2026-11")
        conn.execute(
            "INSERT INTO finops.releves (period, domain, billing_period_start, billing_period_end, "
            "charge_period_start, charge_period_end, charge_category, billed_cost, effective_cost, "
            "billing_currency, service_name, service_category, sub_account_id, tags, application, "
            "dagster_run_id, source_file) VALUES ('2026-11', 'open', '2026-11-01', '2026-12-01', "
            "'2026-11-02', '2026-11-03', 'Usage', 12.5, 10, 'EUR', 'svc', 'Compute', 'a-1', "
            """'{"application": "app-1"}', 'app-1', 'r', 'f')"""
        )
        for name in MATERIALIZED_VIEWS:
            conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY finops.{name}")
            assert conn.execute(f"SELECT count(*) FROM finops.{name}").fetchone() == (1,)
        rankings = conn.execute(
            "SELECT application, cost_rank FROM finops.mv_application_rankings"
        ).fetchall()
        assert rankings == [("app-1", 1)]


def test_concurrent_bootstraps_apply_each_migration_once(pg_base_url: str) -> None:
    url = create_database(pg_base_url, "schema")
    results: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def bootstrap() -> None:
        start.wait()
        try:
            results.append(ensure_schema(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bootstrap) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    applied = sorted(v for result in results for v in result)
    assert applied == [version for version, _, _ in MIGRATIONS]
    assert [v for v, *_ in query(url, "SELECT version FROM finops.schema_migrations ORDER BY 1")] == applied


def test_the_contract_lists_every_materialized_view_in_dashboard_order() -> None:
    from finops_pipeline.contract import MATERIALIZED_VIEWS
    from finops_pipeline.warehouse.mviews import MV_DEFINITIONS

    assert tuple(MV_DEFINITIONS) == MATERIALIZED_VIEWS


def test_migration_3_keeps_the_rows_loaded_before_it(pg_base_url: str) -> None:
    """A warehouse on version 2 (20 columns, numeric(20, 6)) keeps its rows in the FOCUS 1.2 table."""
    url = create_database(pg_base_url, "schema")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA finops")
        conn.execute(
            "CREATE TABLE finops.schema_migrations (version integer PRIMARY KEY, "
            "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, description, sql in MIGRATIONS[:2]:
            conn.execute(sql)  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO finops.schema_migrations (version, description) VALUES (%s, %s)",
                (version, description),
            )
        for domain, period in (("open", "2026-10"), ("public", "2026-11")):
            ensure_partition(conn, domain, period)
            conn.execute(
                "INSERT INTO finops.releves (period, domain, billing_period_start, billing_period_end, "
                "charge_period_start, charge_period_end, charge_category, billed_cost, effective_cost, "
                "billing_currency, service_name, service_category, sub_account_id, tags, application, "
                "dagster_run_id, source_file) VALUES (%s, %s, '2026-11-01', '2026-12-01', "
                "'2026-11-02', '2026-11-03', 'Usage', 12.5, 10, 'EUR', 'svc', 'Compute', 'a-1', "
                """'{"application": "app-1"}', 'app-1', 'r', 'f')""",
                (period, domain),
            )
    assert ensure_schema(url) == [3]
    rows = query(
        url,
        "SELECT domain, period, billed_cost::text, application, tags::text, extra, focus_version "
        "FROM finops.releves ORDER BY 1",
    )
    assert rows == [
        ("open", "2026-10", "12.500000", "app-1", '{"application": "app-1"}', None, None),
        ("public", "2026-11", "12.500000", "app-1", '{"application": "app-1"}', None, None),
    ]
    leaves = query(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname LIKE 'releves\\_%%' ORDER BY 1",
    )
    assert leaves == [("releves_open_2026_10",), ("releves_public_2026_11",)]
    assert query(url, "SELECT to_regclass('finops.releves_v1')") == [(None,)]
    assert query(url, "SELECT count(*) FROM finops.mv_domain_monthly") == [(2,)]  # rebuilt with the rows
