"""GET /runs/{runId}/logs: the run's logs as one streamed text attachment (admins only)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from finops_admin_plugin.api.deps import AdminDep, ResourcesDep, RunIdDep
from finops_admin_plugin.dagster_reader import DagsterUnavailable
from finops_admin_plugin.http.errors import InputError, NotFoundError, ServiceUnavailableError
from finops_admin_plugin.logs import (
    LogDownload,
    LogsNotAvailable,
    RunNotFound,
    StepNotInRun,
    Stream,
    prepare_download,
)
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.settings import API_BASE_PATH

__all__ = ["router"]

router = APIRouter(tags=["logs"])

_ATTACHMENT = {
    "content": {"text/plain": {"schema": {"type": "string"}}},
    "description": "the event log, then each step process's stdout and stderr, under section headers",
}


@router.get(
    "/runs/{runId}/logs",
    summary="Download a run's logs: event log and step stdout/stderr, as one text attachment",
    response_class=StreamingResponse,
    responses={200: _ATTACHMENT},
)
async def download_logs(
    _caller: AdminDep,
    resources: ResourcesDep,
    run_id: RunIdDep,
    step: Annotated[
        str | None,
        Query(max_length=200, description="a domain (open, private, ...) or a step key of the run"),
    ] = None,
    stream: Annotated[Stream, Query(description="all (default), events, stdout or stderr")] = "all",
) -> StreamingResponse:
    events_url = f"{API_BASE_PATH}/runs/{quote(run_id, safe='')}/logs?" + (
        f"step={quote(step, safe='')}&stream=events" if step else "stream=events"
    )
    try:
        source = resources.source
        # Every check that decides the status runs before the first byte (storage probed included).
        download: LogDownload = await run_in_threadpool(
            prepare_download, source, run_id, step=step, stream=stream, events_url=events_url
        )
    except StepNotInRun as exc:
        raise InputError(str(exc)) from None
    except RunNotFound as exc:
        raise NotFoundError(str(exc)) from None
    except LogsNotAvailable as exc:  # names the API's own event-log address: shown whole
        raise NotFoundError(exc.message) from None
    # Messages from the log storage may name server files: shown like a run's errors.
    except DagsterUnavailable as exc:
        raise ServiceUnavailableError(
            display_paths(f"{exc.message}; the logs cannot be read now, try again when the storage answers")
        ) from None
    return StreamingResponse(
        download.chunks(),  # a sync iterator: Starlette reads it in its thread pool
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
