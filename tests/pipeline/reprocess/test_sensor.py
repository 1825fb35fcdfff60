"""Reprocess in the code location: the sensor launches each request once, or ends it with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import (
    DagsterRunStatus,
    Definitions,
    job,
    op,
)
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_pipeline.contract import (
    JOB_NAME,
    REPROCESS_SENSOR_NAME,
    TAG_REPROCESS_REQUEST_ID,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
)
from finops_pipeline.reprocess.queue import ReprocessQueue
from finops_pipeline.reprocess.rules import CheckedRequest
from finops_pipeline.sensors import build_reprocess_sensor
from finops_pipeline.warehouse.loads import LOAD_LOCK_CLASS
from tests.reprocess_world import (
    ALICE,
    BOB,
    ERIN,
    GOOD,
    POST,
    Token,
    World,
    settings_for,
)
from tests.support import (
    RUN_KEY_TAG,
    SENSOR_NAME_TAG,
    counts_by_pair,
    create_database,
    make_instance,
    query,
    require,
    run_ids_by_pair,
    stop_group,
)

# --- what cannot be launched ---------------------------------------------------------------------------


def _store_directly(
    world: World, periods: list[str], domains: list[str], reason: str, who: Token = ERIN
) -> str:
    """A request written to the table without the API's checks (an older version, or by hand)."""
    store = ReprocessQueue(world.database_url)
    checked = CheckedRequest(periods=periods, domains=domains, reason=reason)
    return store.submit(checked, requested_by=who.subject).request.request_id


def test_a_stored_request_breaking_the_rules_ends_rejected(world: World) -> None:
    bad_month = _store_directly(world, ["2026-13"], ["open"], "typo in the month")
    bad_domain = _store_directly(world, ["2026-10"], ["azure"], "unknown domain")
    assert world.tick() == []
    for request_id, words in ((bad_month, "periods[0]"), (bad_domain, "domains[0]")):
        request = world.get(request_id)
        assert request["state"] == "REJECTED"
        assert words in request["message"] and "file a new request" in request["message"]
        assert world.runs_of(request_id) == []


@op(name="plan_batch", config_schema={"window": str})
def _plan_with_another_config(context) -> None:  # type: ignore[no-untyped-def]  # Dagster reads the hint
    context.log.info("never runs")


@job(name=JOB_NAME)
def _broken_batch() -> None:
    _plan_with_another_config()


def test_a_request_the_job_cannot_take_ends_failed(world: World) -> None:
    request_id = world.post({**GOOD, "reason": "job broken"}, who=ERIN).json()["requestId"]
    broken = Definitions(jobs=[_broken_batch], sensors=[build_reprocess_sensor(job=_broken_batch)])
    assert world.tick(broken) == []
    request = world.get(request_id)
    assert request["state"] == "FAILED"
    assert "finops_batch refuses the run config" in request["message"]
    assert "periods" in request["message"]
    assert world.runs_of(request_id) == []


def test_a_request_whose_run_never_appears_fails_after_max_attempts(world: World) -> None:
    request_id = world.post({**GOOD, "reason": "daemon cannot create runs"}, who=ERIN).json()["requestId"]
    # Ticks whose RunRequests never become runs (the daemon failed to create them each time).
    for attempt in range(1, 3):
        requests = world.tick(max_launch_attempts=2)
        assert [r.run_key for r in requests] == [f"reprocess:{request_id}"], attempt
        assert world.get(request_id)["state"] == "PENDING"
    assert world.tick(max_launch_attempts=2) == []
    request = world.get(request_id)
    assert request["state"] == "FAILED"
    assert f"reprocess:{request_id}" in request["message"] and "after 2 sensor ticks" in request["message"]
    assert world.runs_of(request_id) == []


# --- guard rails --------------------------------------------------------------------------------------


