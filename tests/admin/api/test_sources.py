"""GET /sources on a real PostgreSQL whose `finops_sources` tables are written through the
pipeline's own interface (`record_scan`, `record_load`), one month in each state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from finops_admin_plugin.app import create_app
from finops_admin_plugin.models.sources import SOURCE_STATES
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.periods import add_months, format_period
from finops_pipeline.sources.model import Delivery, DeliveryFile, IncompleteDelivery, SourceScan
from finops_pipeline.sources.state import ensure_schema, record_load, record_scan

BASE = "/finops/admin"
ADMIN_TOKEN = "sources-admin-token-0123456789"
READER_TOKEN = "sources-reader-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
READER = {"Authorization": f"Bearer {READER_TOKEN}"}

SOURCES_FILE = """\
sources:
  - name: aws-payer
    domain: public
    kind: aws-data-exports
    uri: s3://billing-exports/cur/payer
    storage:
      endpoint_url: http://minio:9000
      secret_access_key_env: PAYER_SECRET
    expected_day: 3
  - name: azure-ea
    domain: public
    kind: azure-cost-exports
    uri: az://cost-exports/focus/ea
  - name: oci-tenancy
    domain: native
    kind: oci-focus-reports
    uri: s3://oci-mirror/reports
    expected_day: 5
