"""Real runs failing for one cause, for the failures tests (API and browser).

Real runs on a real Postgres-backed Dagster instance: Native's landing file is the same truncated
Parquet export in three months, and each month is loaded by its own run (one launched by a
source's delivery); a launch with a month that does not exist fails in the plan, another cause;
one run of Open succeeds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from finops_admin_plugin.readmodel import reindex
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.contract import JOB_NAME, PLAN_STEP
from finops_pipeline.periods import add_months, format_period
from tests.support import create_database, make_instance, run_batch

__all__ = ["FailuresWorld", "failures_world"]


@dataclass
class FailuresWorld:
    instance: DagsterInstance
    periods: list[str]  # current month first
    broken: list[str] = field(default_factory=list)  # runs of the broken export, oldest first
    plan_failed: str = ""
    ok: str = ""
    client: Any = None

    def add_broken_run(self) -> str:
        """The third run of the broken export (current month), after the read model was built."""
        run_id = run_batch(self.instance, periods=[self.periods[0]], domains=["native"]).run_id
        self.broken.append(run_id)
        return run_id


@contextmanager
def failures_world(pg_base_url: str, tmp: Path) -> Iterator[tuple[FailuresWorld, AdminSettings]]:
    """Two runs of the broken export, the plan failure and the successful run, reindexed; the
    environment points at the warehouse and landing while the context lasts."""
    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    now = datetime.now(UTC)
    current = now.date().replace(day=1)
    periods = [format_period(add_months(current, -i)) for i in range(3)]
    warehouse_url = create_database(pg_base_url, "wh_failures")
    ensure_schema(warehouse_url)
    landing = tmp / "landing"
    write_demo_landing(str(landing), months=3, now=now, scale=0.02, broken=("native", periods[2]))
    broken_file = landing / "native" / periods[2] / "export-000.parquet"
    for period in periods[:2]:
        shutil.copyfile(broken_file, landing / "native" / period / "export-000.parquet")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
        monkeypatch.setenv("FINOPS_LANDING_URI", str(landing))
        instance = make_instance(pg_base_url, tmp / "dagster_home")
        world = FailuresWorld(instance, periods)
        world.ok = run_batch(instance, periods=[periods[0]], domains=["open"]).run_id
        world.broken.append(run_batch(instance, periods=[periods[2]], domains=["native"]).run_id)
        world.broken.append(
            run_batch(
                instance,
                periods=[periods[1]],
                domains=["native"],
                tags={"finops/requested_by": "source:native-drop"},
            ).run_id
        )
        world.plan_failed = (
            build_definitions()
            .resolve_job_def(JOB_NAME)
            .execute_in_process(
                instance=instance,
                run_config={"ops": {PLAN_STEP: {"config": {"periods": ["2026-13"], "domains": ["open"]}}}},
                raise_on_error=False,
            )
            .run_id
        )
        settings = AdminSettings(
            FINOPS_DATABASE_URL=create_database(pg_base_url, "admin_failures"), FINOPS_AUTH_MODE="dev"
        )
        reindex(settings, instance)
        try:
            yield world, settings
        finally:
            instance.dispose()