def test_a_reprocess_run_waits_for_the_pair_lock(world: World) -> None:
    url, pair = world.database_url, ("public", "2026-11")
    request_id = world.post(
        {"periods": ["2026-11"], "domains": ["public"], "reason": "lock check"}, who=ERIN
    ).json()["requestId"]
    [run_request] = world.tick()
    previous = run_ids_by_pair(url)[pair]
    launched: list[str] = []
    with psycopg.connect(url) as holder:
        # Another run's load of the same pair, mid-transaction.
        holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOAD_LOCK_CLASS, "2026-11:public"))
        thread = threading.Thread(target=lambda: launched.extend(world.launch([run_request])))
        thread.start()
        deadline = time.monotonic() + 30
        while not query(
            url,
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' "
            "AND application_name LIKE 'finops-batch % public 2026-11'",
        ):
            assert time.monotonic() < deadline, "the reprocess run never waited on the pair's lock"
            assert thread.is_alive()
            time.sleep(0.1)
        time.sleep(0.5)
        assert thread.is_alive()
        assert run_ids_by_pair(url)[pair] == previous  # nothing replaced while the lock is held
        holder.rollback()
    thread.join(60)
    assert not thread.is_alive() and len(launched) == 1
    assert world.instance.get_run_by_id(launched[0]).status == DagsterRunStatus.SUCCESS
    assert run_ids_by_pair(url)[pair] == {launched[0]}
    assert world.tick() == []
    assert world.get(request_id)["runId"] == launched[0]


# --- the real daemon ---------------------------------------------------------------------------------


def _wait(what: str, check: Any, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            pytest.fail(f"{what}: not within {timeout}s; dagster-daemon said:\n{tail}")
        time.sleep(0.5)


def test_requests_filed_while_no_daemon_runs_launch_once_each_when_it_starts(
    pg_base_url: str, tmp_path: Path, world: World
) -> None:
    daemon_bin = Path(sys.executable).with_name("dagster-daemon")
    require(daemon_bin.exists(), f"dagster-daemon is not installed next to {sys.executable}")
    database_url = create_database(pg_base_url, "rpd")
    home = tmp_path / "dagster_home"
    instance = make_instance(pg_base_url, home)
    app = create_app(
        settings_for(database_url, world.landing), dagster_instance=instance, projector_interval=None
    )
    client = TestClient(app)
    try:
        # Filed while no daemon runs: they wait, PENDING, in PostgreSQL.
        filed = []
        for who, period, domain in (
            (ALICE, "2026-11", "private"),
            (BOB, "2026-10", "native"),
            (ALICE, "2026-10", "private"),
        ):
            response = client.post(
                POST,
                json={"periods": [period], "domains": [domain], "reason": f"backlog {domain} {period}"},
                headers=who.headers,
            )
            assert response.status_code == 202, response.text
            filed.append((response.json()["requestId"], who.subject))
        time.sleep(1)
        store = ReprocessQueue(database_url)
        assert all(store.get(rid).state == "PENDING" for rid, _ in filed)
        assert instance.get_runs() == []

        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - python_module:\n      module_name: finops_pipeline.definitions\n"
            "      attribute: defs\n      location_name: finops\n"
        )
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "FINOPS_DATABASE_URL": database_url,
            "FINOPS_LANDING_URI": str(world.landing),
            "FINOPS_REPROCESS_SENSOR_INTERVAL_SECONDS": "1",
            "FINOPS_SCHEDULE_ENABLED": "false",
        }
        log = tmp_path / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(daemon_bin), "run", "-w", str(workspace)],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait(
                "every request LAUNCHED",
                lambda: all(store.get(rid).state == "LAUNCHED" for rid, _ in filed),
                180,
                log,
            )
            ended = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
            _wait("the runs ended", lambda: all(r.status in ended for r in instance.get_runs()), 240, log)
            # A few more ticks change nothing.
            time.sleep(3)
        finally:
            stop_group(daemon)

        runs = instance.get_runs()
        assert len(runs) == len(filed), log.read_text(errors="replace")[-4000:]
        created = {r.run_id: instance.get_run_record_by_id(r.run_id).create_timestamp for r in runs}
        for request_id, subject in filed:
            request = store.get(request_id)
            assert request.state == "LAUNCHED"
            [run] = [r for r in runs if r.tags.get(TAG_REPROCESS_REQUEST_ID) == request_id]
            assert request.run_id == run.run_id
            assert run.status == DagsterRunStatus.SUCCESS, (
                run.run_id,
                log.read_text(errors="replace")[-4000:],
            )
            assert run.tags[RUN_KEY_TAG] == f"reprocess:{request_id}"
            assert run.tags[SENSOR_NAME_TAG] == REPROCESS_SENSOR_NAME
            assert run.tags[TAG_REQUESTED_BY] == subject
            assert run.tags[TAG_TRIGGER] == "MANUAL"
        # In the order they were filed.
        order = [store.get(rid).run_id for rid, _ in filed]
        assert sorted(order, key=lambda run_id: created[run_id]) == order
        assert counts_by_pair(database_url).keys() == {
            ("private", "2026-11"),
            ("native", "2026-10"),
            ("private", "2026-10"),
        }
    finally:
        client.close()
        instance.dispose()
