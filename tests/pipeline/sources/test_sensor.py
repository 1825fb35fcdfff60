"""The delivery sensor alone: its ticks, and the runs the daemon launches from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus

from finops_pipeline.contract import (
    DELIVERY_SENSOR_NAME,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    TRIGGER_DELIVERY,
)
from finops_pipeline.demo_data import table_to_csv
from tests.pipeline.sources.layouts import expected_of, focus_table, write_aws_export, write_azure_run
from tests.pipeline.sources.test_loading import assert_same, loaded
from tests.support import delivery_sensor_tick, launch_run_requests, query

OCT, NOV = "2026-10", "2026-11"


def tick_and_launch(instance: DagsterInstance) -> list[str]:
    requests = delivery_sensor_tick(instance)
    return launch_run_requests(instance, requests, sensor_name=DELIVERY_SENSOR_NAME)


def test_the_sensor_alone_loads_every_delivery_once(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url = sources_env["database_url"]
    aws = {
        OCT: [focus_table("public", OCT, 200, seed=1), focus_table("public", OCT, 100, seed=2)],
        NOV: [focus_table("public", NOV, 150, seed=3)],
    }
    for period, tables in aws.items():
        write_aws_export(sources_env["aws"], period, tables)
    write_azure_run(
        sources_env["azure"],
        OCT,
        [focus_table("public", OCT, 30, seed=4)],
        submitted=datetime(2026, 11, 1, 8, tzinfo=UTC),
    )
    azure = [focus_table("public", OCT, 90, seed=5)]
    write_azure_run(sources_env["azure"], OCT, azure, submitted=datetime(2026, 11, 4, 8, tzinfo=UTC))
    landing = focus_table("open", NOV, 80, seed=6)
    (sources_env["landing"] / NOV).mkdir()
    (sources_env["landing"] / NOV / "export.csv").write_bytes(table_to_csv(landing))

    requests = delivery_sensor_tick(dagster_instance)

    # One run per domain, for exactly the periods with a delivery.
    by_domain = {r.tags[TAG_DOMAINS]: r for r in requests}
    assert set(by_domain) == {"public", "open"}
    assert by_domain["public"].tags[TAG_PERIODS] == f"{NOV},{OCT}"
    assert by_domain["open"].tags[TAG_PERIODS] == NOV
    assert all(r.tags[TAG_TRIGGER] == TRIGGER_DELIVERY for r in requests)
    assert by_domain["open"].tags[TAG_REQUESTED_BY] == "source:open-landing"
    assert by_domain["public"].tags[TAG_REQUESTED_BY] in ("source:aws-payer", "source:azure-ea")

    run_ids = launch_run_requests(dagster_instance, requests, sensor_name=DELIVERY_SENSOR_NAME)
    assert len(run_ids) == 2
    for run_id in run_ids:
        assert dagster_instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS
    assert_same(loaded(url, "public", OCT), expected_of(*aws[OCT], *azure))
    assert_same(loaded(url, "public", NOV), expected_of(*aws[NOV]))
    assert_same(loaded(url, "open", NOV), expected_of(landing))

    # Everything is loaded: the next ticks ask for nothing.
    assert delivery_sensor_tick(dagster_instance) == []
    assert tick_and_launch(dagster_instance) == []
    statuses = query(url, "SELECT source, period, status FROM finops_sources.loads ORDER BY 1, 2")
    assert statuses == [
        ("aws-payer", OCT, "LOADED"),
        ("aws-payer", NOV, "LOADED"),
        ("azure-ea", OCT, "LOADED"),
        ("open-landing", NOV, "LOADED"),
    ]


def test_a_sensor_ticking_twice_launches_one_run(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    write_aws_export(sources_env["aws"], OCT, [focus_table("public", OCT, 100, seed=1)])

    first, second = delivery_sensor_tick(dagster_instance), delivery_sensor_tick(dagster_instance)

    assert [r.run_key for r in first] == [r.run_key for r in second]
    assert len(launch_run_requests(dagster_instance, first + second, sensor_name=DELIVERY_SENSOR_NAME)) == 1


def test_a_restatement_reloads_the_month_and_keeps_azure(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url = sources_env["database_url"]
    write_aws_export(sources_env["aws"], OCT, [focus_table("public", OCT, 300, seed=1)])
    azure = [focus_table("public", OCT, 70, seed=2)]
    write_azure_run(sources_env["azure"], OCT, azure, submitted=datetime(2026, 11, 4, 8, tzinfo=UTC))
    assert len(tick_and_launch(dagster_instance)) == 1

    restated = [focus_table("public", OCT, 310, seed=9)]
    write_aws_export(sources_env["aws"], OCT, restated, execution="restatement")
    # AWS "create new" mode: only the latest manifest's files count, not the earlier execution's.
    run_ids = tick_and_launch(dagster_instance)

    assert len(run_ids) == 1
    run = dagster_instance.get_run_by_id(run_ids[0])
    assert run.status == DagsterRunStatus.SUCCESS
    assert run.tags[TAG_REQUESTED_BY] == "source:aws-payer"
    assert_same(loaded(url, "public", OCT), expected_of(*restated, *azure))
    assert tick_and_launch(dagster_instance) == []


def test_a_failed_delivery_is_not_retried_in_a_loop(
    sources_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url = sources_env["database_url"]
    write_aws_export(
        sources_env["aws"],
        OCT,
        [focus_table("public", OCT, 100, seed=1), focus_table("public", OCT, 100, seed=2)],
        missing=1,
    )
    run_ids = tick_and_launch(dagster_instance)
    assert len(run_ids) == 1
    assert dagster_instance.get_run_by_id(run_ids[0]).status == DagsterRunStatus.FAILURE
    assert query(url, "SELECT status, gate FROM finops_sources.loads") == [("FAILED", "incomplete_delivery")]

    # The same delivery asks for the same run key: the daemon does not launch it again.
    assert len(delivery_sensor_tick(dagster_instance)) == 1
    assert tick_and_launch(dagster_instance) == []


def test_without_a_sources_file_the_sensor_skips(
    finops_env: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    assert delivery_sensor_tick(dagster_instance) == []
