"""The HTTP server of `finops serve`: uvicorn on h11, with bounded request heads, bounded waits
on slow clients, and a bounded number of connections.

- The request line and headers together are at most `MAX_HEAD_BYTES`: h11 stops reading
  past that, so a client sending huge headers costs the API no memory. (uvicorn's default
  httptools parser has no such bound.)
- A client has `head_timeout_seconds` (FINOPS_API_HEAD_TIMEOUT_SECONDS) to send a request's
  line and headers, counted from the connection or from the previous answer on a kept-alive
  connection, then `body_timeout_seconds` (FINOPS_API_BODY_TIMEOUT_SECONDS) for its body.
  uvicorn bounds neither: 500 connections trickling headers one byte a second stayed open
  120 s, and a POST declaring 1000 bytes and sending one waited with no answer.
- At most `max_connections` (FINOPS_API_MAX_CONNECTIONS, lowered to fit the open-files limit)
  are open: past it, the connection that has waited the longest for a request head is closed
  to make room, or when every connection is busy with a request the new one gets a 503. Idle
  connections could otherwise use every file descriptor: with a limit of 200 open files, 180
  silent connections made every normal request fail.
- What the server itself refuses (a head too large, a malformed request line, a bad
  Content-Length, a timed-out head or body, a connection over the cap) is answered with
  Backstage's error body, like every other error; a connection that sent nothing is closed
  without an answer.
- Inside the application `RequestLimits` bounds the target (path and query) and the number
  of headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from finops_admin_plugin.http.errors import error_body
from finops_admin_plugin.settings import AdminSettings, get_settings

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "MAX_TARGET_BYTES",
    "BackstageH11Protocol",
    "ConnectionLimits",
    "RequestLimits",
    "fitting_connection_cap",
    "serve",
    "server_config",
]

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_TARGET_BYTES = 8 * 1024
MAX_HEADERS = 100
# Open files the process needs besides client connections: database pools, Dagster's storage,
# log files, the listening socket.
RESERVED_FILES = 100
_MIN_CONNECTIONS = 16


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections may be open."""

    head_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: AdminSettings) -> ConnectionLimits:
        return cls(
            head_timeout_seconds=settings.api_head_timeout_seconds,
            body_timeout_seconds=settings.api_body_timeout_seconds,
            max_connections=fitting_connection_cap(settings.api_max_connections),
        )


def fitting_connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that the connections and `RESERVED_FILES` fit the open-files limit."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # no such limit here (Windows)
        return wanted
    if soft == resource.RLIM_INFINITY or soft - RESERVED_FILES >= wanted:
        return wanted
    fitting = max(soft - RESERVED_FILES, _MIN_CONNECTIONS)
    log.warning(
        "FINOPS_API_MAX_CONNECTIONS=%d does not fit the open-files limit (%d): at most %d connections "
        "(raise the limit, e.g. ulimit -n, to allow more)",
        wanted,
        soft,
        fitting,
    )
    return fitting


def _error_json(status: int, name: str, message: str, method: str = "", url: str = "") -> bytes:
    body = {
        "error": {"name": name, "message": message},
        "request": {"method": method, "url": url[:200]},
        "response": {"statusCode": status},
    }
    return json.dumps(body).encode()


