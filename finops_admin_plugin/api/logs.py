"""GET /runs/{runId}/logs: the run's logs as one streamed text attachment, or followed as they
are written (`follow=true`) (admins only)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from finops_admin_plugin.api.deps import AdminDep, ResourcesDep, RunIdDep
from finops_admin_plugin.dagster_reader import DagsterUnavailable
from finops_admin_plugin.http.errors import (
    InputError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from finops_admin_plugin.logs import (
    FollowerSlot,
    LogDownload,
    LogFollower,
    LogsNotAvailable,
    RunNotFound,
    StepNotInRun,
    Stream,
    prepare_download,
    prepare_follow,
)
from finops_admin_plugin.logs.followers import RETRY_AFTER_SECONDS
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.settings import API_BASE_PATH

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["logs"])

_ATTACHMENT = {
    "content": {"text/plain": {"schema": {"type": "string"}}},
    "description": "the event log, then each step process's stdout and stderr, under section headers; "
    "with follow=true, not an attachment: what is stored, then what the run writes next (sections "
    "interleaved in the order written), ending by itself within seconds of the run or step",
}
_FOLLOW_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    # Proxies (nginx and the like) would hold the lines back until their buffer fills.
    "X-Accel-Buffering": "no",
}


class _FollowResponse(StreamingResponse):
    """Releases the caller's follower slot however the response ends, even when the client has
    gone before the first byte (the generator's own `finally` would then never run)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def _follow(
    follower: LogFollower, request: Request, slot: FollowerSlot, *, poll_seconds: float, max_seconds: float
) -> AsyncIterator[bytes]:
    """The follow's bytes. Each look at Dagster runs in a worker thread; the wait between looks
    is a sleep on the event loop, checking that the client is still there."""
    deadline = time.monotonic() + max_seconds
    try:
        yield follower.preamble()
        while True:
            if await request.is_disconnected():
                return
            try:
                data, state = await anyio.to_thread.run_sync(follower.poll)
            except DagsterUnavailable as exc:
                log.error("log follow of run %s interrupted: %s", follower.run_id, exc.message)
                yield follower.interrupted(display_paths(exc.message))
                return
            if data:
                yield data
            if state == "done":
                return
            if time.monotonic() >= deadline:
                yield follower.timed_out(max_seconds)
                return
            if state == "wait":
                await _sleep_unless_gone(request, poll_seconds)
    finally:
        slot.release()


async def _sleep_unless_gone(request: Request, seconds: float) -> None:
    """Sleep `seconds`, waking early when the client disconnects."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await anyio.sleep(min(left, 0.25))
        if await request.is_disconnected():
            return


@router.get(
    "/runs/{runId}/logs",
    summary="Download a run's logs: event log and step stdout/stderr, as one text attachment; "
    "or follow them as they are written (follow=true)",
    response_class=StreamingResponse,
    responses={200: _ATTACHMENT},
)
async def download_logs(
    caller: AdminDep,
    resources: ResourcesDep,
    run_id: RunIdDep,
    request: Request,
    step: Annotated[
        str | None,
        Query(max_length=200, description="a domain (open, private, ...) or a step key of the run"),
    ] = None,
    stream: Annotated[Stream, Query(description="all (default), events, stdout or stderr")] = "all",
    follow: Annotated[
        bool,
        Query(
            description="true: stream the logs as they are written, like `kubectl logs -f`, until the "
            "run (or step) ends; at most FINOPS_LOG_FOLLOWERS_PER_CALLER at once per caller (429 beyond)"
        ),
    ] = False,
) -> StreamingResponse:
    events_url = f"{API_BASE_PATH}/runs/{quote(run_id, safe='')}/logs?" + (
        f"step={quote(step, safe='')}&stream=events" if step else "stream=events"
    )
    settings = resources.settings
    slot: FollowerSlot | None = None
    handed_over = False  # the follower's response releases its slot once it runs
    if follow:
        slot = resources.log_followers.acquire(caller.subject, settings.log_followers_per_caller)
        if slot is None:
            raise TooManyRequestsError(
                f"{caller.subject} already follows {settings.log_followers_per_caller} logs, the limit "
                "(FINOPS_LOG_FOLLOWERS_PER_CALLER); close one, or download the logs instead",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
    try:
        source = resources.source
        # Every check that decides the status runs before the first byte (storage probed included).
        if slot is not None:
            follower: LogFollower = await run_in_threadpool(
                prepare_follow, source, run_id, step=step, stream=stream, events_url=events_url
            )
            handed_over = True
            return _FollowResponse(
                _follow(
                    follower,
                    request,
                    slot,
                    poll_seconds=settings.log_follow_poll_seconds,
                    max_seconds=settings.log_follow_max_seconds,
                ),
                slot.release,
                media_type="text/plain; charset=utf-8",
                headers=_FOLLOW_HEADERS,
            )
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
    finally:
        if slot is not None and not handed_over:
            slot.release()  # no response follows: the slot is free again
    return StreamingResponse(
        download.chunks(),  # a sync iterator: Starlette reads it in its thread pool
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
