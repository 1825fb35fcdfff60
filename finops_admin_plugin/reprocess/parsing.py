"""Parsing of the reprocess endpoints' input (body, Idempotency-Key, request id, cursors) and
the queue's outcomes as API errors. `api.deps` wraps these as route dependencies."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Header, Path, Request
from pydantic import ValidationError

from finops_admin_plugin.http.errors import (
    ConflictError,
    InputError,
    ServiceUnavailableError,
    TooManyRequestsError,
    shown,
)
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.models.reprocess import ReprocessBody
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.reprocess.queue import (
    IdempotencyConflict,
    QueueUnavailable,
    RateLimit,
    RateLimited,
    parse_request_id,
)
from finops_pipeline.reprocess.rules import (
    CheckedRequest,
    RequestInvalid,
    check_idempotency_key,
    check_request,
)

__all__ = [
    "MAX_BODY_BYTES",
    "ReprocessCall",
    "decode_cursor",
    "encode_cursor",
    "get_idempotency_key",
    "get_reprocess_call",
    "get_request_id",
    "rate_limit_of",
    "store_errors",
]

# 24 months, 4 domains and a 500-character reason fit in well under 1 KiB.
MAX_BODY_BYTES: Final = 16 * 1024
_BODY_FIELDS: Final = "periods, domains, reason, dryRun"
_CURSOR_PREFIX: Final = "rq1:"
_TYPE_WORDS: Final = {
    "list_type": "a JSON array",
    "string_type": "a string",
    "bool_type": "true or false",
}


def rate_limit_of(settings: AdminSettings) -> RateLimit:
    return RateLimit(
        limit=settings.reprocess_rate_limit, window_seconds=settings.reprocess_rate_window_seconds
    )


@contextmanager
def store_errors() -> Iterator[None]:
    """Store outcomes -> API errors in Backstage's body."""
    try:
        yield
    except RateLimited as exc:
        raise TooManyRequestsError(str(exc), headers={"Retry-After": str(exc.retry_after_seconds)}) from None
    except IdempotencyConflict as exc:
        raise ConflictError(str(exc)) from None
    except QueueUnavailable as exc:
        raise ServiceUnavailableError(display_paths(f"reprocess requests are unavailable: {exc}")) from None


# --- the body -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReprocessCall:
    checked: CheckedRequest
    dry_run: bool


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _describe(exc: ValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors(include_url=False):
        kind, where = err.get("type", ""), _where(tuple(err.get("loc", ())))
        if kind == "json_invalid":
            parts.append(f"request body is not valid JSON ({err.get('ctx', {}).get('error', err['msg'])})")
        elif kind in ("model_type", "model_attributes_type", "dict_type") and not where:
            parts.append(f"request body must be a JSON object with {_BODY_FIELDS}")
        elif kind == "extra_forbidden":
            parts.append(f"{where}: unknown field; the body takes {_BODY_FIELDS}")
        elif kind == "missing":
            parts.append(f"{where}: required")
        elif kind in _TYPE_WORDS:
            parts.append(f"{where}: must be {_TYPE_WORDS[kind]}, got {shown(err.get('input'), 60)}")
        else:
            value = err.get("input")
            got = "" if isinstance(value, dict | list) else f", got {shown(value, 60)}"
            parts.append(f"{where or 'request body'}: {err['msg']}{got}")
    return "; ".join(parts[:5]) or "invalid request body"


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise InputError(f"request body is {int(declared)} bytes; at most {MAX_BODY_BYTES} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InputError(f"request body exceeds {MAX_BODY_BYTES} bytes, the most accepted")
        chunks.append(chunk)
    return b"".join(chunks)


async def get_reprocess_call(request: Request) -> ReprocessCall:
    """The POST body, parsed strictly and checked against the request rules (400 naming the field)."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise InputError(f"Content-Type must be application/json, got {content_type!r}")
    raw = await _read_body(request)
    if not raw.strip():
        raise InputError(f"request body is empty: send a JSON object with {_BODY_FIELDS}")
    try:
        body = ReprocessBody.model_validate_json(raw)
    except ValidationError as exc:
        raise InputError(_describe(exc)) from None
    try:
        checked = check_request(body.periods, body.domains, body.reason)
    except RequestInvalid as exc:
        raise InputError(str(exc)) from None
    return ReprocessCall(checked=checked, dry_run=body.dry_run)


def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="the same key (per caller) returns the request first filed with it",
        ),
    ] = None,
) -> str | None:
    if idempotency_key is None:
        return None
    try:
        return check_idempotency_key(idempotency_key)
    except RequestInvalid as exc:
        raise InputError(str(exc)) from None


def get_request_id(
    request_id: Annotated[str, Path(alias="requestId", description="a request id (UUID)")],
) -> str:
    canonical = parse_request_id(request_id)
    if canonical is None:
        shown = request_id if len(request_id) <= 40 else request_id[:40] + "…"
        raise InputError(f"requestId must be a UUID as returned by POST /runs/reprocess, got {shown!r}")
    return canonical


# --- list cursors ---------------------------------------------------------------------------


def encode_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{sequence}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    number = text[len(_CURSOR_PREFIX) :] if text.startswith(_CURSOR_PREFIX) else ""
    if not number.isdigit() or len(number) > 18:
        raise InputError("cursor: not a cursor returned by GET /reprocess; start again without it")
    return int(number)
