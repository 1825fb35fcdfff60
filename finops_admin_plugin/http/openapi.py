"""The OpenAPI document is the contract: every error an operation can answer, one error schema.

FastAPI documents a 422 that this API never sends (validation errors are Backstage
`InputError` 400s) and none of the errors it does send. `install_openapi_contract` replaces
the document's generator: each operation lists, with the `BackstageError` schema,

- 400 (any operation: bad parameters, an over-long target, dev mode's Host check);
- 401 and 403 when it needs a caller (the `BackstageToken` security requirement);
- 404 when it has path parameters (an unknown run or request);
- 409 and 429 for `POST /runs/reprocess` (a reused `Idempotency-Key`, the rate limit);
- 429 for `GET /runs/{runId}/logs` (too many logs followed at once);
- 503 unless it never touches a database (its databases or Dagster's storage down).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from finops_admin_plugin.settings import API_BASE_PATH

__all__ = [
    "BACKSTAGE_ERROR_SCHEMA",
    "ERROR_NAMES",
    "install_openapi_contract",
    "operation_errors",
    "schema_reference",
]

ERROR_NAMES = {
    400: "InputError",
    401: "AuthenticationError",
    403: "NotAllowedError",
    404: "NotFoundError",
    409: "ConflictError",
    429: "TooManyRequestsError",
    503: "ServiceUnavailableError",
}
_DESCRIPTIONS = {
    400: "Bad request: a parameter, the body or a header is not valid (the message names it)",
    401: "No valid credentials: send `Authorization: Bearer <Backstage token>`",
    403: "The caller's role does not allow this operation",
    404: "No such run or request",
    409: "The Idempotency-Key was used with another body",
    429: "Too many requests; `Retry-After` says when to try again",
    503: "A database (read model or Dagster storage) does not answer; try again later",
}
_WRITE_ERRORS = {
    f"post {API_BASE_PATH}/runs/reprocess": (409, 429),
    f"get {API_BASE_PATH}/runs/{{runId}}/logs": (429,),  # followers per caller
}
# Operations that never touch a database (no 503).
_NO_DATABASE = {f"get {API_BASE_PATH}/ui-config"}

BACKSTAGE_ERROR_SCHEMA: dict[str, Any] = {
    "title": "BackstageError",
    "description": "Backstage's error body: a Backstage `ResponseError.fromResponse` reads it.",
    "type": "object",
    "required": ["error", "request", "response"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["name", "message"],
            "properties": {
                "name": {"type": "string", "enum": sorted(set(ERROR_NAMES.values()))},
                "message": {"type": "string"},
            },
        },
        "request": {
            "type": "object",
            "required": ["method", "url"],
            "properties": {"method": {"type": "string"}, "url": {"type": "string"}},
        },
        "response": {
            "type": "object",
            "required": ["statusCode"],
            "properties": {"statusCode": {"type": "integer"}},
        },
    },
}


# Models of bodies read by hand (their errors are worded by the route, not by FastAPI), which
# FastAPI therefore does not put into components.schemas: `schema_reference` registers them.
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def schema_reference(model: type[BaseModel]) -> dict[str, str]:
    """A `$ref` to `model` in the document's components, where `install_openapi_contract` puts it
    (a generated client then names the type, and the UIs read its rules from one place)."""
    _BODY_MODELS[model.__name__] = model
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def operation_errors(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer."""
    key = f"{method.lower()} {path}"
    statuses = [400]
    if operation.get("security"):
        statuses += [401, 403]
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.append(404)
    statuses += list(_WRITE_ERRORS.get(key, ()))
    if key not in _NO_DATABASE:
        statuses.append(503)
    return sorted(statuses)


def _complete(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["BackstageError"] = BACKSTAGE_ERROR_SCHEMA
    for name, model in _BODY_MODELS.items():
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    reference = {"$ref": "#/components/schemas/BackstageError"}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in operation_errors(method, path, operation):
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": reference}},
                    **({"headers": {"Retry-After": {"schema": {"type": "string"}}}} if status == 429 else {}),
                }
    used = str(document.get("paths"))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in used:
            schemas.pop(name, None)
    return document


def install_openapi_contract(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's own generator, which caches in app.openapi_schema
    completed: list[bool] = []

    def openapi() -> dict[str, Any]:
        document = generate()
        if not completed:
            _complete(document)
            completed.append(True)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
