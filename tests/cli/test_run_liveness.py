"""No run is left running by a dead process, on a real stack.

One stack for the module: its own PostgreSQL (pgserver, stopped and restarted by one test),
the Dagster instance of `finops dev` (queued coordinator limited to ONE run at a time, so a
crashed run that held its slot would block the next one; FinopsRunLauncher; run monitoring)
and a `dagster-daemon`. Each test kills something in the middle of a run's COPY and checks:
the run ends FAILED within 2 minutes, the month's rows are exactly those before the run, no
step commits afterwards, and the next run is launched without waiting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from finops_pipeline.liveness import wait_gone
from finops_pipeline.periods import format_period
from tests.support import OwnPostgres, dagster_url, own_postgres, stop_group

pytestmark = pytest.mark.timeout(900)

BIN = Path(sys.executable).parent
TEMPLATES = Path(__file__).resolve().parents[2] / "finops_cli" / "templates"
PERIOD = format_period(datetime.now(UTC))
BIG_DOMAIN = "open"
COPIES = 40  # copies of the demo files: a COPY of ~240k rows, a few seconds long
FAIL_WITHIN = 120.0


@dataclass
class Stack:
    postgres: OwnPostgres
    warehouse_url: str
    env: dict[str, str]
    daemon: subprocess.Popen[bytes]
    home: Path

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(self.env["DAGSTER_HOME"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    root = tmp_path_factory.mktemp("liveness")
    with own_postgres(root) as postgres:
        warehouse_url = postgres.url("finops")
        ensure_schema(warehouse_url)

        landing = root / "landing"
        write_demo_landing(str(landing), months=1, now=datetime.now(UTC), scale=1.0)
        big = landing / BIG_DOMAIN / PERIOD
        originals = sorted(big.iterdir())
        for i in range(COPIES):
            for original in originals:
                shutil.copy(original, big / f"copy-{i:03d}-{original.name}")

        home = root / "dagster_home"
        home.mkdir()
        template = (TEMPLATES / "dagster.yaml").read_text()
        config = template.replace("max_concurrent_runs: 4", "max_concurrent_runs: 1")
        assert "max_concurrent_runs: 1" in config and "FinopsRunLauncher" in config
        (home / "dagster.yaml").write_text(config)
        (home / "workspace.yaml").write_text((TEMPLATES / "workspace.yaml").read_text())
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_url(postgres.url("dagster")),
            "FINOPS_DATABASE_URL": warehouse_url,
            "FINOPS_LANDING_URI": str(landing),
            "FINOPS_COMPUTE_LOGS_DIR": str(home / "storage"),
            "FINOPS_SCHEDULE_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
        log = open(root / "daemon.log", "ab")  # noqa: SIM115
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
                                  env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
        saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_PG_URL", "FINOPS_COMPUTE_LOGS_DIR")}
        os.environ.update({k: env[k] for k in saved})
        stack = Stack(postgres, warehouse_url, env, daemon, root)
        try:
            # The month already holds rows of an earlier load: the baseline every test compares with.
            _run_cli(stack, "--local", "--domain", BIG_DOMAIN, check=True)
            yield stack
        finally:
            stop_group(daemon)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            log.close()
            print((root / "daemon.log").read_text()[-3000:])


def _run_cli(stack: Stack, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / "finops"), "batch", "--period", PERIOD, *args], env=stack.env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _start_cli(stack: Stack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "finops"), "batch", "--period", PERIOD, "--domain", BIG_DOMAIN, *args],
                            env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip


def _checksum(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
            "FROM finops.releves r WHERE period = %s AND domain = %s",
            (PERIOD, BIG_DOMAIN),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _copy_in_progress(url: str, prefix: str = "%", timeout: float = 180.0) -> str:
    """Wait until a load of the big pair is inside its COPY; the run id prefix it names."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE %s "
                    "AND query ILIKE 'COPY%%' AND state = 'active'",
                    (f"finops-batch {prefix} {BIG_DOMAIN} {PERIOD}",),
                ).fetchone()
        except psycopg.OperationalError:
            row = None
        if row:
            return str(row[0]).split()[1]
        time.sleep(0.05)
    pytest.fail("no load reached its COPY")


def _run_of(instance: DagsterInstance, prefix: str) -> str:
    from dagster import RunsFilter

    for record in instance.get_run_records(RunsFilter(job_name="finops_batch"), limit=20):
        if record.dagster_run.run_id.startswith(prefix):
            return record.dagster_run.run_id
    pytest.fail(f"no finops_batch run starts with {prefix}")


def _started_run(stack: Stack, timeout: float = 120.0) -> tuple[str, int]:
    """The STARTED finops_batch run and its worker's pid, once the worker has reported it."""
    from dagster import RunsFilter

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.instance() as instance:
            for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=5):
                pids = _pids(instance, record.dagster_run.run_id, "Started process for run")
                if pids:
                    return record.dagster_run.run_id, pids[-1]
        time.sleep(0.2)
    pytest.fail("no run started")


def _pids(instance: DagsterInstance, run_id: str, prefix: str) -> list[int]:
    pids = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        if entry.message.startswith(prefix) and data is not None and "pid" in data.metadata:
            pids.append(int(str(data.metadata["pid"].value)))
    return pids


