"""Liveness: answers 200 when the plugin's databases answer, 503 otherwise.

Behind the database gate like every route (a database known down is a 503 at once), and
through the read model's pool: a held connection answers `SELECT 1` in well under a
millisecond, where a fresh connection costs several. Dagster's run storage opens a fresh
connection per query, so while the gate's own probe (a held connection, every
`PROBE_INTERVAL_SECONDS`) says it answers, that answer is the check.

An `async` route with no sync dependency: FastAPI runs sync routes and dependencies in one
thread pool (40 threads), which requests waiting on a slow Backstage once filled, and a
readiness probe queued behind them took 59.8 s. Its database check runs on the event loop's
own executor instead, which no request handler uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from finops_admin_plugin.api.deps import get_resources
from finops_admin_plugin.http.availability import DAGSTER_STORAGE
from finops_admin_plugin.http.errors import error_body
from finops_admin_plugin.resources import AdminResources

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: checks the warehouse and Dagster storage")
async def healthz(request: Request) -> Any:
    checks = await asyncio.to_thread(_checks, await get_resources(request))
    if all(v == "ok" for v in checks.values()):
        return {"status": "ok", "checks": checks}
    failed = ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    body = error_body(request, "ServiceUnavailableError", f"not healthy: {failed}", 503)
    body["checks"] = checks
    return JSONResponse(body, status_code=503)


def _checks(resources: AdminResources) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with resources.store.connection() as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure is "unavailable", reported, never raised
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if resources.dagster_configured:
        checks["dagster"] = "ok" if resources.gate.answers(DAGSTER_STORAGE) else resources.dagster_check()
    return checks
