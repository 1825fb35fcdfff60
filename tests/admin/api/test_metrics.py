"""GET /metrics after real runs (successes, a failed domain, a quality gate), checked against the
warehouse and Dagster's own records, computed here without the plugin's read model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterEventType
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from finops_admin_plugin.app import create_app
from finops_admin_plugin.readmodel import reindex
from finops_admin_plugin.readmodel.metrics import DURATION_BUCKETS, GATES
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.contract import DOMAINS, MATERIALIZED_VIEWS, LoadMeta, domain_of_step
from tests.history import History
from tests.support import metadata_values, run_events, stop_group

BASE = "/finops/admin"
ADMIN_TOKEN = "metrics-admin-token-0123456789"
READER_TOKEN = "metrics-reader-token-0123456789"


@pytest.fixture(scope="module")
def client(finops_history: History) -> Iterator[TestClient]:
    import json

    settings = AdminSettings(
        FINOPS_DATABASE_URL=finops_history.readmodel_url,
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=json.dumps(
            [
                {"token": ADMIN_TOKEN, "subject": "component:default/prometheus", "role": "admin"},
                {"token": READER_TOKEN, "subject": "component:default/board", "role": "user"},
            ]
        ),
        FINOPS_USER_ACCESS="read",
    )
    reindex(settings, finops_history.instance)
    app = create_app(settings, dagster_instance=finops_history.instance, projector_interval=None)
    with TestClient(app) as test_client:
        yield test_client


def _scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get(f"{BASE}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _loads(finops_history: History) -> list[dict[str, Any]]:
    """Every domain load in Dagster's events: per period its figures and quality, and when it ended."""
    found = []
    for run_id in finops_history.finops_ids:
        for event in run_events(finops_history.instance, run_id):
            domain = domain_of_step(event.step_key or "")
            output = event.event_type == DagsterEventType.STEP_OUTPUT
            if domain is None or not (output or event.event_type == DagsterEventType.STEP_FAILURE):
                continue
            data = event.event_specific_data
            metadata = (
                data.metadata
                if output
                else (data.user_failure_data.metadata if data.user_failure_data else {})
            )
            periods = metadata_values(metadata).get(LoadMeta.PERIODS) or {}
            found.append({"run_id": run_id, "domain": domain, "periods": periods})
    return found


