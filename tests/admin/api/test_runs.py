"""GET /runs and GET /runs/{runId} over HTTP, on a real history: fields, filters, sorts, pages, bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from dagster import DagsterEventType, DagsterInstance
from fastapi.testclient import TestClient

from finops_admin_plugin.api.runs import csv_columns
from finops_admin_plugin.app import create_app
from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.logs import build_excerpt
from finops_admin_plugin.mapping.runs import detail_payload, map_run_detail
from finops_admin_plugin.models import RunCollectionResponse, RunDetailResponse
from finops_admin_plugin.readmodel import reindex
from finops_admin_plugin.readmodel.failures import signed
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.contract import LoadMeta, domain_of_step
from tests.history import History
from tests.support import metadata_values, run_events

BASE = "/finops/admin"
UI = "http://dagster.example:3000"
TEMPLATE = "https://logs.example/app?run={runId}&step={stepKey}&from={start}"


def window_start(run: dict[str, Any]) -> str:
    """`{start}` of a link: the run's start less the default 5-minute margin, ISO 8601 UTC in ms
    (a run that never started: an hour before its end, or `now-1h`)."""
    if run["startTime"]:
        moment = datetime.fromisoformat(run["startTime"]).astimezone(UTC)
    elif run["endTime"]:
        moment = datetime.fromisoformat(run["endTime"]).astimezone(UTC) - timedelta(hours=1)
    else:
        return "now-1h"
    moment -= timedelta(minutes=5)
    return quote(moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z", safe="")


SUMMARY_KEYS = (
    "status", "dagsterStatus", "trigger", "launchedBy", "reprocessRequestId", "reason", "domains",
    "domainStatuses", "createdTime", "startTime", "endTime", "durationSeconds", "volumes", "errors",
    "version",
)  # fmt: skip
LIST_PARAMETERS = (
    "status", "period", "domain", "trigger", "from", "to", "q", "anomalous", "limit", "cursor", "sort",
    "format",
)  # fmt: skip


def _counted(value: Any, key: str) -> Any:
    """`errors` without what the API counts when asked (runs sharing the signature, since when)."""
    if key != "errors":
        return value
    assert (value["seenInRuns"] is None) == (value["signature"] is None)
    return {**value, "seenInRuns": None, "firstSeen": None}


@pytest.fixture(scope="module")
def settings(finops_history: History) -> AdminSettings:
    return AdminSettings(
        FINOPS_DATABASE_URL=finops_history.readmodel_url,
        FINOPS_AUTH_MODE="dev",
        FINOPS_DAGSTER_UI_URL=UI,
        FINOPS_LOGS_URL_TEMPLATE=TEMPLATE,
    )


@pytest.fixture(scope="module")
def client(finops_history: History, settings: AdminSettings) -> Iterator[TestClient]:
    reindex(settings, finops_history.instance)
    # The test decides when the read model follows Dagster (`project()`), so expectations are exact.
    app = create_app(settings, dagster_instance=finops_history.instance, projector_interval=None)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def project(client: TestClient) -> None:
    from finops_admin_plugin.readmodel import Projector

    resources = client.app.state.finops  # type: ignore[attr-defined]
    Projector(resources.source, resources.store).tick()


def names(history: History, body: dict[str, Any]) -> list[str]:
    return [history.name_of(item["runId"]) for item in body["items"]]


def list_names(client: TestClient, history: History, **params: Any) -> list[str]:
    response = client.get(f"{BASE}/runs", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totalItems"] == len(body["items"])
    return names(history, body)


def test_list_default_order_and_fields(client: TestClient, finops_history: History) -> None:
    response = client.get(f"{BASE}/runs")
    assert response.status_code == 200
    body = response.json()
    RunCollectionResponse.model_validate(body)

    # The list is written as text from the stored JSON: no member may appear twice in an object.
    def no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    json.loads(response.text, object_pairs_hook=no_repeated_keys)
    assert body["totalItems"] == len(finops_history.order) and body["pageInfo"]["nextCursor"] is None
    # Newest first; every run was created after the previous one.
    assert names(finops_history, body) == list(reversed(finops_history.order))
    # The list serves the read model's stored documents as they are: each must be a RunResponse,
    # and dump back to exactly what was served.
    page = RunCollectionResponse.model_validate(body)
    assert page.model_dump(by_alias=True, mode="json", exclude={"total_items"})["items"] == body["items"]
    for item in body["items"]:
        run_id = item["runId"]
        record = finops_history.instance.get_run_record_by_id(run_id)
        assert record is not None
        detail = detail_payload(signed(map_run_detail(record, finops_history.instance.all_logs(run_id)))[0])
        for key in SUMMARY_KEYS:
            assert _counted(item[key], key) == detail[key], (finops_history.name_of(run_id), key)
        assert item["periods"] == [p["period"] for p in detail["periods"]]
        assert item["links"] == {
            "self": f"{BASE}/runs/{run_id}",
            "logs": f"{BASE}/runs/{run_id}/logs",
            "dagster": f"{UI}/runs/{run_id}",
            "external": TEMPLATE.format(runId=run_id, stepKey="", start=window_start(item)),
        }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "FAILED"}, {"partial", "plan_failed"}),
        ({"status": ["queued", "RUNNING"]}, {"queued", "running"}),
        ({"status": "QUEUED,CANCELED"}, {"queued", "canceled"}),
        ({"domain": "native"}, {"cron", "partial"}),
        ({"domain": ["public", "native"]}, {"cron", "reprocess", "partial", "plan_failed"}),
        ({"period": "P2"}, {"partial"}),
        ({"period": "P1"}, {"cron", "reprocess", "canceled", "running"}),
        ({"trigger": "CRON"}, {"cron"}),
        ({"trigger": "DELIVERY"}, set()),  # a known trigger that no run of this history has
        (
            {"domain": "open", "period": "P0", "trigger": "manual"},
            {"ok_1", "ok_2", "ok_3", "partial", "outlier"},
        ),
        ({"domain": "private", "status": "SUCCESS"}, {"cron"}),
        # No run of this history has MIN_HISTORY comparable runs before it: no verdict, no anomaly.
        ({"anomalous": "true"}, set()),
    ],
)
def test_filters(
    client: TestClient, finops_history: History, params: dict[str, Any], expected: set[str]
) -> None:
    p0, p1, p2 = finops_history.periods
    resolved = {
        k: {"P0": p0, "P1": p1, "P2": p2}.get(v, v) if isinstance(v, str) else v for k, v in params.items()
    }
    found = list_names(client, finops_history, **resolved)
    assert set(found) == expected
    assert len(found) == len(set(found))


def test_anomalous_false_is_the_complement(client: TestClient, finops_history: History) -> None:
    flagged = set(list_names(client, finops_history, anomalous="true"))
    clean = set(list_names(client, finops_history, anomalous="false"))
    assert flagged.isdisjoint(clean) and flagged | clean == set(finops_history.order)


def test_run_id_search_and_time_window(client: TestClient, finops_history: History) -> None:
    cron_id = finops_history.runs["cron"]
    assert list_names(client, finops_history, q=cron_id[:8]) == ["cron"]
    assert list_names(client, finops_history, q=cron_id.upper()) == ["cron"]
    detail = {n: client.get(f"{BASE}/runs/{finops_history.runs[n]}").json() for n in ("cron", "partial")}
    window = list_names(
        client, finops_history, **{"from": detail["cron"]["startTime"], "to": detail["partial"]["startTime"]}
    )
    assert window == ["partial", "reprocess", "cron"]
    today = detail["cron"]["startTime"][:10]
    assert len(list_names(client, finops_history, **{"from": today, "to": today})) == len(
        finops_history.order
    )
    assert list_names(client, finops_history, **{"from": "2999-01-01"}) == []


def test_sorts(client: TestClient, finops_history: History) -> None:
    newest = list_names(client, finops_history)
    assert list_names(client, finops_history, sort="startTime") == list(reversed(newest))
    items = client.get(f"{BASE}/runs", params={"limit": 200, "sort": "-durationSeconds"}).json()["items"]
    durations = [i["durationSeconds"] for i in items]
    known = [d for d in durations if d is not None]
    assert known == sorted(known, reverse=True)
    assert durations[: len(known)] == known  # runs without a duration come last
    ascending = client.get(f"{BASE}/runs", params={"limit": 200, "sort": "durationSeconds"}).json()["items"]
    assert [i["runId"] for i in ascending] == [i["runId"] for i in reversed(items)]


def test_pages_return_each_run_once_while_new_runs_arrive(
    client: TestClient, finops_history: History
) -> None:
    before = set(finops_history.finops_ids)
    seen: list[str] = []
    cursor = None
    arrivals = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = client.get(f"{BASE}/runs", params=params).json()
        seen += [item["runId"] for item in body["items"]]
        cursor = body["pageInfo"]["nextCursor"]
        if arrivals < 2:  # new runs land while the operator pages
            finops_history.add_queued(
                f"arrival_{arrivals}", domains=["open"], periods=[finops_history.periods[0]]
            )
            arrivals += 1
            project(client)
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == before
    assert client.get(f"{BASE}/runs").json()["totalItems"] == len(before) + 2


def test_cursor_bound_to_filters_and_signed(client: TestClient) -> None:
    first = client.get(f"{BASE}/runs", params={"limit": 1, "domain": "open"}).json()
    cursor = first["pageInfo"]["nextCursor"]
    assert cursor
    ok = client.get(f"{BASE}/runs", params={"limit": 1, "domain": "open", "cursor": cursor})
    assert ok.status_code == 200 and ok.json()["items"][0]["runId"] != first["items"][0]["runId"]
    other = client.get(f"{BASE}/runs", params={"limit": 1, "domain": "native", "cursor": cursor})
    assert other.status_code == 400
    assert (
        "cursor" in other.json()["error"]["message"] and "other filters" in other.json()["error"]["message"]
    )
    body, mac = cursor.split(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    for bad in (forged, "abc", "abc.def", "." * 10, cursor + "x"):
        response = client.get(f"{BASE}/runs", params={"domain": "open", "cursor": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"]["name"] == "InputError"
        assert response.json()["error"]["message"].startswith("cursor is not valid")


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("status=DONE", "status: unknown value 'DONE'"),
        ("domain=cloud", "domain: unknown value 'cloud'"),
        ("trigger=NIGHTLY", "trigger: unknown value 'NIGHTLY'"),
        ("period=2026-13", "period must be YYYY-MM, got '2026-13'"),
        ("period=26-01", "period must be YYYY-MM, got '26-01'"),
        ("from=yesterday", "from must be an ISO date"),
        ("to=2026-02-30", "to must be an ISO date"),
        ("from=2026-11-10&to=2026-11-01", "from ('2026-11-10') is after to ('2026-11-01')"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("sort=name", "sort must be one of"),
        ("q=zz!!", "q searches run ids"),
        ("anomalous=maybe", "anomalous"),
        ("format=xml", "format"),
        ("status=" + "X" * 5000, "status: unknown value 'XXXX"),
        ("domain=%C3%A9t%C3%A9%F0%9F%98%80", "domain: unknown value 'été😀'"),
        ("status=%00", "status: unknown value '\\x00'"),
        ("period=%00", "period must be YYYY-MM"),
        ("q=%00", "q searches run ids"),
        ("from=%00", "from must be an ISO date"),
        ("status=", "status: empty value"),
        ("cursor=%00", "cursor is not valid"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(client: TestClient, query: str, needle: str) -> None:
    response = client.get(f"{BASE}/runs?{query}")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"]["name"] == "InputError"
    assert needle in body["error"]["message"]
    assert body["response"] == {"statusCode": 400} and body["request"]["method"] == "GET"
    assert len(body["error"]["message"]) < 600  # a 5000-character value is not echoed whole


def test_detail_sections(client: TestClient, finops_history: History) -> None:
    for name in finops_history.order:
        run_id = finops_history.runs[name]
        response = client.get(f"{BASE}/runs/{run_id}")
        assert response.status_code == 200, name
        body = response.json()
        RunDetailResponse.model_validate(body)
        record = finops_history.instance.get_run_record_by_id(run_id)
        assert record is not None
        direct = detail_payload(signed(map_run_detail(record, finops_history.instance.all_logs(run_id)))[0])
        for key, value in direct.items():
            if key == "blocks":
                for got, want in zip(body["blocks"], value, strict=True):
                    assert {k: v for k, v in got.items() if k not in ("links", "anomalies")} == {
                        k: v for k, v in want.items() if k != "anomalies"
                    }
            elif key != "anomalies":
                assert _counted(body[key], key) == value, (name, key)
        assert body["logs"] == {
            "downloadUrl": f"{BASE}/runs/{run_id}/logs",
            "dagsterUrl": f"{UI}/runs/{run_id}",
            "externalUrl": TEMPLATE.format(runId=run_id, stepKey="", start=window_start(body)),
            "excerpt": body["logs"]["excerpt"] if body["status"] == "FAILED" else None,
        }
        if body["status"] == "FAILED":  # failing step, end of its output (test_logs.py)
            assert body["logs"]["excerpt"]["stepKey"] and body["logs"]["excerpt"]["lines"], name
        for block in body["blocks"]:
            assert block["links"]["logs"] == f"{BASE}/runs/{run_id}/logs?step={block['domain']}"
            assert f"step={block['stepKey']}" in block["links"]["external"]
    outlier = client.get(f"{BASE}/runs/{finops_history.runs['outlier']}").json()
    # 3 comparable runs before it (ok_1..ok_3) are fewer than MIN_HISTORY: no verdict (test_money.py and
    # readmodel/test_anomalies.py have flagged runs).
    assert outlier["anomalies"] == []
    assert [m["name"] for m in outlier["aggregates"]["mvs"] if m["status"] == "SUCCESS"] == [
        m["name"] for m in outlier["aggregates"]["mvs"]
    ]


def test_detail_of_an_in_progress_run_is_fresh(client: TestClient, finops_history: History) -> None:
    run_id = finops_history.add_queued("fresh", domains=["public"], periods=[finops_history.periods[0]])
    project(client)
    run = finops_history.instance.get_run_by_id(run_id)
    assert run is not None
    finops_history.instance.report_run_canceled(run)  # not projected yet
    listed = client.get(f"{BASE}/runs", params={"q": run_id}).json()["items"][0]
    assert listed["status"] == "QUEUED"  # the list waits for the projector
    detail = client.get(f"{BASE}/runs/{run_id}").json()
    assert detail["status"] == "CANCELED" and detail["domainStatuses"]["public"] == "SKIPPED"
    project(client)
    assert client.get(f"{BASE}/runs", params={"q": run_id}).json()["items"][0]["status"] == "CANCELED"


@pytest.mark.parametrize(
    ("run_id", "status", "needle"),
    [
        ("00000000-0000-0000-0000-000000000000", 404, "no run with runId '00000000-"),
        ("not..a..run", 400, "runId must be a Dagster run id"),
        ("x" * 300, 400, "runId must be a Dagster run id"),
        ("%00", 400, "runId must be a Dagster run id"),
        ("%C3%A9t%C3%A9", 400, "runId must be a Dagster run id (letters, digits, dashes); got 'été'"),
    ],
)
def test_unknown_or_malformed_run_id(client: TestClient, run_id: str, status: int, needle: str) -> None:
    response = client.get(f"{BASE}/runs/{run_id}")
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_non_finops_run_is_not_found(client: TestClient, finops_history: History) -> None:
    run_id = finops_history.runs["other_job"]
    response = client.get(f"{BASE}/runs/{run_id}")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "name": "NotFoundError",
        "message": f"runId '{run_id}' is a run of Dagster job 'not_finops', "
        "not of the FinOps batch (finops_batch)",
    }


def test_csv_export(client: TestClient, finops_history: History) -> None:
    response = client.get(f"{BASE}/runs", params={"format": "csv", "domain": "open", "sort": "startTime"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    columns = csv_columns(["EUR"])  # the demo months bill in EUR only
    assert tuple(rows[0]) == columns and "billedCost" not in columns
    listed = client.get(f"{BASE}/runs", params={"domain": "open", "sort": "startTime", "limit": 200}).json()
    assert [r[0] for r in rows[1:]] == [i["runId"] for i in listed["items"]]
    by_id = {r[0]: dict(zip(columns, r, strict=True)) for r in rows[1:]}
    partial = by_id[finops_history.runs["partial"]]
    item = next(i for i in listed["items"] if i["runId"] == finops_history.runs["partial"])
    assert (
        partial["status"] == "FAILED"
        and partial["nativeStatus"] == "FAILED"
        and partial["openStatus"] == "SUCCESS"
    )
    assert int(partial["relevesInserted"]) == item["volumes"]["relevesInserted"]
    assert partial["errorMessage"] == item["errors"]["message"]
    assert partial["periods"] == ";".join(item["periods"])
    assert [{"currency": "EUR", "amount": partial["billedCost EUR"]}] == item["volumes"]["billedCost"]
    empty = client.get(f"{BASE}/runs", params={"format": "csv", "from": "2999-01-01"})
    assert empty.status_code == 200 and empty.text.strip() == ",".join(csv_columns([]))


def test_coverage(client: TestClient, finops_history: History) -> None:
    p0, p1, p2 = finops_history.periods
    body = client.get(f"{BASE}/coverage", params={"months": 3}).json()
    assert body["periods"] == [p0, p1, p2]
    cells = {(c["period"], c["domain"]): c for c in body["items"]}
    assert len(cells) == 12
    assert cells[(p0, "open")]["lastLoad"]["runId"] == finops_history.runs["outlier"]
    assert cells[(p0, "open")]["stale"] is False
    assert cells[(p1, "public")]["lastLoad"]["runId"] == finops_history.runs["reprocess"]
    assert cells[(p2, "open")]["lastLoad"]["runId"] == finops_history.runs["partial"]
    assert cells[(p2, "native")]["lastLoad"] is None and cells[(p2, "native")]["stale"] is True
    assert client.get(f"{BASE}/coverage", params={"months": 0}).status_code == 400


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    spec = client.get(f"{BASE}/openapi.json").json()
    parameters = {p["name"] for p in spec["paths"][f"{BASE}/runs"]["get"]["parameters"]}
    assert set(LIST_PARAMETERS) <= parameters
    assert f"{BASE}/runs/{{runId}}" in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert {"RunCollectionResponse", "RunResponse", "RunDetailResponse", "BlockResponse"} <= set(schemas)
    assert "nextCursor" in schemas["PageInfo"]["properties"]


def test_read_model_down_is_a_503(finops_history: History) -> None:
    settings = AdminSettings(
        FINOPS_DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=1",
        FINOPS_AUTH_MODE="dev",
    )
    app = create_app(settings, dagster_instance=finops_history.instance, projector_interval=None)
    with TestClient(app, base_url="http://127.0.0.1") as down:
        response = down.get(f"{BASE}/runs")
        assert response.status_code == 503
        assert response.json()["error"]["name"] == "ServiceUnavailableError"
        # The detail does not need the read model: it is built from Dagster.
        assert down.get(f"{BASE}/runs/{finops_history.runs['cron']}").status_code == 200


def test_ended_failed_run_detail_is_served_from_the_read_model_alone(
    client: TestClient, finops_history: History, dagster_instance: DagsterInstance
) -> None:
    """An ended run's detail, with a FAILED run's excerpt, needs nothing from Dagster: the API
    below reads an empty Dagster instance (it answers, and knows none of these runs)."""
    failed = [n for n in finops_history.order if client.get(f"{BASE}/runs/{finops_history.runs[n]}").json()[
        "status"
    ] == "FAILED"]  # fmt: skip
    assert failed
    tokens = [
        {"token": "excerpt-admin-token-0123456789", "subject": "component:default/ops", "role": "admin"},
        {"token": "excerpt-reader-token-0123456789", "subject": "component:default/board", "role": "user"},
    ]
    static = AdminSettings(
        FINOPS_DATABASE_URL=finops_history.readmodel_url,
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=json.dumps(tokens),
        FINOPS_USER_ACCESS="read",
        FINOPS_DAGSTER_UI_URL=UI,
        FINOPS_LOGS_URL_TEMPLATE=TEMPLATE,
    )
    app = create_app(static, dagster_instance=dagster_instance, projector_interval=None)
    with TestClient(app, base_url="http://127.0.0.1") as elsewhere:
        for name in failed:
            run_id = finops_history.runs[name]
            assert dagster_instance.get_run_record_by_id(run_id) is None
            want = build_excerpt(DagsterReader(finops_history.instance), run_id)
            assert want is not None, name
            expected = client.get(f"{BASE}/runs/{run_id}").json()
            admin = elsewhere.get(
                f"{BASE}/runs/{run_id}", headers={"Authorization": f"Bearer {tokens[0]['token']}"}
            )
            assert admin.status_code == 200, admin.text
            assert admin.json() == expected, name
            assert admin.json()["logs"]["excerpt"] == want.model_dump(by_alias=True, mode="json"), name
            # Log content stays for admins: a read-only caller gets no excerpt and no samples.
            reader = elsewhere.get(
                f"{BASE}/runs/{run_id}", headers={"Authorization": f"Bearer {tokens[1]['token']}"}
            ).json()
            assert reader["logs"]["excerpt"] is None, name
            assert all(
                not r["samples"] for b in reader["blocks"] for q in b["quality"] for r in q["rejected"]
            )


def _load_quality(finops_history: History, run_id: str) -> dict[str, dict[str, Any]]:
    """Per domain, per period: the `quality` each load op reported in Dagster's own events."""
    found: dict[str, dict[str, Any]] = {}
    for event in run_events(finops_history.instance, run_id):
        domain = domain_of_step(event.step_key or "")
        if domain is None or event.event_type not in (
            DagsterEventType.STEP_OUTPUT,
            DagsterEventType.STEP_FAILURE,
        ):
            continue
        data = event.event_specific_data
        metadata = (
            data.metadata
            if event.event_type == DagsterEventType.STEP_OUTPUT
            else data.user_failure_data.metadata
        )
        periods = metadata_values(metadata)[LoadMeta.PERIODS]
        found[domain] = {period: values[LoadMeta.QUALITY] for period, values in periods.items()}
    return found


