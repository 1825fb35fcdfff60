"""Serves the UI's static files and the little configuration the page needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from finops_admin_plugin.settings import API_BASE_PATH

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(tags=["ui"])


@router.get("/ui-config", summary="What the built-in UI needs to know (public)")
def ui_config(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "authMode": settings.auth_mode,
        "dagsterUiUrl": settings.dagster_ui_url.rstrip("/"),
        "apiBasePath": API_BASE_PATH,
    }


def mount_ui(app: FastAPI) -> None:
    @app.get(f"{API_BASE_PATH}/ui", include_in_schema=False)
    def _ui_root() -> RedirectResponse:
        return RedirectResponse(f"{API_BASE_PATH}/ui/", status_code=307)

    app.mount(f"{API_BASE_PATH}/ui/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
