"""One GET to Backstage's identity endpoints, bounded as a whole: connect, headers and body.

httpx's timeouts apply to each socket operation, so a server answering one byte every two
seconds kept a "5 s" JWKS fetch going for 64 s. Here the whole exchange runs under one
`asyncio.timeout` on a private event loop, which cancels it (and closes its connection) at
the deadline, however the time is spent. The body is also capped in size: a JWKS or a
userinfo answer is a few KiB.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from functools import lru_cache

import httpx

__all__ = ["MAX_IDENTITY_BODY_BYTES", "FetchFailed", "FetchResult", "fetch_within"]

MAX_IDENTITY_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FetchResult:
    status_code: int
    body: bytes


class FetchFailed(Exception):
    """The endpoint could not be asked: `reason` says why in words fit for an error message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle takes tens of milliseconds of CPU holding the
    # interpreter lock (measured 287 ms per client on a loaded 2-core machine), which every
    # request in the process would feel if each call built its own.
    return httpx.create_ssl_context()


async def _get(url: str, headers: dict[str, str], timeout: float, max_bytes: int) -> FetchResult:
    async with (
        httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_tls_context()) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise FetchFailed(f"its answer is over {max_bytes // 1024} KiB")
        return FetchResult(response.status_code, bytes(body))


async def _bounded(url: str, headers: dict[str, str], deadline: float, max_bytes: int) -> FetchResult:
    try:
        async with asyncio.timeout(deadline):
            return await _get(url, headers, deadline, max_bytes)
    except TimeoutError:
        raise FetchFailed(f"it did not answer in full within {deadline:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"it is unreachable ({type(exc).__name__})") from None


def fetch_within(
    url: str,
    *,
    deadline_seconds: float,
    headers: dict[str, str] | None = None,
    max_bytes: int = MAX_IDENTITY_BODY_BYTES,
) -> FetchResult:
    """GET `url`, done within `deadline_seconds` in all, or FetchFailed. Blocks the calling
    thread (a worker thread: it must not run an event loop itself)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_bounded(url, headers or {}, deadline_seconds, max_bytes))
    finally:
        # Not asyncio.run: it would wait for the loop's executor, where a hung DNS lookup
        # may still sit after the deadline; close() lets that thread finish on its own.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
