"""GET /failures and the run list's `signature=`: one cause that failed three real runs is one
signature with count 3, seen in the list and the detail of each of its runs (tests/failures_world.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_admin_plugin.models import FailureCollectionResponse, RunDetailResponse
from finops_admin_plugin.readmodel import Projector
from finops_admin_plugin.readmodel.metrics import render
from tests.failures_world import FailuresWorld as World
from tests.failures_world import failures_world

BASE = "/finops/admin"


@pytest.fixture(scope="module")
def world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with failures_world(pg_base_url, tmp_path_factory.mktemp("failures")) as (built, settings):
        app = create_app(settings, dagster_instance=built.instance, projector_interval=None)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            # The last run is followed by the projector (`save`), the others came by reindex (COPY).
            built.add_broken_run()
            resources = client.app.state.finops  # type: ignore[attr-defined]
            Projector(resources.source, resources.store).tick()
            built.client = client
            yield built


def _failures(world: World, **params: str | int) -> dict:
    response = world.client.get(f"{BASE}/failures", params=params)
    assert response.status_code == 200, response.text
    FailureCollectionResponse.model_validate(response.json())
    return response.json()


def test_one_cause_of_three_runs_is_one_signature_with_count_3(world: World) -> None:
    body = _failures(world)
    assert body["totalItems"] == 2
    latest, plan = body["items"]  # the broken export failed last
    assert latest["count"] == 3
    assert latest["kind"] == "unreadable_file"
    assert "<path>/export-<n>.parquet" in latest["text"]
    assert not any(period in latest["text"] for period in world.periods)
    assert latest["domains"] == ["native"]
    assert latest["sources"] == ["native-drop"]
    assert latest["runs"] == world.broken[::-1]
    assert latest["firstSeen"] < latest["lastSeen"]
    assert plan["count"] == 1 and plan["runs"] == [world.plan_failed]
    assert plan["domains"] == ["open"] and plan["sources"] == []


def test_the_run_list_filters_by_signature_and_says_seen_in_n_runs(world: World) -> None:
    latest = _failures(world)["items"][0]
    response = world.client.get(f"{BASE}/runs", params={"signature": latest["signature"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["runId"] for item in body["items"]] == world.broken[::-1]
    assert body["totalItems"] == 3
    for item in body["items"]:
        assert item["errors"]["signature"] == latest["signature"]
        assert item["errors"]["seenInRuns"] == 3
        assert item["errors"]["firstSeen"] == latest["firstSeen"]
    ok = world.client.get(f"{BASE}/runs", params={"q": world.ok}).json()["items"][0]
    assert ok["errors"] == {
        "count": 0,
        "message": None,
        "signature": None,
        "seenInRuns": None,
        "firstSeen": None,
    }


def test_the_detail_says_seen_in_n_runs(world: World) -> None:
    latest = _failures(world)["items"][0]
    response = world.client.get(f"{BASE}/runs/{world.broken[0]}")
    assert response.status_code == 200, response.text
    errors = RunDetailResponse.model_validate(response.json()).errors
    assert (errors.signature, errors.seen_in_runs) == (latest["signature"], 3)
    assert errors.first_seen is not None


def test_pages_window_and_bad_input(world: World) -> None:
    first = _failures(world, limit=1)
    assert len(first["items"]) == 1 and first["totalItems"] == 2
    second = _failures(world, limit=1, cursor=first["pageInfo"]["nextCursor"])
    assert second["items"][0]["runs"] == [world.plan_failed]
    assert second["pageInfo"]["nextCursor"] is None
    assert _failures(world, to="2000-01-01")["items"] == []
    assert _failures(world, **{"from": "2000-01-01"})["totalItems"] == 2
    bad = {
        "/failures?from=yesterday": "from must be an ISO date",
        "/failures?from=2026-02-01&to=2026-01-01": "is after to",
        "/failures?cursor=abc": "cursor is not valid",
        "/failures?limit=0": "limit",
        f"/failures?cursor={first['pageInfo']['nextCursor']}&to=2099-01-01": "other filters",
        "/runs?signature=zz": "signature must be a failure signature",
    }
    for path, message in bad.items():
        response = world.client.get(BASE + path)
        assert response.status_code == 400, path
        assert response.json()["error"]["name"] == "InputError"
        assert message in response.json()["error"]["message"], path


def test_metrics_count_runs_per_signature(world: World) -> None:
    store = world.client.app.state.finops.store  # type: ignore[attr-defined]
    latest = _failures(world)["items"][0]
    text = render(store, None).decode()
    assert (
        f'finops_failure_signature_runs{{kind="unreadable_file",signature="{latest["signature"]}"}} 3.0'
        in text
    )


def test_reindex_keeps_the_signatures(world: World) -> None:
    # A reindex rebuilds the same signatures from Dagster (the id is a pure function of the cause).
    resources = world.client.app.state.finops  # type: ignore[attr-defined]
    before = _failures(world)["items"]
    Projector(resources.source, resources.store).reindex()
    assert _failures(world)["items"] == before


def _counted(world: World) -> tuple[list[tuple], list[tuple]]:
    """`signature_counts` as the triggers keep it, and counting `failures` now."""
    store = world.client.app.state.finops.store  # type: ignore[attr-defined]
    with store.connection() as conn:
        kept = conn.execute(
            "SELECT signature, runs, first_seen FROM finops_admin.signature_counts ORDER BY 1"
        ).fetchall()
        counted = conn.execute(
            "SELECT signature, count(*), min(failed_at) FROM finops_admin.failures GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return kept, counted


def test_signature_counts_follow_every_write(world: World) -> None:
    """What the list and detail read ("seen in N runs since ...") is what counting would say,
    after a reindex (TRUNCATE + COPY), a run deleted (cascade), and a run projected again."""
    resources = world.client.app.state.finops  # type: ignore[attr-defined]
    kept, counted = _counted(world)
    assert kept == counted and [n for _, n, _ in kept] == [3, 1]
    first = world.broken[0]  # the first to fail: its removal moves first_seen
    with resources.store.connection() as conn:
        resources.store.delete_run(conn, first)
    kept, counted = _counted(world)
    assert kept == counted and sorted(n for _, n, _ in kept) == [1, 2]
    second = world.client.get(f"{BASE}/runs/{world.broken[1]}").json()["errors"]
    assert second["seenInRuns"] == 2
    assert second["firstSeen"] == _failures(world)["items"][0]["firstSeen"]
    record = resources.source.run_record(first)
    with resources.store.connection() as conn:
        Projector(resources.source, resources.store).project(conn, record)
        Projector(resources.source, resources.store).project(conn, record)  # saved again: same counts
    kept, counted = _counted(world)
    assert kept == counted and [n for _, n, _ in kept] == [3, 1]
    assert world.client.get(f"{BASE}/runs/{first}").json()["errors"]["seenInRuns"] == 3
