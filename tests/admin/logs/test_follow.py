"""Following a run's logs while it runs (`GET /runs/{runId}/logs?follow=true`), on real runs.

The admin API is served by uvicorn on loopback (a real HTTP connection: what arrives when, and
what a client that goes away does to the server, cannot be seen through an in-memory client).
The runs are real Dagster runs on a Postgres-backed instance: `slow_job` prints a line every
0.3 s, in a step process of its own, while the test reads the stream.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from finops_admin_plugin.app import create_app
from finops_admin_plugin.resources import AdminResources
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings
from tests.admin.logs.slow_job import slow_batch, slow_run_config, start_slow_run
from tests.support import create_database, local_logs_instance, serving

ALICE = "follow-alice-token-0123456789"
BOB = "follow-bob-token-0123456789ab"
READER = "follow-reader-token-012345678"
TOKENS = json.dumps(
    [
        {"token": ALICE, "subject": "user:default/alice", "role": "admin"},
        {"token": BOB, "subject": "user:default/bob", "role": "admin"},
        {"token": READER, "subject": "component:default/dashboard", "role": "user"},
    ]
)
LIMIT = 2
LINES, INTERVAL = 12, 0.3
SLOW_LINE = re.compile(rb"slow line (\d{3}) of \d+")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    home: Path
    instance: DagsterInstance
    resources: AdminResources
    base: str  # http://127.0.0.1:<port>/finops/admin
    waiting_run_id: str  # created, never launched: a follow of it waits until it is closed
    finished: dict[str, str] = field(default_factory=dict)

    def logs_url(self, run_id: str) -> str:
        return f"{self.base}/runs/{run_id}/logs"

    def followers(self) -> int:
        return self.resources.log_followers.open_count()


@pytest.fixture(scope="module")
def world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("follow")
    home = tmp / "dagster_home"
    instance = local_logs_instance(pg_base_url, tmp)
    settings = AdminSettings(
        FINOPS_DATABASE_URL=create_database(pg_base_url, "readmodel"),
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=TOKENS,
        FINOPS_USER_ACCESS="read",
        FINOPS_LOG_FOLLOWERS_PER_CALLER=str(LIMIT),
        FINOPS_LOG_FOLLOW_POLL_SECONDS="0.2",
    )
    app = create_app(settings, dagster_instance=instance, projector_interval=None)
    waiting = instance.create_run_for_job(job_def=slow_batch, run_config=slow_run_config(1, 0.0))
    try:
        with serving(app) as port:
            yield World(
                home=home,
                instance=instance,
                resources=app.state.finops,
                base=f"http://127.0.0.1:{port}{API_BASE_PATH}",
                waiting_run_id=waiting.run_id,
            )
    finally:
        instance.dispose()


@dataclass
class Followed:
    status: int
    headers: httpx.Headers
    arrivals: list[tuple[float, int]]  # (time.time() when the line arrived, its number)
    text: str
    ended_at: float


def follow(url: str, token: str = ALICE, **params: str) -> Followed:
    """Read a followed log to its end, noting when each slow line arrived."""
    arrivals: list[tuple[float, int]] = []
    data = bytearray()
    with (
        httpx.Client(timeout=httpx.Timeout(30.0)) as client,
        client.stream("GET", url, params={"follow": "true", **params}, headers=auth(token)) as response,
    ):
        for chunk in response.iter_raw():
            now = time.time()
            start = max(0, data.rfind(b"\n"))
            data.extend(chunk)
            for match in SLOW_LINE.finditer(bytes(data[start:])):
                arrivals.append((now, int(match.group(1))))
        status, headers = response.status_code, response.headers
    return Followed(status, headers, arrivals, data.decode("utf-8"), time.time())


def run_end(instance: DagsterInstance, run_id: str, timeout: float = 60) -> tuple[DagsterRunStatus, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = instance.get_run_record_by_id(run_id)
        assert record is not None
        if record.dagster_run.is_finished and record.end_time is not None:
            return record.dagster_run.status, record.end_time
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end within {timeout} s")


def test_lines_arrive_while_the_run_runs_and_the_stream_ends_with_it(world: World) -> None:
    run = start_slow_run(world.instance, world.home, uuid.uuid4().hex, lines=LINES, interval=INTERVAL)
    results: dict[str, Followed] = {}

    def read(name: str, **params: str) -> None:
        results[name] = follow(world.logs_url(run.run_id), **params)

    # The whole run, and one step's stdout (named by its domain), followed at once.
    readers = [
        threading.Thread(target=read, args=("run",)),
        threading.Thread(target=read, args=("step",), kwargs={"step": "open", "stream": "stdout"}),
    ]
    for reader in readers:
        reader.start()
    assert run.wait(90) == 0
    status, ended = run_end(world.instance, run.run_id)
    for reader in readers:
        reader.join(30)
        assert not reader.is_alive(), "the followed log did not end with its run"
    assert status == DagsterRunStatus.SUCCESS
    world.finished["slow"] = run.run_id

    for name, followed in results.items():
        assert followed.status == 200, followed.text
        assert followed.headers["content-type"] == "text/plain; charset=utf-8"
        assert "content-disposition" not in followed.headers
        assert followed.headers["cache-control"] == "no-store"
        assert followed.headers["x-accel-buffering"] == "no"
        # Every line, once, in order ...
        assert [n for _, n in followed.arrivals] == list(range(LINES)), (name, followed.text)
        # ... arriving as the step printed them: most before the run ended, spread over seconds.
        early = [t for t, _ in followed.arrivals if t < ended]
        assert len(early) >= LINES // 2, (name, [t - ended for t, _ in followed.arrivals])
        assert early[-1] - early[0] >= 1.0, (name, early)
        # The stream ends by itself, within a few seconds of the run.
        assert followed.ended_at - ended < 5.0, (name, followed.ended_at - ended)
        assert "===== end of log (" in followed.text, followed.text[-500:]

    whole, step = results["run"], results["step"]
    assert "===== event log =====" in whole.text and "STEP_START" in whole.text
    assert "===== step load_open | stdout (file key" in whole.text
    assert "the run ended (SUCCESS)" in whole.text
    assert "===== event log =====" not in step.text and "| stderr" not in step.text
    assert "step load_open ended (STEP_SUCCESS)" in step.text or "the run ended (SUCCESS)" in step.text


def test_following_an_ended_run_sends_everything_and_ends_at_once(world: World) -> None:
    run_id = world.finished.get("slow")
    if run_id is None:
        pytest.skip("needs the slow run of the first test")
    started = time.time()
    followed = follow(world.logs_url(run_id), step="open", stream="stdout")
    assert followed.status == 200
    assert [n for _, n in followed.arrivals] == list(range(LINES))
    assert followed.ended_at - started < 3.0
    assert followed.text.rstrip().endswith("=====")
    # The download of the same selection has the same lines.
    with httpx.Client() as client:
        download = client.get(
            world.logs_url(run_id), params={"step": "open", "stream": "stdout"}, headers=auth(ALICE)
        )
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    assert SLOW_LINE.findall(download.content) == SLOW_LINE.findall(followed.text.encode())


def _open_follow(client: httpx.Client, world: World, token: str) -> httpx.Response:
    request = client.build_request(
        "GET", world.logs_url(world.waiting_run_id), params={"follow": "true"}, headers=auth(token)
    )
    return client.send(request, stream=True)


def _until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _gauge(world: World) -> float:
    response = httpx.get(f"{world.base}/metrics", headers=auth(ALICE))
    assert response.status_code == 200, response.text
    found = re.search(r"^finops_log_followers_open (\S+)$", response.text, flags=re.MULTILINE)
    assert found, response.text[-2000:]
    return float(found.group(1))


def test_a_caller_may_follow_at_most_n_logs_at_once(world: World) -> None:
    clients = [httpx.Client(timeout=10) for _ in range(LIMIT + 2)]
    try:
        opened = [_open_follow(clients[i], world, ALICE) for i in range(LIMIT)]
        assert [r.status_code for r in opened] == [200] * LIMIT
        # Kept: an abandoned iterator closes its response (httpx), which is a disconnect.
        first = opened[0].iter_raw()
        assert next(first).startswith(b"# FinOps batch run ")
        assert _until(lambda: world.followers() == LIMIT)
        assert _gauge(world) == LIMIT

        refused = _open_follow(clients[LIMIT], world, ALICE)
        refused.read()
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["error"]["name"] == "TooManyRequestsError"
        assert "FINOPS_LOG_FOLLOWERS_PER_CALLER" in body["error"]["message"]
        assert body["response"]["statusCode"] == 429
        assert int(refused.headers["retry-after"]) > 0
        # The limit is per caller; downloads are not counted.
        other = _open_follow(clients[LIMIT + 1], world, BOB)
        assert other.status_code == 200
        other.close()
        download = clients[LIMIT].get(
            world.logs_url(world.waiting_run_id), params={"stream": "events"}, headers=auth(ALICE)
        )
        assert download.status_code == 200

        # One closed: its slot is free again.
        opened[0].close()
        clients[0].close()
        assert _until(lambda: world.resources.log_followers.open_count("user:default/alice") == LIMIT - 1)
        again = _open_follow(clients[LIMIT], world, ALICE)
        assert again.status_code == 200
        again.close()
    finally:
        for client in clients:
            client.close()
    assert _until(lambda: world.followers() == 0)


def test_a_client_that_goes_away_stops_the_follow_on_the_server(world: World) -> None:
    assert _until(lambda: world.followers() == 0)
    polls: list[float] = []
    original = type(world.resources.source).run_record

    with httpx.Client(timeout=10) as client:
        response = _open_follow(client, world, ALICE)
        assert response.status_code == 200
        chunks = response.iter_raw()
        assert next(chunks).startswith(b"# FinOps batch run ")
        assert world.followers() == 1
        assert _gauge(world) == 1
        response.close()  # the connection is dropped, mid-stream
    # The generator ran its `finally` (the slot) and the gauge says so ...
    assert _until(lambda: world.followers() == 0), "the follow kept running after its client left"
    assert _gauge(world) == 0
    # ... and no more looks at Dagster are made for it.
    reader = world.resources.source

    def counting(self: Any, run_id: str) -> Any:
        if run_id == world.waiting_run_id:
            polls.append(time.monotonic())
        return original(self, run_id)

    type(reader).run_record = counting  # type: ignore[method-assign]
    try:
        time.sleep(1.0)
    finally:
        type(reader).run_record = original  # type: ignore[method-assign]
    assert polls == []


def test_follow_must_be_a_boolean_and_needs_an_admin(world: World) -> None:
    with httpx.Client(timeout=10) as client:
        bad = client.get(
            world.logs_url(world.waiting_run_id), params={"follow": "maybe"}, headers=auth(ALICE)
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["name"] == "InputError"
        assert "follow" in bad.json()["error"]["message"]
        reader = client.get(
            world.logs_url(world.waiting_run_id), params={"follow": "true"}, headers=auth(READER)
        )
        assert reader.status_code == 403
        unknown = client.get(
            world.logs_url(world.waiting_run_id),
            params={"follow": "true", "step": "nope"},
            headers=auth(ALICE),
        )
        assert unknown.status_code == 400
        assert "not a step of run" in unknown.json()["error"]["message"]
    assert _until(lambda: world.followers() == 0)