class BackstageH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering requests it cannot parse with Backstage's error body,
    with deadlines on request heads and bodies, and a cap on open connections."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0

    # --- the connection's life ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not before:  # a request head arrived: its body's deadline starts now
            self._cancel(head=True)
            if cycle.more_body:
                self._body_timer = self.loop.call_later(
                    self.limits.body_timeout_seconds, self._body_timed_out, cycle
                )
        if not cycle.more_body:
            self._cancel(body=True)

    def on_response_complete(self) -> None:
        # Armed before the base class looks at pipelined data, which may hold the next head.
        if not self.transport.is_closing():
            self._arm_head_timer()
        super().on_response_complete()

    # --- deadlines ------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel(head=True)
        self._waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.limits.head_timeout_seconds, self._head_timed_out)

    def _cancel(self, *, head: bool = False, body: bool = False) -> None:
        if head and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if body and self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel(head=True, body=True)

    def _awaiting_head(self) -> bool:
        """True between requests: no request in progress, the next head not complete."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._awaiting_head():
            return
        self._close_waiting(
            f"the request line and headers did not arrive within {self.limits.head_timeout_seconds:g} s; "
            f"send the whole request at once"
        )

    def _close_waiting(self, message: str) -> None:
        """Close a connection waiting for a request head: 408 if part of one arrived."""
        if self.conn.trailing_data[0]:
            self._answer_and_close(408, "RequestTimeoutError", message)
            return
        # Nothing sent: nobody reads an answer (uvicorn's keep-alive timeout closes the same way).
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    def _body_timed_out(self, cycle: RequestResponseCycle) -> None:
        self._body_timer = None
        if self.transport.is_closing() or cycle is not self.cycle or not cycle.more_body:
            return
        if cycle.response_started:  # the answer is under way (or sent): the body is moot, close
            self.transport.close()
            return
        # The application stops here: its next receive() says the client left, its sends are dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        scope = cycle.scope
        query = scope.get("query_string") or b""
        url = scope.get("path", "") + (f"?{query.decode('latin-1')}" if query else "")
        self._answer_and_close(
            408,
            "RequestTimeoutError",
            f"the request body did not arrive within {self.limits.body_timeout_seconds:g} s "
            f"(Content-Length says more than was sent); send the whole body at once",
            method=scope.get("method", ""),
            url=url,
        )

    # --- the connection cap ---------------------------------------------------------------------

    def _make_room(self) -> None:
        open_ones = [
            p
            for p in self.connections
            if isinstance(p, BackstageH11Protocol) and p.transport and not p.transport.is_closing()
        ]
        if len(open_ones) <= self.limits.max_connections:
            return  # the excess is closing already
        idle = [p for p in open_ones if p is not self and p._awaiting_head()]
        if idle:
            oldest = min(idle, key=lambda p: p._waiting_since)
            log.warning(
                "%d connections open (FINOPS_API_MAX_CONNECTIONS=%d): closing the one idle the longest",
                len(open_ones),
                self.limits.max_connections,
            )
            oldest._close_waiting("the server has too many open connections; this one waited the longest")
            return
        log.warning(
            "%d connections open, all busy (FINOPS_API_MAX_CONNECTIONS=%d): refusing a new one",
            len(open_ones),
            self.limits.max_connections,
        )
        self._answer_and_close(
            503,
            "ServiceUnavailableError",
            f"the server has {self.limits.max_connections} connections open, all busy; try again in a moment",
            extra_headers=[(b"retry-after", b"1")],
        )

    # --- answers the server writes itself -------------------------------------------------------

    def _answer_and_close(
        self,
        status: int,
        name: str,
        message: str,
        *,
        method: str = "",
        url: str = "",
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self._cancel_timers()
        data = _error_json(status, name, message, method, url)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"connection", b"close"),
            *(extra_headers or []),
        ]
        reason = _REASONS.get(status, b"")
        try:
            self.transport.write(
                self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
            )
            self.transport.write(self.conn.send(h11.Data(data=data)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # the state machine is past a response: just close
            pass
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        buffered = len(self.conn.trailing_data[0])
        if buffered > MAX_HEAD_BYTES:
            self._answer_and_close(
                431,
                "InputError",
                f"the request line and headers are over {MAX_HEAD_BYTES // 1024} KiB; send smaller headers",
            )
        else:
            self._answer_and_close(
                400,
                "InputError",
                "malformed HTTP request (request line, header or Content-Length); check the client",
            )


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class RequestLimits:
    """A request target over MAX_TARGET_BYTES, or more than MAX_HEADERS headers: 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
            problem = None
            if target > MAX_TARGET_BYTES:
                problem = f"the request target is {target} bytes, over {MAX_TARGET_BYTES}; use fewer filters"
            elif len(scope.get("headers") or ()) > MAX_HEADERS:
                problem = f"{len(scope['headers'])} request headers, over {MAX_HEADERS}"
            if problem is not None:
                request = Request(scope, receive)
                body = error_body(request, "InputError", problem, 400)
                body["request"]["url"] = body["request"]["url"][:200]
                await JSONResponse(body, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def server_config(
    app: Any, host: str, port: int, *, limits: ConnectionLimits | None = None, **options: Any
) -> uvicorn.Config:
    """uvicorn's configuration for `app`; `limits` default to the app's settings."""
    if limits is None:
        limits = ConnectionLimits.from_settings(_settings_of(app))
    protocol = type("BoundedH11Protocol", (BackstageH11Protocol,), {"limits": limits})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        **{"log_level": "info", **options},
    )


def _settings_of(app: Any) -> AdminSettings:
    resources = getattr(getattr(app, "state", None), "finops", None)
    settings = getattr(resources, "settings", None)
    return settings if isinstance(settings, AdminSettings) else get_settings()


def serve(app: Any, host: str, port: int) -> None:
    # Everything imported and built so far (Dagster, pydantic models, the app: about 270,000
    # objects) lives as long as the process: frozen, the garbage collector stops walking it, and
    # a full collection during a request takes well under a millisecond instead of ~100 ms.
    gc.collect()
    gc.freeze()
    uvicorn.Server(server_config(app, host, port)).run()
