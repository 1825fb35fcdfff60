"""Reprocess requests end to end: the API files them, the sensor launches each exactly once.

Everything is real: PostgreSQL (pgserver) holds the warehouse, the requests and
Dagster's storage; the sensor is evaluated with `build_sensor_context` on that
Postgres-backed instance, and the runs it asks for are executed for real.

`launch` below stands in for the Dagster daemon between two sensor ticks: like
the daemon, it creates a run per RunRequest unless this sensor already has a run
with that run key. `test_requests_filed_while_no_daemon_runs_launch_once_each_when_it_starts`
runs the real `dagster-daemon` instead.

Two runs never load one (period, domain) at once whoever launched them: that is
the loader's advisory lock, proven by `tests/test_concurrency.py`
(`test_two_loads_of_one_pair_never_interleave`, `..._gives_up_after_its_lock_timeout...`);
`test_a_reprocess_run_waits_for_the_pair_lock` shows a reprocess run takes that lock too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    RunsFilter,
    SensorResult,
    SkipReason,
    build_sensor_context,
    job,
    op,
)
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings
from finops_pipeline.constants import (
    DOMAINS,
    JOB_NAME,
    MATERIALIZED_VIEWS,
    REPROCESS_SENSOR_NAME,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REASON,
    TAG_REPROCESS_REQUEST_ID,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    load_step_key,
)
from finops_pipeline.definitions import build_definitions
from finops_pipeline.reprocess.rules import CheckedRequest
from finops_pipeline.reprocess.store import ReprocessStore
from finops_pipeline.resources import ReprocessQueueResource
from finops_pipeline.sensors import build_reprocess_sensor
from finops_pipeline.warehouse.loads import LOAD_LOCK_CLASS
from finops_pipeline.warehouse.schema import ensure_schema
from tests.conftest import TEST_PERIODS
from tests.support import (
    counts_by_pair,
    create_database,
    make_instance,
    metadata_values,
    query,
    require,
    run_batch,
    run_events,
    run_ids_by_pair,
)

RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
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
        defs = defs or self.defs
        sensor_def = defs.resolve_sensor_def(REPROCESS_SENSOR_NAME)
        # Invoked directly, a sensor gets its resources from the context, not from `definitions`.
        resource = ReprocessQueueResource(database_url=self.database_url, **queue)
        with build_sensor_context(
            instance=self.instance,
            definitions=defs,
            sensor_name=REPROCESS_SENSOR_NAME,
            resources={"reprocess_queue": resource},
        ) as context:
            result = sensor_def(context)
        if isinstance(result, SkipReason):
            return []
        assert isinstance(result, SensorResult), result
        return list(result.run_requests or [])

    def launch(self, run_requests: list[RunRequest]) -> list[str]:
        """What the daemon does with a tick's RunRequests: one run per run key of this sensor."""
        job_def = self.defs.resolve_job_def(JOB_NAME)
        run_ids = []
        for run_request in run_requests:
            existing = self.instance.get_runs(
                filters=RunsFilter(
                    tags={RUN_KEY_TAG: run_request.run_key, SENSOR_NAME_TAG: REPROCESS_SENSOR_NAME}
                )
            )
            if existing:
                continue
            result = job_def.execute_in_process(
                instance=self.instance,
                run_config=run_request.run_config,
                tags={
                    **run_request.tags,
                    RUN_KEY_TAG: run_request.run_key,
                    SENSOR_NAME_TAG: REPROCESS_SENSOR_NAME,
                },
                raise_on_error=False,
            )
            run_ids.append(result.run_id)
            self.launched.append(result.run_id)
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


