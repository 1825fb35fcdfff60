"""API errors in Backstage's error body, so `ResponseError.fromResponse` reads every failure.

{"error": {"name": "InputError", "message": "..."},
 "request": {"method": "GET", "url": "/finops/admin/runs?..."},
 "response": {"statusCode": 400}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "InputError",
    "NotAllowedError",
    "NotFoundError",
    "ServiceUnavailableError",
    "TooManyRequestsError",
    "error_body",
    "install_error_handlers",
    "shown",
]


def shown(value: Any, limit: int = 80) -> str:
    """A user's value quoted for an error message, cut after `limit` characters."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "…")
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class ApiError(Exception):
    name = "Error"
    status_code = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InputError(ApiError):
    name, status_code = "InputError", 400


class AuthenticationError(ApiError):
    name, status_code = "AuthenticationError", 401

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class NotAllowedError(ApiError):
    name, status_code = "NotAllowedError", 403


class NotFoundError(ApiError):
    name, status_code = "NotFoundError", 404


class ConflictError(ApiError):
    name, status_code = "ConflictError", 409


class TooManyRequestsError(ApiError):
    name, status_code = "TooManyRequestsError", 429


class ServiceUnavailableError(ApiError):
    name, status_code = "ServiceUnavailableError", 503


def error_body(request: Request, name: str, message: str, status_code: int) -> dict[str, Any]:
    url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "error": {"name": name, "message": message},
        "request": {"method": request.method, "url": url},
        "response": {"statusCode": status_code},
    }


def _respond(
    request: Request, name: str, message: str, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(request, name, message, status), status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        where = ".".join(loc) or "request"
        value = err.get("input")
        shown = f", got {value!r}" if value is not None and not isinstance(value, dict | list) else ""
        parts.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _respond(request, exc.name, exc.message, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _respond(request, "InputError", _describe_validation(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {404: "NotFoundError", 405: "InputError", 401: "AuthenticationError", 403: "NotAllowedError"}
        name = names.get(exc.status_code, "Error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return _respond(request, name, message, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, never an input problem: log it whole, answer without internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _respond(request, "Error", "internal error; the server log has the details", 500)
