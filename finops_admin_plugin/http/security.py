"""Safe by default: security headers on every response, and dev mode's request checks.

Every response gets a Content-Security-Policy the built-in UI satisfies (its own scripts and
styles only, never framed), `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and
`Referrer-Policy: no-referrer`; JSON, CSV and text (logs) answers get `Cache-Control:
no-store`, since they carry run details and log excerpts.

In `dev` auth mode every caller is an admin, so the API refuses what a web page elsewhere
could make a browser send: a `Host` other than a loopback name (DNS rebinding), and a write
without `Content-Type: application/json` (a cross-site form post).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finops_admin_plugin.http.errors import error_body
from finops_admin_plugin.http.server import RequestLimits
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings

__all__ = ["CONTENT_SECURITY_POLICY", "DevModeGuard", "SecurityHeaders", "install_security"]

# One policy for every answer, the UI's included: nothing but the page's own script, style and
# API calls; JSON, CSV and logs load nothing at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's API viewer (/docs) loads Swagger UI from its CDN with an inline bootstrap script.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_NO_STORE_TYPES = ("application/json", "text/csv", "text/plain", "application/problem+json")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path", "").startswith(f"{API_BASE_PATH}/docs")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault(
                    "Content-Security-Policy", _DOCS_POLICY if docs else CONTENT_SECURITY_POLICY
                )
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                media_type = headers.get("content-type", "").split(";")[0].strip().lower()
                if media_type in _NO_STORE_TYPES:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class DevModeGuard:
    """Dev mode only: loopback `Host`, and JSON writes."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        host = request.headers.get("host", "")
        problem = None
        if _host_name(host) not in _LOOPBACK_HOSTS:
            problem = (
                f"Host {host[:100]!r} is not allowed: in dev mode the API answers only to loopback names; "
                f"open it at http://127.0.0.1:{self.port}{API_BASE_PATH}/ui"
            )
        elif request.method in _WRITES:
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() != "application/json":
                shown = repr(content_type[:100]) if content_type else "none"
                problem = (
                    f"{request.method} {request.url.path} needs Content-Type: application/json; got {shown}"
                )
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = error_body(request, "InputError", problem, 400)
        await JSONResponse(body, status_code=400)(scope, receive, send)


def install_security(app: FastAPI, settings: AdminSettings) -> None:
    if settings.auth_mode == "dev":
        app.add_middleware(DevModeGuard, port=settings.api_port)
    app.add_middleware(RequestLimits)
    # Added last, so outermost: its headers are on every answer, the guards' included.
    app.add_middleware(SecurityHeaders)
