"""Loads from provider deliveries: real finops_batch runs reading local export folders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance

from finops_pipeline.contract import load_step_key
from finops_pipeline.deliveries.store import DeliveryStore
from finops_pipeline.settings import get_pipeline_settings
from finops_pipeline.sources.config import Source, SourcesFileError
from finops_pipeline.sources.model import Delivery, DeliveryFile
from finops_pipeline.warehouse.loads import load_period
from tests.pipeline.sources.layouts import (
    Expected,
    expected_of,
    focus_table,
    write_aws_export,
    write_azure_run,
    write_sources_file,
)
from tests.support import metadata_values, output_metadata, query, run_batch, run_events

PERIOD = "2026-10"


def loaded(url: str, domain: str, period: str) -> Expected:
    """What finops.releves holds for (period, domain), summed by PostgreSQL."""
    found = Expected()
    for currency, count, total in query(
        url,
        "SELECT billing_currency, count(*), sum(billed_cost) FROM finops.releves "
        "WHERE domain = %s AND period = %s GROUP BY 1",
        (domain, period),
    ):
        found.rows += count
        found.billed[currency] = Decimal(total)
    return found


def assert_same(found: Expected, expected: Expected) -> None:
    assert found.rows == expected.rows
    assert dict(found.billed) == {c: a for c, a in expected.billed.items()}


def period_quality(instance: DagsterInstance, run_id: str, domain: str, period: str) -> dict[str, Any]:
    """A period's `quality` metadata, from the load's output or, when it failed, its failure."""
    step = load_step_key(domain)
    found = output_metadata(instance, run_id).get(step)
    if found is None:
        failure = next(
            e.event_specific_data
            for e in run_events(instance, run_id)
            if e.event_type == DagsterEventType.STEP_FAILURE and e.step_key == step
        )
        found = metadata_values(failure.user_failure_data.metadata)
    return found["periods"][period]["quality"]


def loads_of(url: str, period: str) -> dict[str, tuple[str, str, str | None]]:
    rows = query(
        url,
        "SELECT DISTINCT ON (source) source, delivery_id, status, gate FROM finops_sources.loads "
        "WHERE period = %s ORDER BY source, at DESC",
        (period,),
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_aws_and_azure_deliveries_load_together(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url = sources_env["database_url"]
    aws = [focus_table("public", PERIOD, 300, seed=1), focus_table("public", PERIOD, 200, seed=2)]
    write_aws_export(sources_env["aws"], PERIOD, aws)
    # Two Azure runs of the month: the later one is the month-to-date snapshot that wins.
    write_azure_run(
        sources_env["azure"],
        PERIOD,
        [focus_table("public", PERIOD, 50, seed=3)],
        submitted=datetime(2026, 11, 2, 8, tzinfo=UTC),
    )
    azure = [focus_table("public", PERIOD, 120, seed=4), focus_table("public", PERIOD, 80, seed=5)]
    latest = write_azure_run(
        sources_env["azure"], PERIOD, azure, submitted=datetime(2026, 11, 3, 8, tzinfo=UTC)
    )

    result = run_batch(dagster_instance, periods=[PERIOD], domains=["public"])

    assert result.success
    assert_same(loaded(url, "public", PERIOD), expected_of(*aws, *azure))
    quality = period_quality(dagster_instance, result.run_id, "public", PERIOD)
    assert quality["gate"] is None and quality["rows_loaded"] == 700
    taken = {d["source"]: d for d in quality["deliveries"]}
    assert set(taken) == {"aws-payer", "azure-ea"}
    assert taken["aws-payer"]["files"] == 2 and taken["azure-ea"]["files"] == 2
    assert taken["azure-ea"]["bytes"] == sum(p.stat().st_size for p in latest.glob("part_*.csv"))
    recorded = loads_of(url, PERIOD)
    assert {name: status for name, (_, status, _) in recorded.items()} == {
        "aws-payer": "LOADED",
        "azure-ea": "LOADED",
    }
    assert recorded["aws-payer"][0] == taken["aws-payer"]["delivery_id"]


def test_aws_redelivery_keeps_azure_rows(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url = sources_env["database_url"]
    write_aws_export(sources_env["aws"], PERIOD, [focus_table("public", PERIOD, 300, seed=1)])
    azure = [focus_table("public", PERIOD, 150, seed=4)]
    write_azure_run(sources_env["azure"], PERIOD, azure, submitted=datetime(2026, 11, 3, 8, tzinfo=UTC))
    assert run_batch(dagster_instance, periods=[PERIOD], domains=["public"]).success

    # A restatement in overwrite mode: the same paths, new content.
    restated = [focus_table("public", PERIOD, 280, seed=11), focus_table("public", PERIOD, 40, seed=12)]
    write_aws_export(sources_env["aws"], PERIOD, restated)
    result = run_batch(dagster_instance, periods=[PERIOD], domains=["public"])

    assert result.success
    assert_same(loaded(url, "public", PERIOD), expected_of(*restated, *azure))
    runs = query(url, "SELECT DISTINCT dagster_run_id FROM finops.releves WHERE period = %s", (PERIOD,))
    assert runs == [(result.run_id,)]


def test_manifest_naming_a_missing_file_fails_and_keeps_rows(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url = sources_env["database_url"]
    first = [focus_table("public", PERIOD, 250, seed=1)]
    write_aws_export(sources_env["aws"], PERIOD, first)
    assert run_batch(dagster_instance, periods=[PERIOD], domains=["public"]).success
    before = loaded(url, "public", PERIOD)

    names = write_aws_export(
        sources_env["aws"],
        PERIOD,
        [focus_table("public", PERIOD, 100, seed=7), focus_table("public", PERIOD, 100, seed=8)],
        execution="exec-2",
        missing=1,
    )
    result = run_batch(dagster_instance, periods=[PERIOD], domains=["public"])

    assert not result.success
    quality = period_quality(dagster_instance, result.run_id, "public", PERIOD)
    assert quality["gate"] == "incomplete_delivery"
    missing = names[-1].split("/payer/", 1)[1]
    failure = query(
        url, "SELECT status, gate, message FROM finops_sources.loads WHERE run_id = %s", (result.run_id,)
    )
    assert failure[0][0] == "FAILED" and failure[0][1] == "incomplete_delivery"
    assert f"aws-payer/{missing} is missing" in failure[0][2]
    assert_same(loaded(url, "public", PERIOD), before)


def test_oci_file_spanning_two_months_counts_each_row_once(warehouse_url: str, tmp_path: Path) -> None:
    """A report file written on 2 November holds October's last rows and November's first:
    each month's load takes its own rows and skips the others, which it neither rejects nor
    counts."""
    import gzip

    import pyarrow as pa

    from finops_pipeline.demo_data import table_to_csv

    october, november = (
        focus_table("public", "2026-10", 90, seed=1),
        focus_table("public", "2026-11", 60, seed=2),
    )
    root = tmp_path / "oci"
    relative = "FOCUS Reports/2026/11/02/0001.csv.gz"
    path = root / relative
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(table_to_csv(pa.concat_tables([october, november]))))
    source = Source(name="oci-tenancy", domain="public", kind="oci-focus-reports", uri=str(root))
    file = DeliveryFile(uri=str(path), relative=relative, size=path.stat().st_size)
    for period, table in (("2026-10", october), ("2026-11", november)):
        delivery = Delivery(
            "oci-tenancy", period, f"oci:{period}", datetime(2026, 11, 2, tzinfo=UTC), (file,)
        )
        result = load_period(
            warehouse_url, DeliveryStore([source], [delivery], period), "public", period, "r1"
        )
        assert result.rows_read == table.num_rows and result.rejected_total == 0
        assert_same(loaded(warehouse_url, "public", period), expected_of(table))


def test_landing_source_in_a_sources_file(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    from finops_pipeline.demo_data import table_to_csv

    table = focus_table("open", PERIOD, 120, seed=9)
    folder = sources_env["landing"] / PERIOD
    folder.mkdir()
    (folder / "export.csv").write_bytes(table_to_csv(table))

    result = run_batch(dagster_instance, periods=[PERIOD], domains=["open"])

    assert result.success
    assert_same(loaded(sources_env["database_url"], "open", PERIOD), expected_of(table))
    quality = period_quality(dagster_instance, result.run_id, "open", PERIOD)
    assert [d["source"] for d in quality["deliveries"]] == ["open-landing"]


def test_a_domain_without_delivery_fails_empty_naming_its_sources(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    result = run_batch(dagster_instance, periods=[PERIOD], domains=["public"])

    assert not result.success
    quality = period_quality(dagster_instance, result.run_id, "public", PERIOD)
    assert quality["gate"] == "empty" and quality["deliveries"] == []


def test_a_bad_sources_file_stops_the_code_location_naming_the_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from finops_pipeline.definitions import build_definitions

    path = write_sources_file(
        tmp_path / "sources.yaml",
        [
            {"name": "aws-payer", "domain": "public", "kind": "aws-data-exports", "uri": str(tmp_path)},
            {"name": "azure-ea", "domain": "public", "kind": "azure-exports", "uri": str(tmp_path)},
        ],
    )
    monkeypatch.setenv("FINOPS_SOURCES", str(path))
    get_pipeline_settings.cache_clear()
    try:
        with pytest.raises(SourcesFileError, match=rf"{path}:8: .*unknown kind 'azure-exports'"):
            build_definitions()
    finally:
        get_pipeline_settings.cache_clear()


def test_landing_uri_alone_records_no_delivery(
    finops_env: dict[str, Any], dagster_instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FINOPS_SOURCES", raising=False)
    get_pipeline_settings.cache_clear()
    result = run_batch(dagster_instance, periods=["2026-11"], domains=["open"])

    assert result.success
    assert period_quality(dagster_instance, result.run_id, "open", "2026-11")["deliveries"] == []
    schema = query(finops_env["database_url"], "SELECT to_regnamespace('finops_sources')")
    assert schema == [(None,)]
