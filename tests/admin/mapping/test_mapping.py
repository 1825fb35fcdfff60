"""The pure mapping, checked on real runs against what happened (Dagster, warehouse, landing files)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from dagster import DagsterRunStatus

from finops_admin_plugin.mapping.money import add_money, metadata_money
from finops_admin_plugin.mapping.runs import launched_by, map_run_detail, one_line, run_trigger, summary_of
from finops_admin_plugin.mapping.status import map_run_status
from finops_admin_plugin.models import RunDetailResponse
from finops_pipeline import __version__
from finops_pipeline.contract import DELIVERY_SENSOR_NAME, DOMAINS, MATERIALIZED_VIEWS, SCHEDULE_NAME
from tests.history import REPROCESS_ID, History

EXPECTED_STATUS = {
    "QUEUED": "QUEUED",
    "NOT_STARTED": "QUEUED",
    "STARTING": "RUNNING",
    "STARTED": "RUNNING",
    "CANCELING": "RUNNING",
    "SUCCESS": "SUCCESS",
    "FAILURE": "FAILED",
    "CANCELED": "CANCELED",
}


def test_every_dagster_status_maps_and_unknown_degrades(caplog: pytest.LogCaptureFixture) -> None:
    for member in DagsterRunStatus:
        assert map_run_status(member) == EXPECTED_STATUS.get(member.value, "UNKNOWN"), member
    # Dagster statuses the admin contract does not name (MANAGED, SUSPENDED today) degrade.
    assert {m.value for m in DagsterRunStatus} - set(EXPECTED_STATUS) == {"MANAGED", "SUSPENDED"}
    caplog.set_level(logging.WARNING, logger="finops_admin_plugin.mapping.status")
    assert map_run_status("HIBERNATING") == "UNKNOWN"
    assert map_run_status("HIBERNATING") == "UNKNOWN"
    assert [r.getMessage() for r in caplog.records].count(
        "Dagster run status 'HIBERNATING' has no admin equivalent; shown as UNKNOWN"
    ) == 1


def test_one_line_keeps_the_cause_not_the_trace() -> None:
    text = (
        "dagster._core.definitions.events.Failure: Native: 1 of 2 period(s) failed.\n\n"
        'Stack Trace:\n  File "x.py", line 1\n'
    )
    assert one_line(text) == "Native: 1 of 2 period(s) failed."
    assert one_line("psycopg.errors.UndefinedTable: relation x does not exist\nLINE 1") == (
        "UndefinedTable: relation x does not exist"
    )
    assert one_line("boom: with: colons") == "boom: with: colons"
    assert one_line("x" * 1000) == "x" * 299 + "…"
    assert one_line("\n  \n") is None


@pytest.fixture(scope="module")
def details(finops_history: History) -> dict[str, RunDetailResponse]:
    instance = finops_history.instance
    mapped = {}
    for name in finops_history.order:
        run_id = finops_history.runs[name]
        record = instance.get_run_record_by_id(run_id)
        assert record is not None
        mapped[name] = map_run_detail(record, instance.all_logs(run_id))
    return mapped


def _domain_statuses(**selected: str) -> dict[str, str]:
    return {d: selected.get(d, "NOT_SELECTED") for d in DOMAINS}


def test_run_level_fields(finops_history: History, details: dict[str, RunDetailResponse]) -> None:
    p0, p1, p2 = finops_history.periods
    expected: dict[str, dict[str, Any]] = {
        "ok_1": dict(status="SUCCESS", dagster="SUCCESS", trigger="MANUAL", by="user:default/tester",
                     periods=[(p0, "CURRENT")], blocks=_domain_statuses(open="SUCCESS"), errors=0),
        "cron": dict(status="SUCCESS", dagster="SUCCESS", trigger="CRON", by=f"schedule:{SCHEDULE_NAME}",
                     periods=[(p0, "CURRENT"), (p1, "PREVIOUS")],
                     blocks={d: "SUCCESS" for d in DOMAINS}, errors=0),
        "reprocess": dict(status="SUCCESS", dagster="SUCCESS", trigger="MANUAL", by="user:default/jdoe",
                          periods=[(p1, "PREVIOUS")], blocks=_domain_statuses(public="SUCCESS"), errors=0),
        "partial": dict(status="FAILED", dagster="FAILURE", trigger="MANUAL", by="user:default/tester",
                        periods=[(p0, "CURRENT"), (p2, "OTHER")],
                        blocks=_domain_statuses(open="SUCCESS", native="FAILED"), errors=1),
        "plan_failed": dict(status="FAILED", dagster="FAILURE", trigger="MANUAL", by=None, periods=[],
                            blocks=_domain_statuses(open="SKIPPED", public="SKIPPED"), errors=1),
        "queued": dict(status="QUEUED", dagster="NOT_STARTED", trigger="MANUAL", by="user:default/queuer",
                       periods=[(p0, "CURRENT")], blocks=_domain_statuses(private="PENDING"), errors=0),
        "canceled": dict(status="CANCELED", dagster="CANCELED", trigger="MANUAL", by="user:default/queuer",
                         periods=[(p1, "PREVIOUS")], blocks=_domain_statuses(private="SKIPPED"), errors=0),
        "running": dict(status="RUNNING", dagster="STARTED", trigger="MANUAL", by="user:default/tester",
                        periods=[(p1, "PREVIOUS")], blocks=_domain_statuses(open="RUNNING"), errors=0),
    }  # fmt: skip
    for name, want in expected.items():
        run = details[name]
        assert run.run_id == finops_history.runs[name]
        assert (run.status, run.dagster_status, run.trigger, run.launched_by) == (
            want["status"],
            want["dagster"],
            want["trigger"],
            want["by"],
        ), name
        assert [(p.period, p.role) for p in run.periods] == want["periods"], name
        assert run.domain_statuses == want["blocks"], name
        assert [b.status for b in run.blocks] == [want["blocks"][d] for d in DOMAINS], name
        assert run.domains == [d for d in DOMAINS if want["blocks"][d] != "NOT_SELECTED"], name
        assert run.errors.count == want["errors"], name
        assert (run.errors.message is None) == (want["errors"] == 0), name
        # A launchpad run that failed in plan_batch never got its finops/* tags.
        assert run.version == (None if name == "plan_failed" else __version__), name
    reprocess = details["reprocess"]
    assert reprocess.reprocess_request_id == REPROCESS_ID
    assert reprocess.reason == "late invoice from the public cloud"
    assert details["ok_1"].reprocess_request_id is None


def test_times_and_durations(finops_history: History, details: dict[str, RunDetailResponse]) -> None:
    instance = finops_history.instance
    for name, run in details.items():
        record = instance.get_run_record_by_id(run.run_id)
        assert record is not None
        assert run.created_time == record.create_timestamp
        if name in ("queued", "canceled"):
            assert run.start_time is None and run.duration_seconds is None
            assert (run.end_time is not None) == (name == "canceled")
            continue
        assert run.start_time is not None and record.start_time is not None
        assert abs(run.start_time.timestamp() - record.start_time) < 1e-3
        if name == "running":
            assert run.end_time is None and run.duration_seconds is None
            block = run.blocks[0]
            assert block.status == "RUNNING" and block.start_time and block.end_time is None
            assert block.attempts == 1
            continue
        assert run.end_time is not None and record.end_time is not None
        assert run.duration_seconds == pytest.approx(record.end_time - record.start_time, abs=2e-3)
        for block in run.blocks:
            if block.status in ("SUCCESS", "FAILED"):
                assert block.start_time and block.end_time and block.duration_seconds is not None
                assert run.start_time <= block.start_time <= block.end_time <= run.end_time
                assert block.duration_seconds == pytest.approx(
                    (block.end_time - block.start_time).total_seconds(), abs=2e-3
                )
                assert block.attempts == 1
            else:
                assert block.start_time is None and block.duration_seconds is None and block.attempts == 0


def test_volumes_match_the_landing_files_and_the_warehouse(
    finops_history: History, details: dict[str, RunDetailResponse]
) -> None:
    p0, p2 = finops_history.periods[0], finops_history.periods[2]
    rows = dict(finops_history.manifest["rows"])
    loads: dict[tuple[str, str], list[tuple[str, Any]]] = {}
    for name in finops_history.order:
        run = details[name]
        for block in run.blocks:
            for item in block.periods:
                if (block.domain, item.period) == ("native", p2):  # the broken month: read nothing
                    assert (item.rows_read, item.releves_inserted, item.releves_deleted) == (0, 0, 0)
                    continue
                read = rows[f"{block.domain}/{item.period}"]
                if name == "outlier" and (block.domain, item.period) == ("open", p0):
                    read *= 4  # its landing files grew before this run
                assert item.rows_read == read, (name, block.domain, item.period)
                assert item.releves_inserted + item.releves_rejected == item.rows_read
                loads.setdefault((block.domain, item.period), []).append((run.run_id, item))
            if block.periods:
                assert block.volumes.rows_read == sum(p.rows_read for p in block.periods)
                assert block.volumes.releves_inserted == sum(p.releves_inserted for p in block.periods)
                # Exact per currency: the block's cost is its months' costs added currency by currency.
                assert block.volumes.billed_cost == add_money(*(p.billed_cost for p in block.periods))
                assert all(isinstance(c.amount, str) for c in block.volumes.billed_cost)
                assert sum(block.volumes.rejected_by_reason.values()) == block.volumes.releves_rejected
        assert run.volumes.releves_inserted == sum(b.volumes.releves_inserted or 0 for b in run.blocks)
        assert run.volumes.releves_deleted == sum(b.volumes.releves_deleted or 0 for b in run.blocks)
        assert run.aggregates.releves_inserted == run.volumes.releves_inserted
        assert run.aggregates.releves_deleted == run.volumes.releves_deleted
        assert run.volumes.billed_cost == add_money(*(b.volumes.billed_cost for b in run.blocks))
        assert run.aggregates.billed_cost == run.volumes.billed_cost
    # Each load replaced the previous one of its (domain, month); the last one is what the warehouse holds.
    with psycopg.connect(finops_history.warehouse_url) as conn:
        for (domain, period), sequence in loads.items():
            previous = 0
            for _, item in sequence:
                assert item.releves_deleted == previous, (domain, period)
                previous = item.releves_inserted
            last_run, last = sequence[-1]
            count = conn.execute(
                "SELECT count(*) FROM finops.releves "
                "WHERE domain = %s AND period = %s AND dagster_run_id = %s",
                (domain, period, last_run),
            ).fetchone()
            assert count is not None and count[0] == last.releves_inserted, (domain, period)
    # The failed block reports what each month did (Failure metadata): one loaded, one kept.
    native = next(b for b in details["partial"].blocks if b.domain == "native")
    assert [p.period for p in native.periods] == [p0, p2]


def test_errors_are_one_line_causes(finops_history: History, details: dict[str, RunDetailResponse]) -> None:
    p2 = finops_history.periods[2]
    partial = details["partial"]
    message = partial.errors.message or ""
    assert message.startswith(
        f"Native: 1 of 2 period(s) failed, keeping their previous rows. {p2}: quality gate "
        f"unreadable_file: native/{p2}/export-000.parquet: not a readable Parquet file"
    )
    assert "\n" not in message and "Stack Trace" not in message and "dagster._core" not in message
    native = next(b for b in partial.blocks if b.domain == "native")
    assert [(e.kind, e.message) for e in native.errors] == [("FAILURE", message)]
    plan_failed = details["plan_failed"]
    assert plan_failed.errors.message == "invalid batch configuration: period must be YYYY-MM, got '2026-13'"
    for block in plan_failed.blocks:
        if block.status == "SKIPPED":
            assert [(e.kind, e.message) for e in block.errors] == [("UPSTREAM", "not run: plan_batch failed")]
    assert details["canceled"].errors.count == 0


def test_materialized_view_refreshes(finops_history: History, details: dict[str, RunDetailResponse]) -> None:
    for name in ("ok_1", "cron", "reprocess", "outlier"):
        run = details[name]
        assert [mv.name for mv in run.aggregates.mvs] == list(MATERIALIZED_VIEWS)
        assert all(
            mv.status == "SUCCESS" and mv.refreshed_at and mv.row_count is not None
            for mv in run.aggregates.mvs
        )
        assert all(run.start_time <= mv.refreshed_at <= run.end_time for mv in run.aggregates.mvs)  # type: ignore[operator]
        assert run.volumes.mvs_refreshed == len(MATERIALIZED_VIEWS)
    # The outlier run did the last refresh so far: its row counts are the views' current sizes.
    with psycopg.connect(finops_history.warehouse_url) as conn:
        for mv in details["outlier"].aggregates.mvs:
            row = conn.execute(f"SELECT count(*) FROM finops.{mv.name}").fetchone()
            assert row is not None and mv.row_count == row[0], mv.name
    for name, status in (("partial", "SKIPPED"), ("plan_failed", "SKIPPED"), ("canceled", "SKIPPED"),
                         ("queued", "PENDING"), ("running", "PENDING")):  # fmt: skip
        run = details[name]
        assert {mv.status for mv in run.aggregates.mvs} == {status}, name
        assert run.volumes.mvs_refreshed == 0


def test_summary_is_the_detail_with_plain_periods(details: dict[str, RunDetailResponse]) -> None:
    for run in details.values():
        summary = summary_of(run)
        assert summary.periods == [p.period for p in run.periods]
        dumped = summary.model_dump(by_alias=True, mode="json")
        detail = run.model_dump(by_alias=True, mode="json")
        for key, value in dumped.items():
            if key not in ("periods", "links"):
                assert detail[key] == value, key


def test_created_and_start_time_are_close(details: dict[str, RunDetailResponse]) -> None:
    # A run's role reference is its start; an in-process run starts right after it is created.
    run = details["ok_1"]
    assert run.start_time is not None
    assert timedelta(0) <= run.start_time - run.created_time < timedelta(seconds=30)


@pytest.mark.parametrize("recorded", ["1461.7333740648778", "0", 21635.4, None, {"USD": 12.5}])
def test_a_cost_recorded_over_every_currency_is_not_guessed(recorded: Any) -> None:
    # Runs loaded before costs were kept per currency carry one figure: it cannot be split.
    assert metadata_money(recorded) == []


def test_costs_are_listed_largest_first_and_added_per_currency() -> None:
    block = metadata_money({"EUR": "100.00", "USD": "1361.73337406487786", "CHF": "100.00"})
    assert [(c.currency, c.amount) for c in block] == [
        ("USD", "1361.73337406487786"),
        ("CHF", "100.00"),
        ("EUR", "100.00"),
    ]
    other = metadata_money({"EUR": "0.5", "JPY": "7"})
    assert [(c.currency, c.amount) for c in add_money(block, other)] == [
        ("USD", "1361.73337406487786"),
        ("EUR", "100.50"),
        ("CHF", "100.00"),
        ("JPY", "7"),
    ]


@pytest.mark.parametrize(
    ("tags", "trigger"),
    [
        ({"finops/trigger": "DELIVERY", "finops/requested_by": "source:aws-payer"}, "DELIVERY"),
        ({"finops/trigger": "delivery"}, "DELIVERY"),
        # Launched by the delivery sensor before the tag was written: the sensor's name says it.
        ({"dagster/sensor_name": DELIVERY_SENSOR_NAME}, "DELIVERY"),
        ({"dagster/sensor_name": "finops_reprocess_sensor"}, "MANUAL"),
        ({"finops/trigger": "CRON"}, "CRON"),
        ({"finops/trigger": "SOMETHING_NEW"}, "MANUAL"),
    ],
)
def test_trigger_from_tags(tags: dict[str, str], trigger: str) -> None:
    assert run_trigger(tags) == trigger


def test_a_delivery_run_is_launched_by_its_source() -> None:
    tags = {
        "finops/trigger": "DELIVERY",
        "finops/requested_by": "source:aws-payer",
        "dagster/sensor_name": DELIVERY_SENSOR_NAME,
    }
    assert launched_by(tags) == "source:aws-payer"


def test_each_source_delivery_of_a_period_is_shown_and_a_bad_one_alone_is_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from finops_admin_plugin.mapping.runs import _quality
    from finops_pipeline.landing.quality import PeriodQuality

    metadata = PeriodQuality("2026-10", files=3, rows_read=10, rows_loaded=10).as_metadata()
    # Older runs (and the landing layout) carry no `deliveries`: an empty list.
    before = _quality("2026-10", metadata)
    assert before is not None and before.deliveries == []
    metadata["deliveries"] = [
        {"source": "aws-payer", "delivery_id": '"3f2a"', "files": 2, "bytes": 2049},
        {"source": "azure-ea", "delivery_id": "run:20261103", "files": 1, "bytes": 512},
        {"source": "broken", "files": "many"},
    ]
    caplog.set_level(logging.WARNING, logger="finops_admin_plugin.mapping.runs")
    quality = _quality("2026-10", metadata)
    assert quality is not None and quality.rows_loaded == 10
    assert [d.model_dump(by_alias=True) for d in quality.deliveries] == [
        {"source": "aws-payer", "deliveryId": '"3f2a"', "files": 2, "bytes": 2049},
        {"source": "azure-ea", "deliveryId": "run:20261103", "files": 1, "bytes": 512},
    ]
    assert "a delivery in the load quality of period 2026-10 has an unknown shape" in caplog.text
