"""Two API replicas on one database: both serve every read, one leads, the other takes over.

Real processes (`python -m finops_cli serve`) on a real history of FinOps runs. The
leader is found the way an operator would: the session holding the leader lock in
`pg_stat_activity`, whose application name carries the process id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from finops_admin_plugin.readmodel.leader import LEADER_LOCK
from finops_admin_plugin.readmodel.schema import LOCK_CLASS
from tests.history import History
from tests.support import create_database, free_port

BASE = "/finops/admin"


def _leader_pid(database_url: str) -> int | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
            (LOCK_CLASS, LEADER_LOCK),
        ).fetchone()
    return int(row[0].rsplit(" ", 1)[-1]) if row else None


def _versions(database_url: str) -> dict[str, str]:
    """Each projected run's row version: it changes whenever a replica writes the run again."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT run_id, xmin::text FROM finops_admin.runs").fetchall()
    return {run_id: xmin for run_id, xmin in rows}


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture
def replicas(finops_history: History, pg_base_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    database_url = create_database(pg_base_url, "admin")
    env = {
        **os.environ,
        "FINOPS_DATABASE_URL": database_url,
        "DAGSTER_HOME": str(finops_history.instance.root_directory),
        "FINOPS_AUTH_MODE": "dev",
        "FINOPS_DAGSTER_UI_URL": "http://dagster.example.com",
        "FINOPS_LANDING_URI": str(finops_history.landing),
    }
    servers: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
    for index in range(2):
        port = free_port()
        log = open(tmp_path / f"api-{index}.log", "wb")  # noqa: SIM115  # closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", "finops_cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers[process.pid] = (process, f"http://127.0.0.1:{port}")
    try:
        for _process, url in servers.values():
            _wait(f"{url} to answer", lambda url=url: _healthy(url), 60)
        yield {"database_url": database_url, "servers": servers, "logs": tmp_path}
    finally:
        for process, _ in servers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in servers.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _timeless(body: Any) -> Any:
    """The answer without what depends on the time it was asked (a coverage cell's age)."""
    if isinstance(body, dict):
        return {k: _timeless(v) for k, v in body.items() if k != "ageSeconds"}
    if isinstance(body, list):
        return [_timeless(v) for v in body]
    return body


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}{BASE}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _total(url: str) -> int:
    return int(httpx.get(f"{url}{BASE}/runs", timeout=10).json()["totalItems"])


def test_two_replicas_serve_the_same_answers_and_one_takes_over_from_a_dead_leader(
    replicas: dict[str, Any], finops_history: History
) -> None:
    database_url = replicas["database_url"]
    servers: dict[int, tuple[subprocess.Popen[bytes], str]] = replicas["servers"]
    expected = len(finops_history.order)
    for _, url in servers.values():
        _wait("every run projected", lambda url=url: _total(url) == expected, 60)

    leader = _wait("a leader", lambda: _leader_pid(database_url), 10)
    assert leader in servers, (leader, list(servers))

    # Every read answers the same on both replicas.
    urls = [url for _, url in servers.values()]
    paths = [f"{BASE}/runs?limit=200", f"{BASE}/coverage", f"{BASE}/runs?format=csv"]
    paths += [f"{BASE}/runs/{finops_history.runs[name]}" for name in finops_history.order]
    for path in paths:
        first, second = (httpx.get(f"{url}{path}", timeout=30) for url in urls)
        assert first.status_code == second.status_code == 200, (path, first.text[:200])
        if path.endswith("format=csv"):
            assert first.text == second.text, path
        else:
            assert _timeless(first.json()) == _timeless(second.json()), path

    # Both keep running: nothing already projected is written again.
    before = _versions(database_url)
    assert len(before) == expected
    time.sleep(3)
    assert _versions(database_url) == before

    # The leader dies without a goodbye; the other replica projects a new run within 5 s.
    process, _ = servers[leader]
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    survivor_pid = next(pid for pid in servers if pid != leader)
    survivor_url = servers[survivor_pid][1]
    started = time.monotonic()
    run_id = finops_history.add_queued(
        "after_failover", domains=["open"], periods=[finops_history.periods[0]]
    )
    listed = _wait(
        "the survivor to project the new run",
        lambda: httpx.get(f"{survivor_url}{BASE}/runs", params={"q": run_id}, timeout=5).json()["items"],
        5,
    )
    elapsed = time.monotonic() - started
    assert listed[0]["runId"] == run_id and listed[0]["status"] == "QUEUED"
    assert _leader_pid(database_url) == survivor_pid
    after = _versions(database_url)
    assert {k: v for k, v in after.items() if k != run_id} == before  # the rest was not projected again
    print(f"takeover: the new run was listed {elapsed:.2f}s after the leader was killed")