def test_block_quality_per_period_with_samples_for_admins_only(
    client: TestClient, finops_history: History
) -> None:
    tokens = [
        {"token": "quality-admin-token-0123456789", "subject": "component:default/ops", "role": "admin"},
        {"token": "quality-reader-token-0123456789", "subject": "component:default/board", "role": "user"},
    ]
    static = AdminSettings(
        FINOPS_DATABASE_URL=finops_history.readmodel_url,
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=json.dumps(tokens),
        FINOPS_USER_ACCESS="read",
        FINOPS_DAGSTER_UI_URL=UI,
    )
    app = create_app(static, dagster_instance=finops_history.instance, projector_interval=None)
    with TestClient(app) as static_client:
        for name in ("cron", "partial"):
            run_id = finops_history.runs[name]
            expected = _load_quality(finops_history, run_id)
            admin = static_client.get(
                f"{BASE}/runs/{run_id}", headers={"Authorization": f"Bearer {tokens[0]['token']}"}
            ).json()
            reader = static_client.get(
                f"{BASE}/runs/{run_id}", headers={"Authorization": f"Bearer {tokens[1]['token']}"}
            ).json()
            assert admin["blocks"] and {b["domain"] for b in admin["blocks"] if b["quality"]} == set(expected)
            samples = 0
            for block, seen_by_reader in zip(admin["blocks"], reader["blocks"], strict=True):
                want = expected.get(block["domain"], {})
                assert [q["period"] for q in block["quality"]] == sorted(want, reverse=True), name
                for got, mine in zip(block["quality"], seen_by_reader["quality"], strict=True):
                    raw = want[got["period"]]
                    assert got["focusVersions"] == raw["focus_versions"]
                    assert (got["files"], got["rowsRead"], got["rowsLoaded"]) == (
                        raw["files"], raw["rows_read"], raw["rows_loaded"]
                    )  # fmt: skip
                    assert got["unassignedRows"] == raw["unassigned_rows"]
                    assert got["gate"] == raw["gate"]
                    # Each source's delivery, as the load recorded it ([] for the landing layout).
                    assert got["deliveries"] == [
                        {
                            "source": d["source"],
                            "deliveryId": d["delivery_id"],
                            "files": d["files"],
                            "bytes": d["bytes"],
                        }
                        for d in raw.get("deliveries", [])
                    ]
                    assert [(w["rule"], w["count"]) for w in got["warnings"]] == [
                        (w["rule"], w["count"]) for w in raw["warnings"]
                    ]
                    assert [(r["reason"], r["count"], r["samples"]) for r in got["rejected"]] == [
                        (r["reason"], r["count"], r["samples"]) for r in raw["rejected"]
                    ]
                    samples += sum(len(r["samples"]) for r in got["rejected"])
                    # A read-only caller sees the counts, never a file, line or value.
                    assert [(r["reason"], r["count"], r["samples"]) for r in mine["rejected"]] == [
                        (r["reason"], r["count"], []) for r in got["rejected"]
                    ]
            if name == "cron":
                assert samples > 0  # the demo data has rejected rows: the admin sees where
            else:
                # native's broken month failed its gate and kept its previous rows
                gated = {
                    q["period"]: q["gate"]
                    for b in admin["blocks"]
                    if b["domain"] == "native"
                    for q in b["quality"]
                }
                assert gated[finops_history.periods[2]] is not None
