"""The OpenAPI document is the contract: each operation's errors, one `BackstageError` schema.

The document and the Backstage plugin's TypeScript types are generated from the code and
committed (`make contract`): docs/openapi.json and backstage-plugin/src/api/schema.generated.ts.
Both are generated again here, from the current code, and must equal the committed files, so a
changed model cannot ship without its contract. The generated types are then type-checked with
every failure typed as `BackstageError`. The schemathesis run against a served API, with
status-code and response-schema conformance, is in test_resilience.py (it needs data).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from finops_admin_plugin.app import openapi_document
from finops_admin_plugin.http.openapi import ERROR_NAMES
from tests.support import require

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = ROOT / "docs" / "openapi.json"
PLUGIN = ROOT / "backstage-plugin"
GENERATED_TYPES = PLUGIN / "src" / "api" / "schema.generated.ts"
# The plugin's tests answer with these recorded bodies; each is what its schema describes.
FIXTURES = {
    "runs.json": "RunCollectionResponse",
    "run-failed.json": "RunDetailResponse",
    "run-success.json": "RunDetailResponse",
    "coverage.json": "CoverageResponse",
    "me-admin.json": "CallerResponse",
    "dry-run.json": "DryRunResponse",
    "failures.json": "FailureCollectionResponse",
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _document_text(document: dict[str, Any]) -> str:
    # As `make contract` writes it: sorted and indented, so the contract's diff reads well.
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


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
        'import type { components, paths } from "./schema.generated";',
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


def _stale(path: Path) -> str:
    return (
        f"{path.relative_to(ROOT)} differs from the API's models: run `make contract` and commit the result"
    )


def test_the_committed_document_matches_the_code(document: dict[str, Any]) -> None:
    committed = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
    assert committed == _document_text(document), _stale(DOCUMENT)


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_the_plugin_fixtures_are_what_the_api_sends(document: dict[str, Any], fixture: str) -> None:
    schema = {"$ref": f"#/components/schemas/{FIXTURES[fixture]}", "components": document["components"]}
    body = json.loads((PLUGIN / "src" / "__fixtures__" / fixture).read_text(encoding="utf-8"))
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(body)
    ]
    assert not errors, (
        f"backstage-plugin/src/__fixtures__/{fixture} is not a {FIXTURES[fixture]}:\n"
        + "\n".join(errors[:20])
    )


def _tsc(bin_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
         "--moduleResolution", "bundler", "check.ts"],
        cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_the_committed_typescript_is_generated_from_it_and_types_every_failure(
    document: dict[str, Any], tmp_path: Path
) -> None:
    node = shutil.which("node")
    bin_dir = PLUGIN / "node_modules" / ".bin"
    require(
        node is not None
        and (bin_dir / "tsc").exists()
        and (PLUGIN / "node_modules" / "openapi-typescript").is_dir(),
        "Node.js and the plugin's node_modules are needed to generate its types: "
        "run `npm ci` in backstage-plugin (make plugin-check does)",
    )
    assert node is not None
    (tmp_path / "openapi.json").write_text(_document_text(document), encoding="utf-8")
    generated = tmp_path / "schema.generated.ts"
    generation = subprocess.run(
        [node, "scripts/generate-api-types.mjs", str(tmp_path / "openapi.json"), str(generated)],
        cwd=PLUGIN, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert generation.returncode == 0, generation.stderr
    committed = GENERATED_TYPES.read_text(encoding="utf-8") if GENERATED_TYPES.exists() else ""
    assert committed == generated.read_text(encoding="utf-8"), _stale(GENERATED_TYPES)

    (tmp_path / "check.ts").write_text(_type_checks(document))
    checked = _tsc(bin_dir, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check itself fails when a failure is not typed as BackstageError.
    broken = _type_checks(document).replace(
        'type BackstageError = components["schemas"]["BackstageError"];',
        "type BackstageError = { detail: string };",
    )
    (tmp_path / "check.ts").write_text(broken)
    assert _tsc(bin_dir, tmp_path).returncode != 0