def _output_metadata(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    found = {}
    for event in run_events(instance, run_id):
        if event.event_type == DagsterEventType.STEP_OUTPUT and event.step_key.startswith("load_"):
            found[event.step_key] = metadata_values(event.event_specific_data.metadata)
    return found


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


# --- the whole path: dry run, POST, tick, launch, bookkeeping, run list ---------------------------


def test_dry_run_then_reprocess_launched_once_and_listed_as_manual(world: World) -> None:
    url = world.database_url
    pairs = [("2026-10", "open"), ("2026-10", "public")]
    # The provider re-issued Open's October export: one more file with the same rows, so the
    # reprocess loads twice what is there now.
    folder = world.landing / "open" / "2026-10"
    original = sorted(folder.iterdir())[0]
    files_before = len(list(folder.iterdir()))
    shutil.copy(original, folder / f"reissued-{original.name}")
    before = counts_by_pair(url)
    runs_before = len(world.instance.get_runs())
    body = {
        "periods": ["2026-10"],
        "domains": ["public", "open"],
        "reason": "  October re-issued by the provider ",
    }

    # Dry run: the impact per pair, and nothing changes.
    dry = world.post({**body, "dryRun": True})
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert preview["dryRun"] is True
    assert preview["periods"] == ["2026-10"] and preview["domains"] == ["open", "public"]
    assert preview["reason"] == "October re-issued by the provider"
    assert [(p["period"], p["domain"]) for p in preview["pairs"]] == pairs
    for pair in preview["pairs"]:
        key = (pair["domain"], pair["period"])
        assert pair["outcome"] == "REPLACE"
        assert pair["loaded"] == {
            "rows": before[key],
            "runs": [{"runId": world.history_run_id, "rows": before[key]}],
        }
        assert pair["rowsToDelete"] == before[key] > 0
        assert pair["landing"]["folder"].rstrip("/").endswith(f"{pair['domain']}/{pair['period']}")
        assert pair["landing"]["rowsToLoad"] == pair["rowsToInsert"]
        assert sum(f["rowsToLoad"] for f in pair["landing"]["files"]) == pair["rowsToInsert"]
        assert pair["landing"]["rowsRejected"] == sum(pair["landing"]["rejectedByReason"].values()) > 0
        assert pair["landing"]["error"] is None
    open_files = {Path(f["name"]).name: f for f in preview["pairs"][0]["landing"]["files"]}
    assert len(open_files) == files_before + 1
    copy = open_files[f"reissued-{original.name}"]
    assert copy["rowsToLoad"] == open_files[original.name]["rowsToLoad"] > 0
    assert preview["pairs"][0]["rowsToInsert"] == before[("open", "2026-10")] + copy["rowsToLoad"]
    assert preview["materializedViews"] == list(MATERIALIZED_VIEWS)
    assert counts_by_pair(url) == before
    assert len(world.instance.get_runs()) == runs_before
    assert world.client.get(REQUESTS, headers=ALICE.headers).json()["totalItems"] == 0

    # The request: stored PENDING with its caller.
    posted = world.post(body)
    assert posted.status_code == 202, posted.text
    request = posted.json()
    request_id = request["requestId"]
    assert request["state"] == "PENDING"
    assert request["requestedBy"] == ALICE.subject
    assert request["reason"] == "October re-issued by the provider"
    assert (request["periods"], request["domains"]) == (["2026-10"], ["open", "public"])
    assert request["runId"] is None and request["message"] is None
    assert request["links"] == {"self": f"{REQUESTS}/{request_id}", "run": None}
    assert posted.headers["location"] == f"{REQUESTS}/{request_id}"
    assert posted.headers["idempotent-replayed"] == "false"
    assert datetime.fromisoformat(request["createdAt"]).tzinfo is not None
    assert world.get(request_id) == request

    # First tick: one RunRequest whose key, config and tags come from the request.
    first = world.tick()
    assert len(first) == 1
    run_request = first[0]
    assert run_request.run_key == f"reprocess:{request_id}"
    assert run_request.run_config == {
        "ops": {"plan_batch": {"config": {"periods": ["2026-10"], "domains": ["open", "public"]}}}
    }
    assert run_request.tags[TAG_TRIGGER] == "MANUAL"
    assert run_request.tags[TAG_REQUESTED_BY] == ALICE.subject
    assert run_request.tags[TAG_REPROCESS_REQUEST_ID] == request_id
    assert run_request.tags[TAG_REASON] == "October re-issued by the provider"
    assert run_request.tags[TAG_PERIODS] == "2026-10" and run_request.tags[TAG_DOMAINS] == "open,public"

    # A second tick before the daemon created the run asks again with the same key: the
    # daemon creates one run per key, so both ticks together give one run.
    second = world.tick()
    assert [r.run_key for r in second] == [run_request.run_key]
    assert second[0].run_config == run_request.run_config and second[0].tags == run_request.tags
    run_ids = world.launch(first + second)
    assert len(run_ids) == 1
    run_id = run_ids[0]
    assert world.instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS

    # The run exists, the request does not know it yet: a crash between launch and bookkeeping
    # looks exactly like this. The next tick records it and asks for nothing.
    assert world.get(request_id)["state"] == "PENDING"
    assert world.tick() == []
    launched = world.get(request_id)
    assert launched["state"] == "LAUNCHED"
    assert launched["runId"] == run_id
    assert launched["links"]["run"] == f"{API_BASE_PATH}/runs/{run_id}"
    assert launched["launchedAt"] is not None
    assert world.tick() == []
    assert [r.run_id for r in world.runs_of(request_id)] == [run_id]

    # The dry run said what the run then did.
    after = counts_by_pair(url)
    metadata = _output_metadata(world.instance, run_id)
    assert set(metadata) == {load_step_key("open"), load_step_key("public")}
    for pair in preview["pairs"]:
        key = (pair["domain"], pair["period"])
        meta = metadata[load_step_key(pair["domain"])]
        per_period = meta["periods"][pair["period"]]
        assert after[key] == pair["rowsToInsert"] == meta["releves_inserted"]
        assert meta["releves_deleted"] == pair["rowsToDelete"]
        assert meta["releves_rejected"] == pair["landing"]["rowsRejected"]
        assert meta["rows_read"] == pair["landing"]["rowsRead"]
        assert per_period["rejected_by_reason"] == pair["landing"]["rejectedByReason"]
        assert per_period["files"] == len(pair["landing"]["files"])
        # The run's figure is the exact decimal text; the dry run's is a rounded float.
        assert float(meta["billed_cost"]) == pytest.approx(pair["landing"]["billedCost"], abs=0.011)
        assert run_ids_by_pair(url)[key] == {run_id}
    assert _materialized_mvs(world.instance, run_id) == set(preview["materializedViews"])
    # Pairs outside the request are untouched.
    assert {k: v for k, v in after.items() if (k[1], k[0]) not in pairs} == {
        k: v for k, v in before.items() if (k[1], k[0]) not in pairs
    }

    # The run list shows it as a MANUAL run launched by the caller who asked.
    listed = _run_in_list(world, run_id)
    assert listed["trigger"] == "MANUAL"
    assert listed["launchedBy"] == ALICE.subject
    assert listed["status"] == "SUCCESS"
    detail = world.client.get(f"{API_BASE_PATH}/runs/{run_id}", headers=ALICE.headers)
    assert detail.status_code == 200, detail.text
    assert detail.json()["launchedBy"] == ALICE.subject


def test_dry_run_of_a_pair_without_landing_files_says_it_would_fail(world: World) -> None:
    before = counts_by_pair(world.database_url)
    response = world.post(
        {"periods": ["2026-09", "2026-11"], "domains": ["native"], "reason": "check", "dryRun": True}
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    by_period = {p["period"]: p for p in preview["pairs"]}
    missing = by_period["2026-09"]
    assert missing["outcome"] == "FAIL"
    assert missing["rowsToInsert"] == missing["rowsToDelete"] == 0
    assert missing["loaded"] == {"rows": 0, "runs": []}
    assert "no landing files" in missing["landing"]["error"] and "native" in missing["landing"]["error"]
    assert by_period["2026-11"]["outcome"] == "REPLACE"
    assert by_period["2026-11"]["rowsToDelete"] == before[("native", "2026-11")]
    assert preview["materializedViews"] == []
    assert preview["totals"]["failingPairs"] == 1
    assert "would not be refreshed" in preview["message"]
    assert counts_by_pair(world.database_url) == before


# --- idempotency ------------------------------------------------------------------------------------


def _count_requests(world: World, **where: str) -> int:
    clauses = " AND ".join(f"{k} = %s" for k in where) or "TRUE"
    return int(
        query(
            world.database_url,
            f"SELECT count(*) FROM finops_admin.reprocess_requests WHERE {clauses}",
            list(where.values()),
        )[0][0]
    )


def test_repeated_posts_give_one_request(world: World) -> None:
    body = {"periods": ["2026-08", "2026-07"], "domains": ["private"], "reason": "idempotency check"}
    first = world.post(body, who=BOB, key="retry-0001")
    assert first.status_code == 202, first.text
    request_id = first.json()["requestId"]

    # Same key, same body (in another order, other spacing): the same request, flagged as a replay.
    again = world.post(
        {
            "reason": " idempotency check ",
            "domains": ["PRIVATE"],
            "periods": ["2026-07", "2026-08", "2026-07"],
        },
        who=BOB,
        key="retry-0001",
    )
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    # No key, identical body while the first is PENDING: the same request.
    plain = world.post(body, who=BOB)
    assert plain.status_code == 202 and plain.json()["requestId"] == request_id
    assert plain.headers["idempotent-replayed"] == "true"
    # A new key for an identical pending request points at it, and keeps doing so later.
    other_key = world.post(body, who=BOB, key="retry-0002")
    assert other_key.json()["requestId"] == request_id
    assert _count_requests(world, requested_by=BOB.subject) == 1

    # The same key with another body is a conflict, not a silent new request.
    conflict = world.post({**body, "periods": ["2026-06"]}, who=BOB, key="retry-0001")
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"]["name"] == "ConflictError"
    assert (
        "retry-0001" in conflict.json()["error"]["message"]
        and request_id in conflict.json()["error"]["message"]
    )
    # Keys belong to their caller: Carol's "retry-0001", and Carol's identical body, are hers.
    carol = world.post(body, who=CAROL, key="retry-0001")
    assert carol.status_code == 202 and carol.json()["requestId"] != request_id
    assert carol.json()["requestedBy"] == CAROL.subject
    # A different reason is a different request.
    reworded = world.post({**body, "reason": "another reason"}, who=BOB)
    assert reworded.json()["requestId"] != request_id

    # Once launched, an identical body is a new request; the old key still answers the old one.
    first_run = world.tick()
    assert {r.tags[TAG_REPROCESS_REQUEST_ID] for r in first_run} >= {request_id}
    world.launch(first_run)
    world.tick()
    assert world.get(request_id)["state"] == "LAUNCHED"
    assert world.post(body, who=BOB, key="retry-0001").json()["requestId"] == request_id
    assert world.post(body, who=BOB, key="retry-0002").json()["requestId"] == request_id
    fresh = world.post(body, who=BOB)
    assert fresh.status_code == 202 and fresh.json()["requestId"] != request_id
    assert fresh.headers["idempotent-replayed"] == "false"
    world.launch(world.tick())
    world.tick()
    for rid in (
        request_id,
        fresh.json()["requestId"],
        carol.json()["requestId"],
        reworded.json()["requestId"],
    ):
        assert len(world.runs_of(rid)) == 1
        assert world.get(rid)["state"] == "LAUNCHED"


# --- validation --------------------------------------------------------------------------------------

GOOD = {"periods": ["2026-10"], "domains": ["open"], "reason": "valid reason"}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**GOOD, "periods": ["2099-01"]}, "periods[0]", "in the future"),
        ({**GOOD, "periods": ["2026-10", "2026-13"]}, "periods[1]", "YYYY-MM"),
        ({**GOOD, "periods": ["Oct 2026"]}, "periods[0]", "YYYY-MM"),
        ({**GOOD, "periods": []}, "periods", "at least 1"),
        (
            {**GOOD, "periods": [f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(25)]},
            "periods",
            "at most 24",
        ),
        ({**GOOD, "domains": ["open", "cloud"]}, "domains[1]", "unknown domain 'cloud'"),
        ({**GOOD, "domains": []}, "domains", "at least one domain"),
        ({**GOOD, "reason": ""}, "reason", "say why"),
        ({**GOOD, "reason": "   \n "}, "reason", "say why"),
        ({**GOOD, "reason": "x" * 501}, "reason", "at most 500"),
        ({**GOOD, "reason": "nul \u0000 byte"}, "reason", "control character"),
        ({"periods": ["2026-10"]}, "reason", "required"),
        ({**GOOD, "dryrun": True}, "dryrun", "unknown field"),
        ({**GOOD, "dry_run": True}, "dry_run", "unknown field"),
        ({**GOOD, "runId": "x"}, "runId", "unknown field"),
        ({**GOOD, "dryRun": "true"}, "dryRun", "true or false"),
        ({**GOOD, "dryRun": 1}, "dryRun", "true or false"),
        ({**GOOD, "periods": "2026-10"}, "periods", "JSON array"),
        ({**GOOD, "periods": [202610]}, "periods[0]", "string"),
        ({**GOOD, "domains": "open"}, "domains", "JSON array"),
        ({**GOOD, "reason": 42}, "reason", "string"),
        ({**GOOD, "reason": None}, "reason", "string"),
        ([GOOD], "request body", "JSON object"),
        ("null", "request body", "JSON object"),
        ('{"periods": ["2026-10"], "reason": "x",', "request body", "not valid JSON"),
        ("", "request body", "empty"),
        (
            '{"periods": ["2026-10"], "domains": ["open"], "reason": "' + "y" * 20_000 + '"}',
            "request body",
            "bytes",
        ),
    ],
    ids=lambda value: None,
)
def test_invalid_bodies_answer_400_naming_the_field(world: World, body: Any, field: str, words: str) -> None:
    payload = json.dumps(body) if not isinstance(body, str) else body
    for dry_run in (False, True):
        if dry_run and isinstance(body, dict):
            payload = json.dumps({**body, "dryRun": body.get("dryRun", True)})
        response = world.post(payload, who=DAVE)
        assert response.status_code == 400, (body, response.text)
        error = response.json()
        assert error["error"]["name"] == "InputError"
        assert error["response"] == {"statusCode": 400}
        assert error["request"] == {"method": "POST", "url": POST}
        message = error["error"]["message"]
        assert message.startswith(field) or f" {field}" in message or f"{field}:" in message, message
        assert words.lower() in message.lower(), message
    assert _count_requests(world, requested_by=DAVE.subject) == 0


