"""One realistic history of FinOps batch runs on a real Postgres-backed Dagster instance.

Every run is a real one (in-process execution of `finops_batch`, or a run
record created through public `DagsterInstance` methods for queued/canceled):

  ok_1..ok_3   open, [P0], MANUAL by user:default/tester          SUCCESS
  cron         all domains, [P0, P1], tags of the daily schedule  SUCCESS
  reprocess    public, [P1], launched by the reprocess sensor      SUCCESS
  partial      open + native, [P0, P2]: native P2 file is broken   FAILED (open loaded, native P0 loaded)
  plan_failed  open + public, period 2026-13, no finops tags (launchpad)  FAILED in plan_batch
  outlier      open, [P0] after its landing files grew 4x           SUCCESS, anomalous volumes
  queued       private, [P0], created, not launched (NOT_STARTED)   QUEUED
  canceled     private, [P1], canceled while queued                CANCELED
  running      open, [P1]: blocked on the (P1, open) load lock      RUNNING until `release_running()`
  other_job    a Dagster job that is not the FinOps batch

P0 is the current month (of the machine's clock), P1 the previous one, P2 the one before.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus, job, op

from finops_pipeline.contract import (
    DOMAINS,
    JOB_NAME,
    PLAN_STEP,
    SCHEDULE_NAME,
    TRIGGER_CRON,
    TRIGGER_MANUAL,
    batch_run_config,
    batch_tags,
)
from finops_pipeline.periods import add_months, format_period, parse_period
from tests.support import create_database, make_instance, run_batch

__all__ = ["History", "build_history"]

REPROCESS_ID = "rp-0001"
SENSOR = "finops_reprocess_sensor"


@op
def hello() -> int:
    return 1


@job(name="not_finops")
def not_finops() -> None:
    hello()


@dataclass
class History:
    instance: DagsterInstance
    warehouse_url: str
    readmodel_url: str
    landing: Path
    periods: list[str]  # P0, P1, P2
    manifest: dict[str, Any]
    runs: dict[str, str] = field(default_factory=dict)  # name -> run id
    order: list[str] = field(default_factory=list)  # FinOps run names in creation order
    _lock_conn: psycopg.Connection | None = None
    _running_thread: threading.Thread | None = None
    _running_result: dict[str, Any] = field(default_factory=dict)

    @property
    def finops_ids(self) -> list[str]:
        return [self.runs[name] for name in self.order]

    def name_of(self, run_id: str) -> str:
        return next(name for name, rid in self.runs.items() if rid == run_id)

    def launch_running(self) -> str:
        """Start a real run in a thread; its load of (P1, open) waits on a lock this history holds."""
        from finops_pipeline.warehouse.loads import LOAD_LOCK_CLASS

        period = self.periods[1]
        self._lock_conn = psycopg.connect(self.warehouse_url, autocommit=True)
        self._lock_conn.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))", (LOAD_LOCK_CLASS, f"{period}:open")
        )
        from finops_pipeline.definitions import build_definitions

        job_def = build_definitions().resolve_job_def(JOB_NAME)
        tags = batch_tags(
            trigger=TRIGGER_MANUAL, periods=[period], domains=["open"], requested_by="user:default/tester"
        )

        def execute() -> None:
            result = job_def.execute_in_process(
                instance=self.instance,
                run_config={
                    "ops": {PLAN_STEP: {"config": {"periods": [period], "domains": ["open"]}}},
                    "resources": {
                        "warehouse": {
                            "config": {"database_url": self.warehouse_url, "lock_timeout_seconds": 900}
                        }
                    },
                },
                tags=tags,
                raise_on_error=False,
            )
            self._running_result["run_id"] = result.run_id
            self._running_result["success"] = result.success

        self._running_thread = threading.Thread(target=execute, name="running-batch", daemon=True)
        self._running_thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not self._running_thread.is_alive():
                raise AssertionError(f"the blocked run ended early: {self._running_result}")
            for record in self.instance.get_run_records():
                run = record.dagster_run
                if (
                    run.job_name == JOB_NAME
                    and run.tags.get("finops/periods") == period
                    and run.tags.get("finops/domains") == "open"
                    and run.status == DagsterRunStatus.STARTED
                ):
                    logs = self.instance.all_logs(run.run_id)
                    if any(
                        e.dagster_event
                        and e.dagster_event.step_key == "load_open"
                        and e.dagster_event.event_type_value == "STEP_START"
                        for e in logs
                    ):
                        return run.run_id
            time.sleep(0.1)
        raise AssertionError("the blocked run did not reach load_open within 60 s")

    def release_running(self, timeout: float = 60) -> bool:
        """Let the running run finish; True when it succeeded."""
        if self._lock_conn is not None:
            self._lock_conn.close()
            self._lock_conn = None
        if self._running_thread is not None:
            self._running_thread.join(timeout)
            self._running_thread = None
        return bool(self._running_result.get("success"))

    def add_queued(self, name: str, *, domains: list[str], periods: list[str]) -> str:
        """A run created and not launched yet (Dagster NOT_STARTED, shown QUEUED).

        Dagster refuses a QUEUED run without a code location origin, which only a
        workspace gives; NOT_STARTED maps to the same admin status.
        """
        from finops_pipeline.definitions import build_definitions

        job_def = build_definitions().resolve_job_def(JOB_NAME)
        run = self.instance.create_run_for_job(
            job_def=job_def,
            run_config=batch_run_config(periods, domains),
            tags=batch_tags(
                trigger=TRIGGER_MANUAL, periods=periods, domains=domains, requested_by="user:default/queuer"
            ),
            status=DagsterRunStatus.NOT_STARTED,
        )
        self.runs[name] = run.run_id
        self.order.append(name)
        return run.run_id

    def close(self) -> None:
        self.release_running(timeout=5)
        self.instance.dispose()


def _grow_landing(root: Path, domain: str, period: str, factor: int) -> None:
    """Replace a domain-month's landing files with `factor` times as many rows."""
    from finops_pipeline.demo_data import DEMO_ROWS_PER_MONTH, generate_focus_table, table_to_csv

    folder = root / domain / period
    for old in folder.iterdir():
        old.unlink()
    rows = max(1, int(DEMO_ROWS_PER_MONTH[domain] * 0.05)) * factor
    table = generate_focus_table(domain, period, rows, seed=99)
    (folder / "export-000.csv").write_bytes(table_to_csv(table))


