"""`finops serve` as a real process: PostgreSQL outages, oversized and malformed requests, headers.

The module has its own PostgreSQL (pgserver), stopped and restarted by the outage test, a
Dagster instance with one real run, and the API started with `finops serve`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.periods import add_months, format_period, parse_period
from tests.support import OwnPostgres, free_port, own_postgres, run_batch, stop_group, write_dagster_yaml

BIN = Path(sys.executable).parent
BASE = "/finops/admin"
PERIOD = format_period(datetime.now(UTC))
PREVIOUS = format_period(add_months(parse_period(PERIOD), -1))


@dataclass
class Api:
    port: int
    process: subprocess.Popen[bytes]
    run_id: str
    postgres: OwnPostgres
    log: Path
    failed_id: str
    root: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def _request(
    api: Api,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes, float]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    sent = {"Host": f"127.0.0.1:{api.port}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    started = time.monotonic()
    conn.request(method, BASE + path, body=data, headers=sent)
    response = conn.getresponse()
    content = response.read()
    elapsed = time.monotonic() - started
    if own:
        conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, content, elapsed


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from dagster import DagsterInstance

    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    root = tmp_path_factory.mktemp("resilience")
    with own_postgres(root) as postgres:
        warehouse = postgres.url("finops")
        ensure_schema(warehouse)
        landing = root / "landing"
        write_demo_landing(str(landing), months=1, now=datetime.now(UTC), scale=0.25)
        home = root / "dagster_home"
        write_dagster_yaml(home, postgres.url("dagster"))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FINOPS_DATABASE_URL", warehouse)
            mp.setenv("FINOPS_LANDING_URI", str(landing))
            instance = DagsterInstance.from_config(str(home))
            try:
                run_id = run_batch(instance, periods=[PERIOD], domains=["open"]).run_id
                # No landing folder for the month before: a FAILED run whose error names a path.
                failed_id = run_batch(instance, periods=[PREVIOUS], domains=["public"]).run_id
            finally:
                instance.dispose()
        port = free_port()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "FINOPS_DATABASE_URL": warehouse,
            "FINOPS_LANDING_URI": str(landing),
            "FINOPS_AUTH_MODE": "dev",
            "FINOPS_REPROCESS_RATE_LIMIT": "1000",
        }
        log_path = root / "api.log"
        log = open(log_path, "ab")  # noqa: SIM115
        process = subprocess.Popen([str(BIN / "finops"), "serve", "--port", str(port)], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        api = Api(port, process, run_id, postgres, log_path, failed_id, root)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{BASE}/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("finops serve did not come up:\n" + log_path.read_text()[-3000:])
        try:
            yield api
        finally:
            stop_group(process)
            log.close()


def _routes(api: Api) -> list[tuple[str, str, Any, int]]:
    """(method, path, body, status when the databases answer) for every operation."""
    dry_run = {"periods": [PERIOD], "domains": ["open"], "reason": "resilience check", "dryRun": True}
    return [
        ("GET", "/runs", None, 200),
        ("GET", "/runs?format=csv", None, 200),
        ("GET", f"/runs/{api.run_id}", None, 200),
        ("GET", f"/runs/{api.run_id}/logs", None, 200),
        ("GET", "/coverage", None, 200),
        ("GET", "/sources", None, 200),
        ("GET", "/reprocess", None, 200),
        ("GET", "/reprocess/00000000-0000-0000-0000-000000000000", None, 404),
        ("POST", "/runs/reprocess", dry_run, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/me", None, 200),
    ]


def test_postgres_down_every_route_is_a_fast_503_then_recovers(api: Api) -> None:
    for method, path, body, expected in _routes(api):
        status, _, content, _ = _request(api, method, path, body=body)
        assert status == expected, (method, path, status, content[:300])

    api.postgres.stop("immediate")
    stopped = time.monotonic()
    slowest = 0.0
    try:
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
        for method, path, body, _ in _routes(api) * 2:  # twice, on one kept-alive connection
            status, headers, content, elapsed = _request(api, method, path, body=body, conn=conn)
            slowest = max(slowest, elapsed)
            assert status == 503, (method, path, status, content[:300])
            assert elapsed <= 2.0, (method, path, elapsed)
            error = json.loads(content)
            assert error["error"]["name"] == "ServiceUnavailableError"
            assert error["response"] == {"statusCode": 503}
            assert error["request"]["method"] == method
            message = error["error"]["message"]
            assert "PostgreSQL" in message and "try again" in message
            for leak in (api.postgres.socket_dir, "psycopg", "connection to server", "socket", "5432"):
                assert leak not in message, message
            assert headers.get("connection", "").lower() != "close"
        conn.close()
        first_seconds = time.monotonic() - stopped
    finally:
        api.postgres.start()
    restarted = time.monotonic()
    pending = _routes(api)
    while pending and time.monotonic() - restarted < 10:
        pending = [r for r in pending if _request(api, r[0], r[1], body=r[2])[0] != r[3]]
        if pending:
            time.sleep(0.25)
    recovered = time.monotonic() - restarted
    assert not pending, f"still failing {recovered:.1f}s after the restart: {pending}"
    print(
        f"PostgreSQL down: {len(_routes(api)) * 2} requests answered 503 in {first_seconds:.2f}s, "
        f"slowest {slowest:.3f}s; every route 200 again {recovered:.2f}s after the restart"
    )


def _raw(api: Api, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def _status_and_body(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_oversized_headers_are_refused_without_memory(api: Api) -> None:
    before = api.rss_kib()
    big = b"x" * (32 * 1024 * 1024)
    answers: list[bytes] = []

    def one() -> None:
        head = f"GET {BASE}/runs HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\nX-Big: ".encode()
        with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
            try:
                sock.sendall(head)
                for offset in range(0, len(big), 1024 * 1024):
                    sock.sendall(big[offset : offset + 1024 * 1024])
                sock.sendall(b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
            answers.append(data)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    after = api.rss_kib()
    assert after - before < 8 * 1024, f"the API grew from {before} KiB to {after} KiB"
    read = [a for a in answers if a]
    assert read, "no answer could be read"
    for answer in read:
        status, body = _status_and_body(answer)
        assert status in (431, 400)
        assert body["error"]["name"] == "InputError" and body["response"]["statusCode"] == status
    # The API still answers.
    assert _request(api, "GET", "/healthz")[0] == 200
    statuses = [a.split(b" ")[1].decode() for a in read]
    print(f"4 x 32 MiB headers: answers {statuses}, RSS {before} -> {after} KiB")


@pytest.mark.parametrize(
    "payload",
    [
        b"GET /finops/admin/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /finops/admin/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n"
        b"Content-Length: 7\r\n\r\n",
        b"GET /finops/admin/runs HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET\x01 /finops/admin/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ],
    ids=["bad-content-length", "two-content-lengths", "bad-header-line", "bad-request-line"],
)
def test_malformed_http_gets_a_backstage_400(api: Api, payload: bytes) -> None:
    status, body = _status_and_body(_raw(api, payload))
    assert status == 400
    assert body["error"]["name"] == "InputError" and body["response"] == {"statusCode": 400}


def test_over_long_target_and_unknown_method(api: Api) -> None:
    status, headers, content, _ = _request(api, "GET", "/runs?q=" + "a" * 20_000)
    body = json.loads(content)
    assert (
        status == 400
        and body["error"]["name"] == "InputError"
        and "request target" in body["error"]["message"]
    )
    assert headers["content-type"].startswith("application/json")
    status, _, content, _ = _request(api, "BREW", "/runs")
    body = json.loads(content)
    assert status in (400, 405) and body["error"]["name"] == "InputError", content


def test_run_errors_show_paths_from_the_landing_root(api: Api) -> None:
    status, _, content, _ = _request(api, "GET", f"/runs/{api.failed_id}")
    assert status == 200
    detail = json.loads(content)
    assert detail["status"] == "FAILED"
    messages = [detail["errors"]["message"]] + [e["message"] for b in detail["blocks"] for e in b["errors"]]
    assert any(f"public/{PREVIOUS}" in m for m in messages), messages
    _, _, listing, _ = _request(api, "GET", "/runs")
    _, _, export, _ = _request(api, "GET", "/runs?format=csv")
    for text in (json.dumps(messages), listing.decode(), export.decode()):
        assert str(api.root) not in text and "/tmp/" not in text


def test_security_headers_on_every_kind_of_answer(api: Api) -> None:
    answers = {
        "json": _request(api, "GET", "/runs"),
        "csv": _request(api, "GET", "/runs?format=csv"),
        "logs": _request(api, "GET", f"/runs/{api.run_id}/logs"),
        "error": _request(api, "GET", "/runs/not*a*run"),
        "ui": _request(api, "GET", "/ui/"),
        "openapi": _request(api, "GET", "/openapi.json"),
    }
    for kind, (status, headers, _, _) in answers.items():
        assert status in (200, 400), (kind, status)
        policy = headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, (kind, policy)
        assert "unsafe-inline" not in policy, (kind, policy)
        assert headers.get("x-frame-options") == "DENY", kind
        assert headers.get("x-content-type-options") == "nosniff", kind
        if kind != "ui":
            assert headers.get("cache-control") == "no-store", (kind, headers.get("cache-control"))


def test_the_ui_needs_nothing_its_policy_forbids() -> None:
    import re

    static = Path(__file__).resolve().parents[3] / "finops_admin_plugin" / "ui" / "static"
    page = (static / "index.html").read_text()
    # Scripts and styles come from files of the UI's own origin; no inline code, no handlers.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline <script>"
    assert "<style" not in page and not re.search(r"\son[a-z]+=", page) and "style=" not in page
    assert "javascript:" not in page and "http://" not in page and "https://" not in page
    for source in static.glob("*.js"):
        code = source.read_text()
        assert "eval(" not in code and "new Function" not in code, source.name


def test_dev_mode_wants_json_writes_and_a_loopback_host(api: Api) -> None:
    body = {"periods": [PERIOD], "domains": ["open"], "reason": "csrf check", "dryRun": True}
    data = json.dumps(body).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{api.port}"} | ({"Content-Type": content_type} if content_type else {})
        conn.request("POST", f"{BASE}/runs/reprocess", body=data, headers=headers)
        response = conn.getresponse()
        error = json.loads(response.read())
        conn.close()
        assert response.status == 400, content_type
        assert (
            error["error"]["name"] == "InputError"
            and "Content-Type: application/json" in error["error"]["message"]
        )
    assert _request(api, "POST", "/runs/reprocess", body=body)[0] == 200
    for host in ("evil.example.com", f"evil.example.com:{api.port}", "127.0.0.1.nip.io"):
        status, _, content, _ = _request(api, "GET", "/runs", headers={"Host": host})
        error = json.loads(content)
        assert status == 400 and "not allowed" in error["error"]["message"], host
    for host in (f"localhost:{api.port}", f"[::1]:{api.port}", "127.0.0.1"):
        assert _request(api, "GET", "/runs", headers={"Host": host})[0] == 200, host


@pytest.mark.timeout(600)
def test_every_operation_conforms_to_the_openapi_document(api: Api) -> None:
    """Schemathesis, valid and invalid requests on every operation, path parameters included
    (generated ones, and the ids of real runs): each answer's status is documented and its
    body matches the documented schema."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{api.port}{BASE}/openapi.json")
    base_url = f"http://127.0.0.1:{api.port}"
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        statuses = seen.setdefault(label, set())

        def call(case: Any, statuses: set[int] = statuses) -> None:
            response = case.call_and_validate(base_url=base_url, checks=checks)
            statuses.add(response.status_code)

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
            )
            def generated(case: Any) -> None:
                call(case)

            try:
                generated()
            except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
                assert mode is GenerationMode.NEGATIVE, label
        names = {p.name for p in operation.path_parameters}
        if "runId" in names:
            for run_id in (api.run_id, api.failed_id):
                call(operation.Case(path_parameters={"runId": run_id}))
        if "requestId" in names:
            dry_run = {"periods": [PERIOD], "domains": ["open"], "reason": "conformance", "dryRun": False}
            filed = json.loads(_request(api, "POST", "/runs/reprocess", body=dry_run)[2])
            call(operation.Case(path_parameters={"requestId": filed["requestId"]}))
    assert seen[f"GET {BASE}/runs/{{runId}}"] >= {200, 400, 404}, seen
    assert seen[f"GET {BASE}/runs/{{runId}}/logs"] >= {200, 404}, seen
    assert 200 in seen[f"GET {BASE}/reprocess/{{requestId}}"], seen
    print("statuses seen: " + json.dumps({k: sorted(v) for k, v in seen.items()}))