def test_metrics_after_real_runs_match_the_warehouse_and_dagster(
    client: TestClient, finops_history: History
) -> None:
    samples = _scrape(client)
    loads = _loads(finops_history)

    # Rows now in the warehouse, per (domain, period): what the last successful load left.
    with psycopg.connect(finops_history.warehouse_url) as conn:
        counted = {
            (domain, period): n
            for domain, period, n in conn.execute(
                "SELECT domain, period, count(*) FROM finops.releves GROUP BY 1, 2"
            ).fetchall()
        }
    rows = {(dict(k)["domain"], dict(k)["period"]): v for k, v in samples["finops_releves_rows"].items()}
    assert rows == {k: float(v) for k, v in counted.items()}
    assert set(samples["finops_load_last_success_timestamp_seconds"]) == set(samples["finops_releves_rows"])

    read: Counter[str] = Counter()
    loaded: Counter[str] = Counter()
    rejected: Counter[tuple[str, str]] = Counter()
    gates: Counter[tuple[str, str]] = Counter()
    for load in loads:
        for values in load["periods"].values():
            quality = values[LoadMeta.QUALITY]
            read[load["domain"]] += quality["rows_read"] or 0
            loaded[load["domain"]] += quality["rows_loaded"] or 0
            for item in quality["rejected"]:
                rejected[(load["domain"], item["reason"])] += item["count"]
            if quality["gate"]:
                gates[(load["domain"], quality["gate"])] += 1
    assert sum(gates.values()) >= 1  # the broken month's gate
    assert sum(rejected.values()) >= 1
    for domain in DOMAINS:
        assert samples["finops_load_rows_read_total"][(("domain", domain),)] == read[domain]
        assert samples["finops_load_rows_loaded_total"][(("domain", domain),)] == loaded[domain]
        for gate in GATES:
            key = (("domain", domain), ("gate", gate))
            assert samples["finops_quality_gate_failures_total"][key] == gates[(domain, gate)]
    assert {
        (dict(k)["domain"], dict(k)["reason"]): v
        for k, v in samples["finops_load_rows_rejected_total"].items()
    } == {k: float(v) for k, v in rejected.items()}

    # Runs, as the API lists them.
    items = client.get(
        f"{BASE}/runs", params={"limit": 200}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ).json()["items"]
    by_status = Counter((i["status"], i["trigger"]) for i in items)
    for (status, trigger), n in by_status.items():
        assert samples["finops_runs_total"][(("status", status), ("trigger", trigger))] == n
    assert sum(samples["finops_runs_total"].values()) == len(items)
    active = [i for i in items if i["status"] in ("QUEUED", "RUNNING")]
    assert samples["finops_runs_in_progress"][()] == len(active) >= 1
    finished = [
        i for i in items if i["status"] not in ("QUEUED", "RUNNING") and i["durationSeconds"] is not None
    ]
    assert samples["finops_run_duration_seconds_count"][()] == len(finished)
    assert samples["finops_run_duration_seconds_sum"][()] == pytest.approx(
        sum(i["durationSeconds"] for i in finished)
    )
    for bound in DURATION_BUCKETS:
        assert samples["finops_run_duration_seconds_bucket"][(("le", f"{bound:g}"),)] == sum(
            1 for i in finished if i["durationSeconds"] <= bound
        )

    # MV refreshes: the newest materialization of each MV asset in the runs' events.
    newest: dict[str, float] = {}
    for run_id in finops_history.finops_ids:
        for entry in finops_history.instance.all_logs(run_id):
            event = entry.dagster_event
            if event is not None and event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                path = event.event_specific_data.materialization.asset_key.path
                if path[-1] in MATERIALIZED_VIEWS:
                    newest[path[-1]] = max(newest.get(path[-1], 0.0), entry.timestamp)
    assert newest
    refreshed = {dict(k)["mv"]: v for k, v in samples["finops_mv_last_refresh_timestamp_seconds"].items()}
    assert refreshed == pytest.approx(newest)
    assert set(dict(k)["mv"] for k in samples["finops_mv_refresh_duration_seconds"]) == set(newest)

    # Caught up: the read model was just rebuilt.
    assert 0 <= samples["finops_readmodel_lag_seconds"][()] < 5
    assert samples["finops_readmodel_runs_to_reproject"][()] == 0


def test_metrics_are_for_admins(client: TestClient) -> None:
    assert client.get(f"{BASE}/metrics").status_code == 401
    forbidden = client.get(f"{BASE}/metrics", headers={"Authorization": f"Bearer {READER_TOKEN}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["name"] == "NotAllowedError"


def test_daemon_heartbeats_are_exposed_as_dagster_records_them(
    client: TestClient, finops_history: History, tmp_path: Path
) -> None:
    """A real `dagster-daemon` beats for a few seconds; each daemon's last beat is a sample."""
    home = finops_history.instance.root_directory
    env = {
        **os.environ,
        "DAGSTER_HOME": home,
        "FINOPS_SCHEDULE_ENABLED": "false",  # nothing is launched meanwhile
        "FINOPS_LANDING_URI": str(finops_history.landing),
        "FINOPS_DATABASE_URL": finops_history.warehouse_url,
    }
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: finops_pipeline.definitions\n"
        "      attribute: defs\n      location_name: finops\n"
    )
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not finops_history.instance.get_daemon_heartbeats() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop_group(daemon)
    beats = {name: beat.timestamp for name, beat in finops_history.instance.get_daemon_heartbeats().items()}
    assert beats, "dagster-daemon wrote no heartbeat within 90 s"
    samples = _scrape(client)["finops_dagster_daemon_heartbeat_timestamp_seconds"]
    assert {dict(k)["daemon"]: v for k, v in samples.items()} == pytest.approx(beats)
