"""The FastAPI application, built by a factory from settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI

from finops_admin_plugin import __version__
from finops_admin_plugin.api import coverage, failures, health, logs, me, metrics, reprocess, runs, sources
from finops_admin_plugin.auth import announce_auth
from finops_admin_plugin.http.availability import install_availability
from finops_admin_plugin.http.errors import install_error_handlers
from finops_admin_plugin.http.openapi import install_openapi_contract
from finops_admin_plugin.http.security import install_security
from finops_admin_plugin.resources import AdminResources
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings, get_settings
from finops_admin_plugin.ui import mount_ui
from finops_admin_plugin.ui.router import router as ui_router

if TYPE_CHECKING:
    from dagster import DagsterInstance

__all__ = ["create_app", "openapi_document"]


def create_app(
    settings: AdminSettings | None = None,
    *,
    dagster_instance: DagsterInstance | None = None,
    projector_interval: float | None = 1.0,
) -> FastAPI:
    """The admin API. `dagster_instance` overrides DAGSTER_HOME (tests); `projector_interval=None`
    serves the read model without following Dagster (a separate process, or a test, projects)."""
    settings = settings or get_settings()
    # Every long-lived object lives in this one container; routes reach it via `api.deps`.
    resources = AdminResources(
        settings, dagster_instance=dagster_instance, projector_interval=projector_interval
    )
    announce_auth(settings, resources.authenticator)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(resources.start)
        try:
            yield
        finally:
            await asyncio.to_thread(resources.stop)

    app = FastAPI(
        lifespan=lifespan,
        title="FinOps Batch Admin API",
        version=__version__,
        description="Runs of the FinOps batch (derived from Dagster), logs, reprocess requests.",
        openapi_url=f"{API_BASE_PATH}/openapi.json",
        docs_url=f"{API_BASE_PATH}/docs",
        redoc_url=None,
    )
    app.state.finops = resources
    install_error_handlers(app)
    install_availability(app, resources.gate)
    install_security(app, settings)
    router = APIRouter(prefix=API_BASE_PATH)
    router.include_router(health.router)
    router.include_router(runs.router)
    router.include_router(logs.router)
    router.include_router(coverage.router)
    router.include_router(sources.router)
    router.include_router(failures.router)
    router.include_router(metrics.router)
    router.include_router(reprocess.router)
    router.include_router(me.router)
    router.include_router(ui_router)
    app.include_router(router)
    mount_ui(app)
    install_openapi_contract(app)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the API as the code defines it, whatever the environment: neutral
    settings, no database reached (`make contract` writes it to docs/openapi.json)."""
    settings = AdminSettings(FINOPS_AUTH_MODE="backstage", FINOPS_BACKSTAGE_URL="http://127.0.0.1:9")
    return create_app(settings).openapi()
