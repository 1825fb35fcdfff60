"""Helpers shared by the tests: real PostgreSQL, real Dagster instances, real runs."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, why: str) -> None:
    """Skip locally when a component is missing, but fail in CI: a skip there hides a broken install."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required test component missing in CI: {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url_for(base_url: str, name: str) -> str:
    """`base_url` (pgserver's, on a unix socket) pointed at another database."""
    return base_url.replace("/postgres?", f"/{name}?", 1)


def create_database(base_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url_for(base_url, name)


def dagster_url(url: str) -> str:
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which dagster-postgres does not support.
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def write_dagster_yaml(home: Path, storage_url: str, *, compute_logs: dict[str, Any] | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        "storage:",
        "  postgres:",
        f'    postgres_url: "{dagster_url(storage_url)}"',
        "telemetry:",
        "  enabled: false",
    ]
    if compute_logs:
        import yaml

        lines.append(yaml.safe_dump({"compute_logs": compute_logs}).rstrip())
    (home / "dagster.yaml").write_text("\n".join(lines) + "\n")


def make_instance(base_url: str, home: Path, **kwargs: Any) -> DagsterInstance:
    storage_url = create_database(base_url, "dagster")
    write_dagster_yaml(home, storage_url, **kwargs)
    return DagsterInstance.from_config(str(home))


def run_batch(
    instance: DagsterInstance,
    *,
    periods: list[str],
    domains: list[str],
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """A real finops_batch run, in process, on `instance` (env must point at the warehouse)."""
    from finops_pipeline.constants import PLAN_STEP, TRIGGER_MANUAL
    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.tags import batch_tags

    job = build_definitions().resolve_job_def("finops_batch")
    run_tags = batch_tags(trigger=TRIGGER_MANUAL, periods=periods, domains=domains, requested_by="user:default/tester")
    run_tags.update(tags or {})
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {PLAN_STEP: {"config": {"periods": periods, "domains": domains}}}},
        tags=run_tags,
        raise_on_error=False,
    )
