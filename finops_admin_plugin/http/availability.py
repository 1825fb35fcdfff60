"""Database failures are fast 503s.

A `DatabaseGate` probes the API's two PostgreSQL databases (the read model's, and Dagster's
run storage) twice a second on a thread of its own, each over one held connection. The
`DatabaseGateMiddleware` answers `ServiceUnavailableError` at once while one of them is
down, and also when one goes down while a request is waiting on it (the request's worker
thread finishes on its own; its answer is dropped). Database exceptions that still reach a
route are mapped to the same 503. No message carries driver text (hosts, socket paths): the
server log has it. When the database is back the next probe reopens the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from finops_admin_plugin.http.errors import error_body
from finops_admin_plugin.settings import API_BASE_PATH

if TYPE_CHECKING:
    from dagster import DagsterInstance

__all__ = [
    "DAGSTER_STORAGE",
    "READ_MODEL",
    "DatabaseGate",
    "DatabaseGateMiddleware",
    "database_gate",
    "install_availability",
]

log = logging.getLogger(__name__)

READ_MODEL = "the admin read model's database"
DAGSTER_STORAGE = "Dagster's run storage"
PROBE_INTERVAL_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 1
# A probe that has not succeeded for this long (a hung connection) counts as down.
STALE_AFTER_SECONDS = 1.5
# Paths that never touch a database: the OpenAPI document, its viewer, the UI's files.
_UNGATED = (f"{API_BASE_PATH}/openapi.json", f"{API_BASE_PATH}/docs", f"{API_BASE_PATH}/ui")
# A run's detail and logs are read from Dagster (the read model only adds anomaly scores).
_DAGSTER_ONLY = re.compile(rf"^{re.escape(API_BASE_PATH)}/runs/(?!reprocess$)[^/]+(/logs)?$")


def unavailable_message(name: str) -> str:
    return f"{name} (PostgreSQL) does not answer; try again in a moment"


def _psycopg_url(url: str) -> str:
    # Dagster's storage URL names SQLAlchemy's driver; psycopg takes the plain scheme.
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class _Target:
    def __init__(self, name: str, url: Callable[[], str | None]) -> None:
        self.name = name
        self.url = url
        self.conn: psycopg.Connection[Any] | None = None
        self.last_ok = time.monotonic()
        self.failed = False
        self.watched = False  # a URL was probed: the state below is this database's

    def probe(self) -> None:
        try:
            url = self.url()
        except Exception:  # the instance cannot even be opened: its storage is down
            url = None
            self._fail("cannot open the Dagster instance")
            return
        if url is None:
            self.last_ok, self.failed = time.monotonic(), False  # not configured: not ours to gate
            self.watched = False
            return
        self.watched = True
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(
                    _psycopg_url(url),
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    application_name="finops-admin probe",
                )
            self.conn.execute("SELECT 1")
        except Exception as exc:
            self._fail(" ".join(str(exc).split())[:300] or type(exc).__name__)
            return
        if self.failed:
            log.warning("%s answers again", self.name)
        self.last_ok, self.failed = time.monotonic(), False

    def _fail(self, why: str) -> None:
        if not self.failed:
            log.warning("%s does not answer: %s", self.name, why)
        self.failed = True
        if self.conn is not None:
            with contextlib.suppress(Exception):  # already broken
                self.conn.close()
            self.conn = None

    @property
    def down(self) -> bool:
        return self.failed or time.monotonic() - self.last_ok > STALE_AFTER_SECONDS


class DatabaseGate:
    """Whether the API's databases answer, known within a probe interval."""

    def __init__(self, targets: dict[str, Callable[[], str | None]]) -> None:
        self._targets = [_Target(name, url) for name, url in targets.items()]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for target in self._targets:
            target.probe()
        self._thread = threading.Thread(target=self._loop, name="finops-db-gate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for target in self._targets:
            if target.conn is not None:
                target.conn.close()

    def _loop(self) -> None:
        while not self._stop.wait(PROBE_INTERVAL_SECONDS):
            for target in self._targets:
                target.probe()

    def answers(self, name: str) -> bool:
        """True when the database `name` is probed and answered its last probe (within
        `STALE_AFTER_SECONDS`); False when it is down, not probed, or the gate is not started."""
        if self._thread is None:
            return False
        return any(t.name == name and t.watched and not t.down for t in self._targets)

    def down(self, path: str = "") -> str | None:
        """The name of the first database `path` needs that does not answer; None when all do."""
        if self._thread is None:
            return None
        needed = {DAGSTER_STORAGE} if _DAGSTER_ONLY.match(path) else None
        return next((t.name for t in self._targets if t.down and (needed is None or t.name in needed)), None)


def database_gate(
    read_model_url: str, dagster_instance: Callable[[], DagsterInstance | None]
) -> DatabaseGate:
    """The gate on the read model's database and Dagster's run storage.

    `dagster_instance` is called at each probe (the instance is opened lazily); None means
    DAGSTER_HOME is not set, and the routes that need it say so themselves.
    """

    def dagster_url() -> str | None:
        instance = dagster_instance()
        if instance is None:
            return None
        url = getattr(instance.run_storage, "postgres_url", None)
        return str(url) if url else None

    return DatabaseGate({READ_MODEL: lambda: read_model_url or None, DAGSTER_STORAGE: dagster_url})


class DatabaseGateMiddleware:
    """503 at once while a database is down, and as soon as it goes down mid-request."""

    def __init__(self, app: ASGIApp, gate: DatabaseGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_BASE_PATH) or path.startswith(_UNGATED):
            await self.app(scope, receive, send)
            return
        down = self.gate.down(path)
        if down is not None:
            await self._unavailable(scope, receive, send, down)
            return
        started = answered = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        while not task.done():
            await asyncio.wait({task}, timeout=0.1)
            if task.done() or started:
                break
            down = self.gate.down(path)
            if down is not None:
                answered = True
                task.add_done_callback(_ignore_result)
                await self._unavailable(scope, receive, send, down)
                return
        await task

    async def _unavailable(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        request = Request(scope, receive)
        body = error_body(request, "ServiceUnavailableError", unavailable_message(name), 503)
        await JSONResponse(body, status_code=503, headers={"Retry-After": "5"})(scope, receive, send)


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a request abandoned while its database was down ended with %r", task.exception())


def _database_errors() -> tuple[type[Exception], ...]:
    import sqlalchemy.exc
    from psycopg_pool import PoolTimeout

    from finops_admin_plugin.dagster_reader import DagsterUnavailable
    from finops_admin_plugin.readmodel import ReadModelUnavailable

    errors: list[type[Exception]] = [
        DagsterUnavailable,
        psycopg.OperationalError,
        PoolTimeout,
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        ReadModelUnavailable,
    ]
    try:
        from dagster_postgres.utils import DagsterPostgresException

        errors.append(DagsterPostgresException)
    except ImportError:  # pragma: no cover - dagster-postgres is a dependency
        pass
    return tuple(errors)


def install_availability(app: FastAPI, gate: DatabaseGate) -> None:
    """The gate's middleware, and 503 for database errors that reach a route."""
    app.add_middleware(DatabaseGateMiddleware, gate=gate)

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        from finops_admin_plugin.readmodel import ReadModelUnavailable

        name = READ_MODEL if isinstance(exc, ReadModelUnavailable | psycopg.Error) else DAGSTER_STORAGE
        log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        body = error_body(request, "ServiceUnavailableError", unavailable_message(name), 503)
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    for error in _database_errors():
        app.add_exception_handler(error, _database_error)
