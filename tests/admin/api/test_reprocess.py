"""Reprocess through the admin API: dry run, filing, idempotency, validation, rate limit, listing."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterRunStatus,
)
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_admin_plugin.settings import API_BASE_PATH
from finops_pipeline.contract import (
    MATERIALIZED_VIEWS,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REASON,
    TAG_REPROCESS_REQUEST_ID,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    load_step_key,
)
from tests.reprocess_world import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    FRANK,
    GOOD,
    GRACE,
    POST,
    READER,
    REQUESTS,
    World,
    _materialized_mvs,
    _run_in_list,
    settings_for,
)
from tests.support import (
    counts_by_pair,
    output_metadata,
    query,
    run_ids_by_pair,
)

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
    metadata = output_metadata(world.instance, run_id)
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
        # The dry run announces, per currency and to the digit, what the run then loaded.
        announced = {m["currency"]: m["amount"] for m in pair["landing"]["billedCost"]}
        assert announced == per_period["billed_cost"]
        assert all(isinstance(m["amount"], str) for m in pair["landing"]["billedCost"])
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
            f"SELECT count(*) FROM finops_reprocess.reprocess_requests WHERE {clauses}",
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
