"""Every operation in the OpenAPI document is protected, unless deliberately public.

The operation list comes from the app's own `/finops/admin/openapi.json` at test
time, so operations added later are covered without editing this file.
Schemathesis generates requests (valid and invalid parameters, bodies) and
sends them without credentials: each protected operation must answer 401 with
Backstage's error body, before any lookup, validation or side effect.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from finops_admin_plugin.app import create_app
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings
from tests.support import create_database, free_port

OPENAPI_PATH = f"{API_BASE_PATH}/openapi.json"
# Liveness answers probes; the UI's configuration (auth mode, for the dev banner, and base
# paths) is read before the page has a token. Nothing else is public.
PUBLIC_OPERATIONS = {("GET", f"{API_BASE_PATH}/healthz"), ("GET", f"{API_BASE_PATH}/ui-config")}
SECURITY_SCHEME = "BackstageToken"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, pg_base_url: str) -> FastAPI:
    # No Backstage listens there: a request without credentials must never need it. The database
    # answers, so that the gate's fast 503 (for a database known down, before any route) never
    # stands in for the 401 this test is about, however early its probe concludes.
    home = tmp_path_factory.mktemp("dagster_home")
    return create_app(
        AdminSettings(
            FINOPS_AUTH_MODE="backstage",
            FINOPS_BACKSTAGE_URL=f"http://127.0.0.1:{free_port()}",
            FINOPS_DATABASE_URL=create_database(pg_base_url, "auth"),
            DAGSTER_HOME=str(home),
        )
    )


def _is_public(method: str, path: str) -> bool:
    return (method.upper(), path) in PUBLIC_OPERATIONS


def _assert_401_without_credentials(operation: Any, mode: GenerationMode, label: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def call_without_credentials(case: Any) -> None:
        if case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        response = case.call()
        assert response.status_code == 401, f"{label}: {response.status_code} {response.text[:300]}"
        # Schemathesis responses keep every header value in a list.
        challenges = {k.lower(): v for k, v in response.headers.items()}.get("www-authenticate", [])
        assert any(value.startswith("Bearer") for value in challenges), response.headers
        body = response.json()
        assert body["error"]["name"] == "AuthenticationError"
        assert body["response"] == {"statusCode": 401}

    call_without_credentials()


def test_protected_operations_without_credentials_answer_401(app: FastAPI) -> None:
    # Schemathesis' pytest plugin (`from_fixture`) does not run on this pytest; its strategies
    # are driven by Hypothesis directly instead, one operation at a time.
    api = schemathesis.openapi.from_asgi(OPENAPI_PATH, app)
    checked: list[str] = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read an operation: {result}"
        operation = result.ok()
        method = operation.method.upper()
        path = operation.path
        if not path.startswith(API_BASE_PATH):
            path = f"{API_BASE_PATH}{path}"
        if _is_public(method, path):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _assert_401_without_credentials(operation, mode, f"{method} {path} ({mode.value})")
        checked.append(f"{method} {path}")
    assert f"GET {API_BASE_PATH}/me" in checked  # at least the operations this package adds
    print(f"{len(checked)} protected operation(s) answer 401 without credentials: {', '.join(checked)}")


def test_every_operation_declares_bearer_security_or_is_listed_public(app: FastAPI) -> None:
    document = TestClient(app).get(OPENAPI_PATH).json()
    operations = [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert operations, "the OpenAPI document lists no operation"
    undeclared = [
        f"{method} {path}"
        for method, path, operation in operations
        if not _is_public(method, path) and {SECURITY_SCHEME: []} not in operation.get("security", [])
    ]
    assert not undeclared, f"operations without the auth dependency: {undeclared}"
    assert f"{API_BASE_PATH}/healthz" in document["paths"]