"""


def _months_back(n: int) -> str:
    today = datetime.now(UTC).date()
    return format_period(add_months(date(today.year, today.month, 1), -n))


P = [_months_back(i) for i in range(7)]  # P[0] the current month, P[1] the previous one…


def _delivery(source: str, period: str, delivery_id: str, files: int, at: datetime) -> Delivery:
    return Delivery(
        source=source,
        period=period,
        delivery_id=delivery_id,
        delivered_at=at,
        files=tuple(
            DeliveryFile(
                uri=f"s3://billing-exports/cur/payer/data/BILLING_PERIOD={period}/part-{i}.parquet",
                relative=f"data/BILLING_PERIOD={period}/part-{i}.parquet",
                size=1000 + i,
            )
            for i in range(files)
        ),
        manifest=f"metadata/BILLING_PERIOD={period}/payer-Manifest.json",
    )


@dataclass
class World:
    url: str
    now: datetime
    deliveries: dict[str, Delivery]


def _write_history(url: str) -> World:
    """aws-payer: P0 PENDING, P1 LOADED, P2 FAILED (the previous delivery still loaded),
    P3 INCOMPLETE, P4 nothing (MISSING), P5 LOADED. oci-tenancy: its listing failed."""
    now = datetime.now(UTC).replace(microsecond=0)
    d = {
        "p0": _delivery("aws-payer", P[0], '"etag-p0"', 2, now - timedelta(hours=3)),
        "p1": _delivery("aws-payer", P[1], '"etag-p1"', 3, now - timedelta(days=20)),
        "p2_old": _delivery("aws-payer", P[2], '"etag-p2-old"', 1, now - timedelta(days=60)),
        "p2_new": _delivery("aws-payer", P[2], '"etag-p2-new"', 4, now - timedelta(days=10)),
        "p5": _delivery("aws-payer", P[5], '"etag-p5"', 1, now - timedelta(days=150)),
    }
    incomplete = IncompleteDelivery(
        "aws-payer", P[3], now - timedelta(hours=30), 5, "no manifest for BILLING_PERIOD=" + P[3]
    )
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_schema(conn)
        # Two scans, as the sensor makes them: the older delivery of P2 first, then the newer one.
        record_scan(conn, SourceScan("aws-payer", now - timedelta(days=30), {P[2]: d["p2_old"]}))
        record_load(conn, d["p2_old"], "run-p2-old", "LOADED")
        record_load(conn, d["p5"], "run-p5", "LOADED")
        scan = SourceScan(
            "aws-payer",
            now - timedelta(minutes=1),
            {P[0]: d["p0"], P[1]: d["p1"], P[2]: d["p2_new"], P[5]: d["p5"]},
            [incomplete],
        )
        record_scan(conn, scan)
        record_load(conn, d["p1"], "run-p1", "LOADED")
        record_load(
            conn,
            d["p2_new"],
            "run-p2-new",
            "FAILED",
            "incomplete_delivery",
            "data/part-3.parquet: the manifest says 1003 bytes, the file has 12",
        )
        record_scan(
            conn,
            SourceScan("oci-tenancy", now - timedelta(minutes=2)),
            error="AccessDenied: the bucket oci-mirror refused the listing; check the credentials",
        )
    return World(url, now, d)


def _settings(url: str, **extra: Any) -> AdminSettings:
    return AdminSettings(
        FINOPS_DATABASE_URL=url,
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=json.dumps(
            [
                {"token": ADMIN_TOKEN, "subject": "user:default/admin", "role": "admin"},
                {"token": READER_TOKEN, "subject": "user:default/reader", "role": "user"},
            ]
        ),
        **extra,
    )


@pytest.fixture
def sources_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES_FILE, encoding="utf-8")
    return path


@pytest.fixture
def world(database_url: str) -> World:
    return _write_history(database_url)


@pytest.fixture
def client(world: World, sources_file: Path) -> Iterator[TestClient]:
    app = create_app(
        _settings(world.url, FINOPS_SOURCES=str(sources_file), FINOPS_USER_ACCESS="read"),
        projector_interval=None,
    )
    with TestClient(app) as test_client:
        yield test_client


def _get(client: TestClient, query: str = "", headers: dict[str, str] = ADMIN) -> dict[str, Any]:
    response = client.get(f"{BASE}/sources{query}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_state_of_a_month(client: TestClient, world: World) -> None:
    body = _get(client)
    assert body["sourcesFile"] is True
    assert [s["name"] for s in body["items"]] == ["aws-payer", "azure-ea", "oci-tenancy"]
    aws = body["items"][0]
    assert aws["kind"] == "aws-data-exports" and aws["domain"] == "public"
    assert aws["location"] == "s3://billing-exports/cur/payer"
    assert aws["expectedDay"] == 3
    assert aws["lastScan"]["error"] is None
    months = {m["period"]: m for m in aws["months"]}
    assert [m["period"] for m in aws["months"]] == sorted(months, reverse=True)
    assert {p: months[p]["state"] for p in P[:6]} == {
        P[0]: "PENDING",
        P[1]: "LOADED",
        P[2]: "FAILED",
        P[3]: "INCOMPLETE",
        P[4]: "MISSING",
        P[5]: "LOADED",
    }
    # Nothing before the oldest month the source holds is expected of it.
    assert P[6] not in months

    pending = months[P[0]]
    assert pending["latest"] == {
        "deliveryId": '"etag-p0"',
        "deliveredAt": (world.now - timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
        "files": 2,
        "bytes": 1000 + 1001,
    }
    assert pending["loaded"] is None and pending["failure"] is None

    loaded = months[P[1]]
    assert loaded["loaded"]["deliveryId"] == '"etag-p1"' and loaded["loaded"]["runId"] == "run-p1"
    assert loaded["latest"]["files"] == 3

    failed = months[P[2]]
    assert failed["latest"]["deliveryId"] == '"etag-p2-new"'
    # `loaded` is the previous delivery: its rows are the ones in the warehouse.
    assert failed["loaded"]["deliveryId"] == '"etag-p2-old"' and failed["loaded"]["runId"] == "run-p2-old"
    assert failed["failure"]["runId"] == "run-p2-new"
    assert failed["failure"]["gate"] == "incomplete_delivery"
    assert "1003 bytes" in failed["failure"]["message"]

    incomplete = months[P[3]]
    assert incomplete["latest"] is None and incomplete["loaded"] is None
    assert incomplete["incomplete"]["files"] == 5
    assert incomplete["incomplete"]["since"] == (world.now - timedelta(hours=30)).isoformat().replace(
        "+00:00", "Z"
    )
    assert 30 * 3600 <= incomplete["incomplete"]["ageSeconds"] < 31 * 3600
    assert incomplete["incomplete"]["reason"].startswith("no manifest")

    missing = months[P[4]]
    assert (missing["latest"], missing["loaded"], missing["incomplete"]) == (None, None, None)
    next_month = add_months(date.fromisoformat(P[4] + "-01"), 1)
    assert missing["expectedBy"] == f"{format_period(next_month)}-03T00:00:00Z"


def test_a_source_never_listed_has_no_month_and_a_failed_listing_says_why(client: TestClient) -> None:
    azure, oci = _get(client)["items"][1:]
    assert azure["lastScan"] is None and azure["months"] == [] and azure["expectedDay"] is None
    # Listed (unsuccessfully): the months past their deadline are MISSING, the error is shown.
    assert oci["lastScan"]["error"].startswith("AccessDenied")
    assert oci["months"] and {m["state"] for m in oci["months"]} == {"MISSING"}
    assert len(oci["months"]) == 1


def test_limit_and_its_bounds(client: TestClient) -> None:
    months = _get(client, "?limit=2")["items"][0]["months"]
    assert [m["period"] for m in months] == P[:2]
    for bad in ("0", "121", "many"):
        response = client.get(f"{BASE}/sources?limit={bad}", headers=ADMIN)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["name"] == "InputError"
        assert "limit" in response.json()["error"]["message"]


def test_readers_see_sources_as_they_see_runs(client: TestClient) -> None:
    assert _get(client, headers=READER)["items"]
    assert client.get(f"{BASE}/sources").status_code == 401


def test_a_reader_without_read_access_is_refused(world: World, sources_file: Path) -> None:
    app = create_app(_settings(world.url, FINOPS_SOURCES=str(sources_file)), projector_interval=None)
    with TestClient(app) as client:
        response = client.get(f"{BASE}/sources", headers=READER)
    assert response.status_code == 403
    assert response.json()["error"]["name"] == "NotAllowedError"


def test_before_the_pipeline_ran_every_source_is_listed_without_months(
    database_url: str, sources_file: Path
) -> None:
    app = create_app(_settings(database_url, FINOPS_SOURCES=str(sources_file)), projector_interval=None)
    with TestClient(app) as client:
        body = _get(client)
    assert [(s["name"], s["months"], s["lastScan"]) for s in body["items"]] == [
        ("aws-payer", [], None),
        ("azure-ea", [], None),
        ("oci-tenancy", [], None),
    ]


def test_without_a_sources_file_each_domain_has_its_landing_source(database_url: str) -> None:
    app = create_app(
        _settings(database_url, FINOPS_LANDING_URI="s3://landing/finops/"), projector_interval=None
    )
    with TestClient(app) as client:
        body = _get(client)
    assert body["sourcesFile"] is False
    assert [(s["name"], s["domain"], s["kind"], s["location"]) for s in body["items"]] == [
        (f"landing-{d}", d, "landing", f"s3://landing/finops/{d}")
        for d in ("open", "private", "public", "native")
    ]


def test_without_sources_file_nor_landing_uri_the_location_is_unknown(database_url: str) -> None:
    app = create_app(_settings(database_url), projector_interval=None)
    with TestClient(app) as client:
        body = _get(client)
    assert [(s["name"], s["location"]) for s in body["items"]] == [
        ("landing-open", None),
        ("landing-private", None),
        ("landing-public", None),
        ("landing-native", None),
    ]


def test_a_bad_sources_file_is_a_503_naming_its_line(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES_FILE.replace("kind: azure-cost-exports", "kind: azure-csv"), encoding="utf-8")
    app = create_app(_settings(database_url, FINOPS_SOURCES=str(path)), projector_interval=None)
    with TestClient(app) as client:
        response = client.get(f"{BASE}/sources", headers=ADMIN)
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert f"{path}:12" in message and "unknown kind 'azure-csv'" in message
        # Fixed on disk: seen at the next request, without a restart.
        path.write_text(SOURCES_FILE, encoding="utf-8")
        assert [s["name"] for s in _get(client)["items"]] == ["aws-payer", "azure-ea", "oci-tenancy"]


def test_metrics_per_source(client: TestClient, world: World) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get(f"{BASE}/metrics", headers=ADMIN)
    assert response.status_code == 200, response.text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name.startswith("finops_source_")
    }

    def value(name: str, source: str, **labels: str) -> float | None:
        domain = {"aws-payer": "public", "azure-ea": "public", "oci-tenancy": "native"}[source]
        key = tuple(sorted({"source": source, "domain": domain, **labels}.items()))
        return samples.get((name, key))

    d = world.deliveries
    newest = max(x.delivered_at for x in d.values())
    assert value("finops_source_last_delivery_timestamp_seconds", "aws-payer", kind="aws-data-exports") == (
        newest.timestamp()
    )
    assert (
        value("finops_source_last_delivery_timestamp_seconds", "azure-ea", kind="azure-cost-exports") is None
    )
    loaded_at = value("finops_source_last_loaded_timestamp_seconds", "aws-payer")
    assert loaded_at is not None and abs(loaded_at - world.now.timestamp()) < 600
    assert value("finops_source_incomplete_deliveries", "aws-payer") == 1
    assert value("finops_source_incomplete_deliveries", "azure-ea") == 0
    age = value("finops_source_incomplete_oldest_age_seconds", "aws-payer")
    assert age is not None and 30 * 3600 <= age < 31 * 3600
    pending = value("finops_source_pending_oldest_age_seconds", "aws-payer")
    assert pending is not None and 3 * 3600 <= pending < 4 * 3600
    states = {s: value("finops_source_months", "aws-payer", state=s) for s in SOURCE_STATES}
    assert states == {"LOADED": 2, "PENDING": 1, "INCOMPLETE": 1, "FAILED": 1, "MISSING": 1}
    assert value("finops_source_months", "azure-ea", state="MISSING") == 0
    assert value("finops_source_scan_failing", "oci-tenancy") == 1
    assert value("finops_source_scan_failing", "aws-payer") == 0
    assert value("finops_source_last_scan_timestamp_seconds", "azure-ea") is None
