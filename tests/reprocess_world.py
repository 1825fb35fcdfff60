"""Shared world of the reprocess tests (admin API side and sensor side).

Reprocess requests end to end: the API files them, the sensor launches each exactly once.

Everything is real: PostgreSQL (pgserver) holds the warehouse, the requests and
Dagster's storage; the sensor is evaluated with `build_sensor_context` on that
Postgres-backed instance, and the runs it asks for are executed for real.

`launch` below stands in for the Dagster daemon between two sensor ticks: like
the daemon, it creates a run per RunRequest unless this sensor already has a run
with that run key. `test_requests_filed_while_no_daemon_runs_launch_once_each_when_it_starts`
runs the real `dagster-daemon` instead.

Two runs never load one (period, domain) at once whoever launched them: that is
the loader's advisory lock, proven by `tests/pipeline/warehouse/test_concurrency.py`
(`test_two_loads_of_one_pair_never_interleave`, `..._gives_up_after_its_lock_timeout...`);
`test_a_reprocess_run_waits_for_the_pair_lock` shows a reprocess run takes that lock too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    RunRequest,
    RunsFilter,
)
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings
from finops_pipeline.contract import (
    DOMAINS,
    TAG_REPROCESS_REQUEST_ID,
)
from finops_pipeline.definitions import build_definitions
from finops_pipeline.reprocess.queue import ReprocessQueue
from finops_pipeline.warehouse.schema import ensure_schema
from tests.conftest import TEST_PERIODS
from tests.support import (
    create_database,
    launch_run_requests,
    make_instance,
    reprocess_sensor_tick,
    run_batch,
    run_events,
)

REQUESTS = f"{API_BASE_PATH}/reprocess"
POST = f"{API_BASE_PATH}/runs/reprocess"


@dataclass(frozen=True)
class Token:
    token: str
    subject: str
    role: str = "admin"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


ALICE = Token("svc-alice-token-0123456789abcdef", "user:default/alice")
BOB = Token("svc-bob-token-0123456789abcdef00", "user:default/bob")
CAROL = Token("svc-carol-token-0123456789abcdef0", "user:default/carol")
DAVE = Token("svc-dave-token-0123456789abcdef00", "user:default/dave")
ERIN = Token("svc-erin-token-0123456789abcdef00", "user:default/erin")
FRANK = Token("svc-frank-token-0123456789abcdef0", "user:default/frank")
GRACE = Token("svc-grace-token-0123456789abcdef0", "user:default/grace")
READER = Token("svc-reader-token-0123456789abcdef", "component:default/finops-dashboard", "user")
TOKENS = [ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE, READER]
STATIC_TOKENS = json.dumps([{"token": t.token, "subject": t.subject, "role": t.role} for t in TOKENS])


def settings_for(world_url: str, landing: Path, **extra: Any) -> AdminSettings:
    return AdminSettings(
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=STATIC_TOKENS,
        FINOPS_DATABASE_URL=world_url,
        FINOPS_LANDING_URI=str(landing),
        **extra,
    )


@dataclass
class World:
    """One warehouse, landing, Dagster instance and admin API shared by this module's tests."""

    database_url: str
    landing: Path
    home: Path
    instance: DagsterInstance
    defs: Definitions
    client: TestClient
    history_run_id: str
    launched: list[str] = field(default_factory=list)

    def post(self, body: Any, who: Token = ALICE, key: str | bytes | None = None, **kwargs: Any) -> Any:
        headers: dict[str, Any] = dict(who.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        if isinstance(body, bytes | str):
            headers.setdefault("Content-Type", "application/json")
            return self.client.post(POST, content=body, headers=headers, **kwargs)
        return self.client.post(POST, json=body, headers=headers, **kwargs)

    def get(self, request_id: str, who: Token = ALICE) -> dict[str, Any]:
        response = self.client.get(f"{REQUESTS}/{request_id}", headers=who.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def tick(self, defs: Definitions | None = None, **queue: Any) -> list[RunRequest]:
        """One evaluation of the sensor as the code location defines it; the RunRequests it returns."""
        return reprocess_sensor_tick(self.instance, self.database_url, defs or self.defs, **queue)

    def launch(self, run_requests: list[RunRequest]) -> list[str]:
        """What the daemon does with a tick's RunRequests: one run per run key of this sensor."""
        run_ids = launch_run_requests(self.instance, run_requests, self.defs)
        self.launched.extend(run_ids)
        return run_ids

    def runs_of(self, request_id: str) -> list[Any]:
        return list(self.instance.get_runs(filters=RunsFilter(tags={TAG_REPROCESS_REQUEST_ID: request_id})))


@pytest.fixture(scope="module")
def world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from finops_pipeline.demo_data import write_demo_landing

    root = tmp_path_factory.mktemp("reprocess")
    landing = root / "landing"
    write_demo_landing(str(landing), months=2, now=datetime(2026, 11, 15, tzinfo=UTC), scale=0.25)
    database_url = create_database(pg_base_url, "rp")
    ensure_schema(database_url)
    home = root / "dagster_home"
    instance = make_instance(pg_base_url, home)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FINOPS_DATABASE_URL", database_url)
        env.setenv("FINOPS_LANDING_URI", str(landing))
        history = run_batch(instance, periods=TEST_PERIODS, domains=list(DOMAINS))
        assert history.success
        app = create_app(
            settings_for(database_url, landing, FINOPS_REPROCESS_RATE_LIMIT=1000),
            dagster_instance=instance,
            projector_interval=0.2,
        )
        with TestClient(app) as client:
            ReprocessQueue(database_url).ensure_schema()  # each test may count requests first
            yield World(
                database_url=database_url,
                landing=landing,
                home=home,
                instance=instance,
                defs=build_definitions(),
                client=client,
                history_run_id=history.run_id,
            )
    instance.dispose()


def _materialized_mvs(instance: DagsterInstance, run_id: str) -> set[str]:
    found = set()
    for event in run_events(instance, run_id):
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            path = event.event_specific_data.materialization.asset_key.path
            if path[1].startswith("mv_"):
                found.add(path[1])
    return found


def _run_in_list(world: World, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The run as GET /runs lists it, once the read model has projected it."""
    deadline = time.monotonic() + timeout
    while True:
        response = world.client.get(f"{API_BASE_PATH}/runs", params={"q": run_id}, headers=ALICE.headers)
        assert response.status_code == 200, response.text
        items = [item for item in response.json()["items"] if item["runId"] == run_id]
        if items and items[0]["status"] in ("SUCCESS", "FAILED"):
            return items[0]
        assert time.monotonic() < deadline, f"run {run_id} not in GET /runs after {timeout}s"
        time.sleep(0.2)


GOOD = {"periods": ["2026-10"], "domains": ["open"], "reason": "valid reason"}
