"""The FastAPI application, built by a factory from settings."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from finops_admin_plugin import __version__
from finops_admin_plugin.api import health
from finops_admin_plugin.auth import install_auth
from finops_admin_plugin.auth.router import router as auth_router
from finops_admin_plugin.errors import install_error_handlers
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings, get_settings

__all__ = ["create_app"]


def create_app(settings: AdminSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="FinOps Batch Admin API",
        version=__version__,
        description="Runs of the FinOps batch (derived from Dagster), logs, reprocess requests.",
        openapi_url=f"{API_BASE_PATH}/openapi.json",
        docs_url=f"{API_BASE_PATH}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    install_auth(app, settings)
    install_error_handlers(app)
    router = APIRouter(prefix=API_BASE_PATH)
    router.include_router(health.router)
    router.include_router(auth_router)
    app.include_router(router)
    return app
