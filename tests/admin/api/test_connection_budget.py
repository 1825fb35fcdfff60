"""Three `finops serve` processes on one PostgreSQL: a burst of reprocess POSTs stays within a
connection budget, and the first requests after a PostgreSQL restart answer.

The module has its own PostgreSQL (pgserver), restarted by the tests, a Dagster instance
with one real run (its logs are downloaded) and three API processes started with
`finops serve`, as a deployment with three replicas runs them.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from finops_admin_plugin.resources import REPROCESS_POOL_SIZE
from finops_pipeline.periods import format_period
from tests.support import OwnPostgres, free_port, own_postgres, run_batch, stop_group, write_dagster_yaml

BIN = Path(sys.executable).parent
BASE = "/finops/admin"
PERIOD = format_period(datetime.now(UTC))
PROCESSES = 3
BURST = 120

pytestmark = pytest.mark.timeout(600)


@dataclass
class Stack:
    ports: list[int]
    postgres: OwnPostgres
    run_id: str
    warehouse: str


def _request(port: int, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": f"127.0.0.1:{port}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, BASE + path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from dagster import DagsterInstance

    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    root = tmp_path_factory.mktemp("budget")
    with own_postgres(root) as postgres:
        warehouse = postgres.url("finops")
        ensure_schema(warehouse)
        landing = root / "landing"
        write_demo_landing(str(landing), months=1, now=datetime.now(UTC), scale=0.1)
        home = root / "dagster_home"
        write_dagster_yaml(home, postgres.url("dagster"))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FINOPS_DATABASE_URL", warehouse)
            mp.setenv("FINOPS_LANDING_URI", str(landing))
            instance = DagsterInstance.from_config(str(home))
            try:
                run_id = run_batch(instance, periods=[PERIOD], domains=["open"]).run_id
            finally:
                instance.dispose()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "FINOPS_DATABASE_URL": warehouse,
            "FINOPS_LANDING_URI": str(landing),
            "FINOPS_AUTH_MODE": "dev",
            "FINOPS_REPROCESS_RATE_LIMIT": "1000",
        }
        processes: list[subprocess.Popen[bytes]] = []
        ports = [free_port() for _ in range(PROCESSES)]
        logs = []
        try:
            for index, port in enumerate(ports):
                log = open(root / f"api-{index}.log", "ab")  # noqa: SIM115
                logs.append(log)
                argv = [str(BIN / "finops"), "serve", "--port", str(port)]
                processes.append(
                    subprocess.Popen(
                        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            for index, port in enumerate(ports):
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    try:
                        url = f"http://127.0.0.1:{port}{BASE}/healthz"
                        with urllib.request.urlopen(url, timeout=5) as resp:
                            if resp.status == 200:
                                break
                    except OSError:
                        time.sleep(0.3)
                else:
                    pytest.fail(
                        "finops serve did not come up:\n" + (root / f"api-{index}.log").read_text()[-3000:]
                    )
            yield Stack(ports, postgres, run_id, warehouse)
        finally:
            for process in processes:
                stop_group(process)
            for log in logs:
                log.close()


def _connections(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
    return {name: int(count) for name, count in rows}


def test_a_burst_of_reprocess_posts_stays_within_a_connection_budget(stack: Stack) -> None:
    before = _connections(stack.warehouse)
    peak: dict[str, int] = {}
    peak_total = 0
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak_total
        with psycopg.connect(stack.warehouse, autocommit=True) as conn:
            while not sampling.is_set():
                rows = conn.execute(
                    "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
                ).fetchall()
                peak_total = max(peak_total, sum(int(n) for _, n in rows))
                for name, count in rows:
                    peak[name] = max(peak.get(name, 0), int(count))
                time.sleep(0.01)

    def post(index: int) -> tuple[int, bytes]:
        body = {"periods": [PERIOD], "domains": ["open"], "reason": f"burst request {index}"}
        try:
            return _request(stack.ports[index % PROCESSES], "POST", "/runs/reprocess", body)
        except OSError as exc:  # a refused or reset connection is a failure of the test
            return -1, repr(exc).encode()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(post, range(BURST)))
    finally:
        sampling.set()
        sampler.join(10)
    seconds = time.monotonic() - started

    statuses = [status for status, _ in answers]
    failed = [(s, body[:200]) for s, body in answers if s != 202]
    assert not failed, f"{len(failed)} of {BURST} POSTs not 202: {failed[:5]}"
    ids = {json.loads(body)["requestId"] for _, body in answers}
    assert len(ids) == BURST
    # Waiting for the caller's lock holds no connection: the queue's pool bounds each process.
    assert peak.get("finops-admin-reprocess", 0) <= PROCESSES * REPROCESS_POOL_SIZE, peak
    # Everything else the APIs hold (read model pool, gate probes, leader lock) is not per request.
    others = sum(before.values())
    assert peak_total <= others + PROCESSES * REPROCESS_POOL_SIZE + 2, (peak_total, before, peak)
    print(
        f"{BURST} parallel reprocess POSTs over {PROCESSES} API processes: {statuses.count(202)} x 202 in "
        f"{seconds:.1f}s; reprocess connections at most {peak.get('finops-admin-reprocess', 0)}, "
        f"all client connections at most {peak_total} (idle before: {others})"
    )


def _restart(postgres: OwnPostgres) -> None:
    # pg_ctl restart keeps the server's options (socket directory, no TCP) from postmaster.opts.
    postgres.pg_ctl("-w", "-m", "fast", "restart")


def test_first_requests_after_a_postgres_restart_answer(stack: Stack) -> None:
    # Every process has used each of its pools (read model, Dagster storage, reprocess queue).
    for port in stack.ports:
        for path in (f"/runs/{stack.run_id}/logs", "/runs", "/reprocess"):
            status, body = _request(port, "GET", path)
            assert status == 200, (port, path, status, body[:300])

    _restart(stack.postgres)
    # Past the gate's probe: the databases answer again, the pools still hold the old connections.
    time.sleep(3)
    for port in stack.ports:
        status, body = _request(port, "GET", f"/runs/{stack.run_id}/logs")
        assert status == 200, ("first log download after the restart", port, status, body[:300])
        assert stack.run_id.encode() in body[:2000]
        status, body = _request(port, "GET", "/runs")
        assert status == 200, ("first list after the restart", port, status, body[:300])
        status, body = _request(port, "GET", "/reprocess")
        assert status == 200, ("first reprocess list after the restart", port, status, body[:300])


def test_recovery_time_with_a_log_download_first(stack: Stack) -> None:
    """The README's figure: how long after a restart every route answers, a log download first."""
    port = stack.ports[0]
    _restart(stack.postgres)
    restarted = time.monotonic()
    while True:
        status, _ = _request(port, "GET", f"/runs/{stack.run_id}/logs")
        if status == 200:
            break
        assert status == 503, status
        assert time.monotonic() - restarted < 10, "log download still failing 10s after the restart"
        time.sleep(0.05)
    first = time.monotonic() - restarted
    for path, expected in ((f"/runs/{stack.run_id}", 200), ("/runs", 200), ("/coverage", 200),
                           ("/reprocess", 200), ("/healthz", 200)):  # fmt: skip
        status, body = _request(port, "GET", path)
        assert status == expected, (path, status, body[:300])
    every = time.monotonic() - restarted
    print(f"after pg_ctl restart: log download 200 after {first:.2f}s, every route 200 after {every:.2f}s")