def _wait_status(stack: Stack, run_id: str, timeout: float) -> tuple[DagsterRunStatus, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with stack.instance() as instance:
                run = instance.get_run_by_id(run_id)
        except Exception:  # the database may be restarting
            run = None
        if run is not None and run.is_finished:
            return run.status, time.monotonic() - started
        time.sleep(1)
    return DagsterRunStatus.STARTED, time.monotonic() - started


def _assert_failed_cleanly(
    stack: Stack, run_id: str, before: tuple[int, str], since: float
) -> dict[str, Any]:
    status, _ = _wait_status(stack, run_id, FAIL_WITHIN)
    elapsed = time.monotonic() - since
    assert status == DagsterRunStatus.FAILURE, f"run {run_id} is {status} {elapsed:.0f}s after the kill"
    assert elapsed <= FAIL_WITHIN, elapsed
    with stack.instance() as instance:
        step_pids = _pids(instance, run_id, "Executing step") + _pids(
            instance, run_id, "Launching subprocess"
        )
        failure = [
            e.message
            for e in instance.all_logs(run_id)
            if any(word in e.message for word in ("is gone", "terminated", "exited", "unexpectedly"))
        ]
    assert all(wait_gone(pid, 10) for pid in step_pids), f"step processes outlived their run: {step_pids}"
    assert _checksum(stack.warehouse_url) == before
    time.sleep(5)  # nothing commits afterwards either
    assert _checksum(stack.warehouse_url) == before
    with psycopg.connect(stack.warehouse_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"finops-batch {run_id[:8]}%",),
        ).fetchone()
    assert left == (0,)
    with stack.instance() as instance:
        everything = [f"{e.dagster_event_type}: {e.message}" for e in instance.all_logs(run_id)][-8:]
    assert failure, everything
    return {"seconds": round(elapsed, 1), "message": " ".join(failure)[:160]}


def _error_of(entry: Any) -> str:
    event = entry.dagster_event
    data = event.engine_event_data if event is not None and event.event_type_value == "ENGINE_EVENT" else None
    error = getattr(data, "error", None)
    return error.to_string() if error is not None else ""


def _next_run_launches(stack: Stack) -> float:
    """With one run slot, a small run submitted now starts at once: the crashed run holds nothing."""
    started = time.monotonic()
    done = _run_cli(stack, "--domain", "native")
    if done.returncode != 0:
        run_id = done.stdout.split("submitted run ")[1].split(";")[0]
        with stack.instance() as instance:
            errors = [
                f"{e.dagster_event_type}: {e.message} {_error_of(e)}" for e in instance.all_logs(run_id)
            ][-10:]
        pytest.fail(done.stdout + done.stderr + "\n".join(errors))
    assert "SUCCESS" in done.stdout
    return time.monotonic() - started


def test_killed_run_worker_fails_its_run(stack: Stack) -> None:
    before = _checksum(stack.warehouse_url)
    follower = _start_cli(stack)
    run_id, worker = _started_run(stack)
    _copy_in_progress(stack.warehouse_url, run_id[:8])
    os.kill(worker, signal.SIGKILL)
    killed = time.monotonic()
    result = _assert_failed_cleanly(stack, run_id, before, killed)
    # The code server that spawned the worker sees it die first; FinopsRunLauncher's health
    # check is the backstop when that server is gone too (see the --local test).
    assert "was terminated by signal 9" in result["message"] or "the run worker" in result["message"], result
    out, _ = follower.communicate(timeout=60)
    assert follower.returncode == 1 and "FAILURE" in out, out
    result["next_run_seconds"] = round(_next_run_launches(stack), 1)
    print(f"run worker killed: {json.dumps(result)}")


def test_killed_local_finops_batch_fails_its_run(stack: Stack) -> None:
    before = _checksum(stack.warehouse_url)
    cli = _start_cli(stack, "--local")
    prefix = _copy_in_progress(stack.warehouse_url)
    with stack.instance() as instance:
        run_id = _run_of(instance, prefix)
    os.killpg(cli.pid, signal.SIGKILL)
    killed = time.monotonic()
    cli.wait(10)
    result = _assert_failed_cleanly(stack, run_id, before, killed)
    assert "the process executing the run" in result["message"], result
    result["next_run_seconds"] = round(_next_run_launches(stack), 1)
    print(f"finops batch --local killed: {json.dumps(result)}")


def test_killed_follower_leaves_the_run_going(stack: Stack) -> None:
    follower = _start_cli(stack)
    prefix = _copy_in_progress(stack.warehouse_url)
    os.killpg(follower.pid, signal.SIGKILL)  # the terminal closes: only the following stops
    with stack.instance() as instance:
        run_id = _run_of(instance, prefix)
    status, _ = _wait_status(stack, run_id, 180)
    assert status == DagsterRunStatus.SUCCESS
    with psycopg.connect(stack.warehouse_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT dagster_run_id FROM finops.releves WHERE period = %s AND domain = %s",
            (PERIOD, BIG_DOMAIN),
        ).fetchall()
    assert owners == [(run_id,)]


def test_postgres_outage_during_a_run_fails_it(stack: Stack) -> None:
    before = _checksum(stack.warehouse_url)
    follower = _start_cli(stack)
    prefix = _copy_in_progress(stack.warehouse_url)
    with stack.instance() as instance:
        run_id = _run_of(instance, prefix)
    stack.postgres.stop("immediate")
    down = time.monotonic()
    try:
        time.sleep(60)
    finally:
        stack.postgres.start()
    back = time.monotonic()
    result = _assert_failed_cleanly(stack, run_id, before, back)
    result["seconds_from_outage_start"] = round(time.monotonic() - down, 1)
    follower.kill()
    follower.wait(10)
    result["next_run_seconds"] = round(_next_run_launches(stack), 1)
    print(f"PostgreSQL down 60 s: {json.dumps(result)}")
