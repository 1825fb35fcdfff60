"""The OpenAPI document is the contract: each operation's errors, one `BackstageError` schema.

A TypeScript client is generated from the document with openapi-typescript (installed with
npm from `openapi_client/package-lock.json` into a temporary folder) and type-checked with
every failure typed as `BackstageError`. The schemathesis run against a served API, with
status-code and response-schema conformance, is in test_resilience.py (it needs data).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from finops_admin_plugin.app import create_app
from finops_admin_plugin.http.openapi import ERROR_NAMES
from finops_admin_plugin.settings import AdminSettings
from tests.support import require

CLIENT_DIR = Path(__file__).parent / "openapi_client"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(AdminSettings(FINOPS_AUTH_MODE="backstage", FINOPS_BACKSTAGE_URL="http://127.0.0.1:9"))
    return app.openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_lists_its_errors_with_one_schema(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["BackstageError"]
    assert set(schema["properties"]["error"]["properties"]["name"]["enum"]) == set(ERROR_NAMES.values())
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        label = f"{method.upper()} {path}"
        assert "422" not in responses, label
        errors = {int(s) for s in responses if int(s) >= 400}
        assert 400 in errors, label
        if operation.get("security"):
            assert {401, 403} <= errors, label
        if "{" in path:
            assert 404 in errors, label
        if not path.endswith("/ui-config"):
            assert 503 in errors, label
        for status in errors:
            content = responses[str(status)]["content"]
            assert content == {
                "application/json": {"schema": {"$ref": "#/components/schemas/BackstageError"}}
            }
    reprocess = document["paths"]["/finops/admin/runs/reprocess"]["post"]["responses"]
    assert {"409", "429"} <= set(reprocess) and "Retry-After" in reprocess["429"]["headers"]


def _type_checks(document: dict[str, Any]) -> str:
    lines = [
        'import type { components, paths } from "./api";',
        'type BackstageError = components["schemas"]["BackstageError"];',
        "type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;",
        "const yes = <T extends true>(): T | undefined => undefined;",
        "// A client reads any failure as Backstage's error body:",
        "export function describe(error: BackstageError): string {",
        "  return `${error.error.name} (${error.response.statusCode}): ${error.error.message}`;",
        "}",
    ]
    for index, (method, path, operation) in enumerate(_operations(document)):
        for status in sorted(s for s in operation["responses"] if int(s) >= 400):
            body = f'paths["{path}"]["{method}"]["responses"][{status}]["content"]["application/json"]'
            lines.append(f"yes<Same<{body}, BackstageError>>();")
        lines.append("// @ts-expect-error: no operation documents a 422")
        lines.append(f'export type NoValidation{index} = paths["{path}"]["{method}"]["responses"][422];')
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(300)
def test_a_generated_typescript_client_types_every_failure(document: dict[str, Any], tmp_path: Path) -> None:
    npm = shutil.which("npm")
    require(npm is not None, "npm (Node.js) is needed to generate the TypeScript client")
    assert npm is not None
    for name in ("package.json", "package-lock.json"):
        shutil.copy(CLIENT_DIR / name, tmp_path / name)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=tmp_path, check=True)
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    bin_dir = tmp_path / "node_modules" / ".bin"
    subprocess.run([str(bin_dir / "openapi-typescript"), "openapi.json", "-o", "api.d.ts"], cwd=tmp_path,
                   check=True, capture_output=True)  # fmt: skip
    (tmp_path / "check.ts").write_text(_type_checks(document))
    checked = subprocess.run(
        [str(bin_dir / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
         "--moduleResolution", "bundler", "check.ts"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check itself fails when a failure is not typed as BackstageError.
    broken = _type_checks(document).replace(
        'type BackstageError = components["schemas"]["BackstageError"];',
        "type BackstageError = { detail: string };",
    )
    (tmp_path / "check.ts").write_text(broken)
    failed = subprocess.run(
        [str(bin_dir / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
         "--moduleResolution", "bundler", "check.ts"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert failed.returncode != 0