def build_history(pg_base_url: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> History:
    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    now = datetime.now(UTC)
    p0 = format_period(parse_period(f"{now.year:04d}-{now.month:02d}"))
    p1 = format_period(add_months(parse_period(p0), -1))
    p2 = format_period(add_months(parse_period(p0), -2))
    warehouse_url = create_database(pg_base_url, "wh")
    ensure_schema(warehouse_url)
    landing = tmp / "landing"
    manifest = write_demo_landing(str(landing), months=3, now=now, scale=0.05, broken=("native", p2))
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("FINOPS_LANDING_URI", str(landing))
    instance = make_instance(pg_base_url, tmp / "dagster_home")
    history = History(
        instance=instance,
        warehouse_url=warehouse_url,
        readmodel_url=create_database(pg_base_url, "admin"),
        landing=landing,
        periods=[p0, p1, p2],
        manifest=manifest,
    )

    def batch(name: str, periods: list[str], domains: list[str], tags: dict[str, str] | None = None) -> None:
        result = run_batch(instance, periods=periods, domains=domains, tags=tags)
        history.runs[name] = result.run_id
        history.order.append(name)

    for i in (1, 2, 3):
        batch(f"ok_{i}", [p0], ["open"])
    batch(
        "cron",
        [p0, p1],
        list(DOMAINS),
        {
            "finops/trigger": TRIGGER_CRON,
            "dagster/schedule_name": SCHEDULE_NAME,
            "finops/requested_by": f"schedule:{SCHEDULE_NAME}",
        },
    )
    batch(
        "reprocess",
        [p1],
        ["public"],
        {
            "finops/reprocess_request_id": REPROCESS_ID,
            "dagster/sensor_name": SENSOR,
            "finops/requested_by": "user:default/jdoe",
            "finops/reason": "late invoice from the public cloud",
        },
    )
    batch("partial", [p0, p2], ["open", "native"])
    # As launched from the Dagster launchpad: no finops/* tags, a bad period in the config.
    from finops_pipeline.definitions import build_definitions

    failed = (
        build_definitions()
        .resolve_job_def(JOB_NAME)
        .execute_in_process(
            instance=instance,
            run_config={
                "ops": {PLAN_STEP: {"config": {"periods": ["2026-13"], "domains": ["open", "public"]}}}
            },
            raise_on_error=False,
        )
    )
    history.runs["plan_failed"] = failed.run_id
    history.order.append("plan_failed")
    _grow_landing(landing, "open", p0, 4)
    batch("outlier", [p0], ["open"])
    history.add_queued("queued", domains=["private"], periods=[p0])
    canceled_id = history.add_queued("canceled", domains=["private"], periods=[p1])
    canceled = instance.get_run_by_id(canceled_id)
    assert canceled is not None
    instance.report_run_canceled(canceled, message="canceled from the queue by user:default/tester")
    history.runs["running"] = history.launch_running()
    history.order.append("running")
    other = not_finops.execute_in_process(instance=instance)
    history.runs["other_job"] = other.run_id
    return history
