"""The HTTP server of `finops serve`: uvicorn on h11, with bounded request heads.

- The request line and headers together are at most `MAX_HEAD_BYTES`: h11 stops reading
  past that, so a client sending huge headers costs the API no memory. (uvicorn's default
  httptools parser has no such bound.)
- What the server itself refuses (a head too large, a malformed request line, a bad
  Content-Length) is answered with Backstage's error body, like every other error.
- Inside the application `RequestLimits` bounds the target (path and query) and the number
  of headers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import h11
import uvicorn
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from finops_admin_plugin.http.errors import error_body

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "MAX_TARGET_BYTES",
    "BackstageH11Protocol",
    "RequestLimits",
    "serve",
    "server_config",
]

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_TARGET_BYTES = 8 * 1024
MAX_HEADERS = 100


def _error_json(status: int, message: str) -> bytes:
    body = {
        "error": {"name": "InputError", "message": message},
        "request": {"method": "", "url": ""},
        "response": {"statusCode": status},
    }
    return json.dumps(body).encode()


class BackstageH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering requests it cannot parse with Backstage's error body."""

    def send_400_response(self, msg: str) -> None:
        buffered = len(self.conn.trailing_data[0])
        if buffered > MAX_HEAD_BYTES:
            status, reason = 431, b"Request Header Fields Too Large"
            message = (
                f"the request line and headers are over {MAX_HEAD_BYTES // 1024} KiB; send smaller headers"
            )
        else:
            status, reason = 400, b"Bad Request"
            message = "malformed HTTP request (request line, header or Content-Length); check the client"
        data = _error_json(status, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(
                self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
            )
            self.transport.write(self.conn.send(h11.Data(data=data)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # the state machine is past a response: just close
            pass
        self.transport.close()


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


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=BackstageH11Protocol,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        **{"log_level": "info", **options},
    )


def serve(app: Any, host: str, port: int) -> None:
    uvicorn.Server(server_config(app, host, port)).run()