def test_bad_headers_ids_and_queries_answer_400_or_404(world: World) -> None:
    for key in ("", "has space", "x" * 129, "semi;colon", "é".encode()):
        response = world.post(GOOD, who=DAVE, key=key)
        assert response.status_code == 400, (key, response.text)
        assert response.json()["error"]["message"].startswith("Idempotency-Key")
    wrong_type = world.client.post(
        POST, content=json.dumps(GOOD), headers={**DAVE.headers, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 400 and "Content-Type" in wrong_type.json()["error"]["message"]
    assert _count_requests(world, requested_by=DAVE.subject) == 0

    unknown = world.client.get(f"{REQUESTS}/00000000-0000-4000-8000-000000000000", headers=DAVE.headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["name"] == "NotFoundError"
    for bad in ("not-a-uuid", "1234", "00000000-0000-4000-8000-00000000000g", "%27%20OR%201%3D1"):
        response = world.client.get(f"{REQUESTS}/{bad}", headers=DAVE.headers)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["message"].startswith("requestId")
    for params in (
        {"state": "DONE"},
        {"limit": "0"},
        {"limit": "201"},
        {"cursor": "bm9wZQ"},
        {"cursor": "!!"},
    ):
        response = world.client.get(REQUESTS, params=params, headers=DAVE.headers)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["name"] == "InputError"


def test_only_admins_see_or_file_reprocess_requests(world: World) -> None:
    assert world.client.post(POST, json=GOOD).status_code == 401
    assert world.client.get(REQUESTS).status_code == 401
    for call in (
        lambda: world.post(GOOD, who=READER),
        lambda: world.client.get(REQUESTS, headers=READER.headers),
        lambda: world.client.get(f"{REQUESTS}/00000000-0000-4000-8000-000000000000", headers=READER.headers),
    ):
        response = call()
        assert response.status_code == 403, response.text
        assert response.json()["error"]["name"] == "NotAllowedError"
    assert _count_requests(world, requested_by=READER.subject) == 0


def test_list_is_newest_first_with_cursor_pages_and_state_filter(world: World) -> None:
    created = [
        world.post({**GOOD, "periods": [f"2025-{m:02d}"], "reason": f"list check {m}"}, who=ERIN).json()[
            "requestId"
        ]
        for m in range(1, 4)
    ]
    everything = world.client.get(REQUESTS, headers=ERIN.headers).json()
    total = everything["totalItems"]
    assert total >= 3
    ids = [item["requestId"] for item in everything["items"]]
    assert ids[:3] == created[::-1]
    assert set(everything["items"][0]) >= {
        "requestId",
        "state",
        "periods",
        "domains",
        "reason",
        "requestedBy",
        "createdAt",
        "runId",
        "message",
        "links",
    }

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(REQUESTS, params=params, headers=ERIN.headers).json()
        assert page["totalItems"] == total
        assert len(page["items"]) <= 2
        seen += [item["requestId"] for item in page["items"]]
        cursor = page["pageInfo"]["nextCursor"]
        if cursor is None:
            break
    assert seen == ids

    pending = world.client.get(REQUESTS, params={"state": "PENDING"}, headers=ERIN.headers).json()
    assert pending["items"] and all(item["state"] == "PENDING" for item in pending["items"])
    assert set(created) <= {item["requestId"] for item in pending["items"]}
    both = world.client.get(
        REQUESTS, params=[("state", "PENDING"), ("state", "LAUNCHED")], headers=ERIN.headers
    ).json()
    assert both["totalItems"] >= pending["totalItems"]
    # Settle them so later tests start from an empty queue.
    _settle(world)


def _settle(world: World) -> None:
    """Launch whatever is pending and record it, as the daemon would over two ticks."""
    world.launch(world.tick())
    assert world.tick() == []


# --- what cannot be launched ---------------------------------------------------------------------------


def _store_directly(
    world: World, periods: list[str], domains: list[str], reason: str, who: Token = ERIN
) -> str:
    """A request written to the table without the API's checks (an older version, or by hand)."""
    store = ReprocessStore(world.database_url)
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


def test_rate_limit_per_caller_holds_across_api_processes(world: World) -> None:
    settings = settings_for(
        world.database_url,
        world.landing,
        FINOPS_REPROCESS_RATE_LIMIT=2,
        FINOPS_REPROCESS_RATE_WINDOW_SECONDS=3,
    )
    # Two API processes: two apps sharing nothing but PostgreSQL.
    one = TestClient(create_app(settings, dagster_instance=world.instance, projector_interval=None))
    two = TestClient(create_app(settings, dagster_instance=world.instance, projector_interval=None))

    def body(n: int, **extra: Any) -> dict[str, Any]:
        return {"periods": ["2025-01"], "domains": ["native"], "reason": f"rate check {n}", **extra}

    first = one.post(POST, json=body(1), headers={**FRANK.headers, "Idempotency-Key": "rate-1"})
    assert first.status_code == 202, first.text
    assert two.post(POST, json=body(2, dryRun=True), headers=FRANK.headers).status_code == 200
    limited = one.post(POST, json=body(3), headers=FRANK.headers)
    assert limited.status_code == 429, limited.text
    error = limited.json()
    assert error["error"]["name"] == "TooManyRequestsError"
    assert error["response"] == {"statusCode": 429}
    assert FRANK.subject in error["error"]["message"] and "retry in" in error["error"]["message"]
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 3
    assert two.post(POST, json=body(4, dryRun=True), headers=FRANK.headers).status_code == 429
    # A replay is not a new request: it is answered, not limited.
    replay = two.post(POST, json=body(1), headers={**FRANK.headers, "Idempotency-Key": "rate-1"})
    assert replay.status_code == 202 and replay.json()["requestId"] == first.json()["requestId"]
    # Another caller has a budget of their own.
    assert two.post(POST, json=body(5), headers=GRACE.headers).status_code == 202
    assert _count_requests(world, requested_by=FRANK.subject) == 1

    time.sleep(retry_after)
    again = two.post(POST, json=body(3), headers=FRANK.headers)
    assert again.status_code == 202, again.text
    assert _count_requests(world, requested_by=FRANK.subject) == 2
    _settle(world)


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
        store = ReprocessStore(database_url)
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
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)

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
