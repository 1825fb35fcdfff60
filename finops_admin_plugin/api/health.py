"""Liveness: answers 200 when the plugin's databases answer, 503 otherwise."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from finops_admin_plugin.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: checks the warehouse and Dagster storage")
def healthz(request: Request) -> Any:
    settings = request.app.state.settings
    checks: dict[str, str] = {}
    try:
        with psycopg.connect(settings.database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure is "unavailable", reported, never raised
        checks["database"] = f"unavailable: {type(exc).__name__}"
    instance_check = getattr(request.app.state, "dagster_check", None)
    if instance_check is not None:
        checks["dagster"] = instance_check()
    if all(v == "ok" for v in checks.values()):
        return {"status": "ok", "checks": checks}
    failed = ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    body = error_body(request, "ServiceUnavailableError", f"not healthy: {failed}", 503)
    body["checks"] = checks
    return JSONResponse(body, status_code=503)
