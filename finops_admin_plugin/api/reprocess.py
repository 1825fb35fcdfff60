"""POST /runs/reprocess (file or dry-run a reprocess), GET /reprocess/{requestId}, GET /reprocess.

Filing stores the request in PostgreSQL and answers 202 with it (state PENDING);
the code location's `finops_reprocess_sensor` launches it and records LAUNCHED
with the run id, or FAILED / REJECTED with the reason. A repeated POST (same
`Idempotency-Key` from the same caller, or an identical request of the same
caller still PENDING) answers 202 with the existing request and the header
`Idempotent-Replayed: true`. A dry run answers 200 with the impact and files nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from finops_admin_plugin.api.deps import (
    AdminDep,
    IdempotencyKeyDep,
    ReprocessCallDep,
    ReprocessQueueDep,
    RequestIdDep,
    SettingsDep,
)
from finops_admin_plugin.http.errors import NotFoundError, ServiceUnavailableError
from finops_admin_plugin.http.openapi import schema_reference
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.models import (
    DryRunResponse,
    PageInfo,
    ReprocessBody,
    ReprocessCollectionResponse,
    ReprocessRequestResponse,
    ReprocessState,
)
from finops_admin_plugin.reprocess.parsing import (
    MAX_BODY_BYTES,
    decode_cursor,
    encode_cursor,
    rate_limit_of,
    store_errors,
)
from finops_admin_plugin.reprocess.views import dry_run_response, request_link, request_response
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.landing.store import landing_store_for
from finops_pipeline.reprocess.preview import (
    ReprocessPreview,
    preview_reprocess,
    resolve_preview_deliveries,
)
from finops_pipeline.reprocess.rules import CheckedRequest
from finops_pipeline.sources.config import SourcesFileError, load_sources_file

__all__ = ["router"]

router = APIRouter(tags=["reprocess"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "InputError: the body, a header or a parameter names what is wrong"},
    401: {"description": "AuthenticationError"},
    403: {"description": "NotAllowedError: reprocess is for FinOps admins"},
    503: {"description": "ServiceUnavailableError: PostgreSQL or the landing store cannot be reached"},
}


def _json(model: Any, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json", by_alias=True), status_code=status_code, headers=headers
    )


def _dry_run(settings: AdminSettings, checked: CheckedRequest) -> ReprocessPreview:
    if settings.sources_file:
        return _dry_run_sources(settings, checked)
    try:
        import boto3

        store = landing_store_for(settings.landing_uri, s3_client_factory=lambda: boto3.client("s3"))
    except ValueError as exc:
        raise ServiceUnavailableError(
            display_paths(f"a dry run reads the landing files, and {exc}")
        ) from None
    try:
        return preview_reprocess(settings.database_url, store, checked.periods, checked.domains)
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError(
            display_paths(f"the warehouse (FINOPS_DATABASE_URL) cannot be reached: {exc}")
        ) from None
    except (OSError, BotoCoreError, ClientError) as exc:
        raise ServiceUnavailableError(
            display_paths(
                f"the landing store {settings.landing_uri} cannot be read: {type(exc).__name__}: {exc}"
            )
        ) from None


def _dry_run_sources(settings: AdminSettings, checked: CheckedRequest) -> ReprocessPreview:
    """The dry run with a sources file: each pair from its sources' latest complete deliveries.
    A source that cannot be listed or read makes its pairs FAIL in the answer (as the run would),
    it does not make the answer an error."""
    try:
        sources = load_sources_file(settings.sources_file)
    except SourcesFileError as exc:
        raise ServiceUnavailableError(display_paths(f"the sources file cannot be used: {exc}")) from None
    try:
        deliveries = resolve_preview_deliveries(
            sources, checked.periods, checked.domains, now=datetime.now(UTC)
        )
        return preview_reprocess(
            settings.database_url,
            None,
            checked.periods,
            checked.domains,
            sources=sources,
            deliveries=deliveries,
        )
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError(
            display_paths(f"the warehouse (FINOPS_DATABASE_URL) cannot be reached: {exc}")
        ) from None
    except (OSError, SourcesFileError) as exc:
        raise ServiceUnavailableError(
            display_paths(f"a source's files cannot be read: {type(exc).__name__}: {exc}")
        ) from None


@router.post(
    "/runs/reprocess",
    summary="Ask for a reprocess (or its dry run)",
    status_code=202,
    response_model=ReprocessRequestResponse,
    responses={
        200: {"model": DryRunResponse, "description": "dry run: the impact, nothing filed"},
        202: {"description": "the request (new, or the existing one this POST repeats)"},
        409: {"description": "ConflictError: Idempotency-Key already used with a different body"},
        429: {"description": "TooManyRequestsError: per-caller rate limit; see Retry-After"},
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": f"at most {MAX_BODY_BYTES} bytes",
            "content": {"application/json": {"schema": schema_reference(ReprocessBody)}},
        }
    },
)
def request_reprocess(
    caller: AdminDep,
    call: ReprocessCallDep,
    idempotency_key: IdempotencyKeyDep,
    store: ReprocessQueueDep,
    settings: SettingsDep,
) -> JSONResponse:
    limit = rate_limit_of(settings)
    if call.dry_run:
        # Dry runs read every landing file: they count against the rate limit too.
        with store_errors():
            store.take_rate(caller.subject, limit)
        preview = _dry_run(settings, call.checked)
        return _json(dry_run_response(call.checked, preview), 200)
    with store_errors():
        submission = store.submit(
            call.checked, requested_by=caller.subject, idempotency_key=idempotency_key, rate_limit=limit
        )
    request_id = submission.request.request_id
    headers = {
        "Location": request_link(request_id),
        "Idempotent-Replayed": "false" if submission.created else "true",
    }
    return _json(request_response(submission.request), 202, headers)


@router.get(
    "/reprocess/{requestId}",
    summary="One reprocess request and its state",
    response_model=ReprocessRequestResponse,
    responses={404: {"description": "NotFoundError: no such request"}, **_ERRORS},
)
def get_reprocess_request(
    _caller: AdminDep, request_id: RequestIdDep, store: ReprocessQueueDep
) -> JSONResponse:
    with store_errors():
        found = store.get(request_id)
    if found is None:
        raise NotFoundError(f"no reprocess request {request_id}; GET /reprocess lists them")
    return _json(request_response(found), 200)


@router.get(
    "/reprocess",
    summary="Reprocess requests, newest first",
    response_model=ReprocessCollectionResponse,
    responses=_ERRORS,
)
def list_reprocess_requests(
    _caller: AdminDep,
    store: ReprocessQueueDep,
    state: Annotated[list[ReprocessState] | None, Query(description="keep these states (repeatable)")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="page size")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="pageInfo.nextCursor of the previous page")
    ] = None,
) -> JSONResponse:
    before = decode_cursor(cursor) if cursor else None
    with store_errors():
        items, total = store.page(states=sorted(set(state or [])), limit=limit + 1, before_sequence=before)
    next_cursor = encode_cursor(items[limit - 1].sequence) if len(items) > limit else None
    page = ReprocessCollectionResponse(
        items=[request_response(r) for r in items[:limit]],
        page_info=PageInfo(next_cursor=next_cursor),
        total_items=total,
    )
    return _json(page, 200)
