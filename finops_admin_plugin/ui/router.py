"""Serves the UI's static files and the little configuration the page needs.

The page is one `index.html` routed in the browser on `location.pathname`, so the addresses of
its screens (`/ui/`, `/ui/runs/{runId}`, `/ui/coverage`, `/ui/sources`, `/ui/failures`) all answer
that file. Its script is a set of ES modules (`main.js` imports the others), served as
`text/javascript`: a browser refuses a module of any other type. Every answer of the UI carries a strict
Content-Security-Policy: the page loads only its own scripts and style.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from finops_admin_plugin.api.deps import SettingsDep
from finops_admin_plugin.http.security import CONTENT_SECURITY_POLICY
from finops_admin_plugin.settings import API_BASE_PATH
from finops_pipeline.contract import DOMAIN_LABELS, DOMAINS

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "mount_ui", "router"]

STATIC_DIR = Path(__file__).parent / "static"
UI_PATH = f"{API_BASE_PATH}/ui"

UI_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The files change with the package: revalidate instead of serving a stale module.
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["ui"])


@router.get("/ui-config", summary="What the built-in UI needs to know (public)")
def ui_config(settings: SettingsDep) -> dict[str, Any]:
    # Labels are not expressible in the JSON schema (the domain names are, as an enum).
    return {
        "authMode": settings.auth_mode,
        "dagsterUiUrl": settings.dagster_ui_url.rstrip("/"),
        "apiBasePath": API_BASE_PATH,
        # The page names domains as the API does instead of restating the labels.
        "domains": [{"domain": domain, "label": DOMAIN_LABELS[domain]} for domain in DOMAINS],
    }


class _UiFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        response.headers.update(UI_HEADERS)
        # A module's type must be JavaScript (`nosniff` is on): set it here rather than trust the
        # host's MIME table, which on some systems maps `.js` to `text/plain`.
        if path.endswith(".js"):
            response.headers["Content-Type"] = "text/javascript; charset=utf-8"
        return response


def _index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=UI_HEADERS)


def mount_ui(app: FastAPI) -> None:
    @app.get(UI_PATH, include_in_schema=False)
    def _ui_root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/", status_code=307)

    # Screens other than the list: the same page, which reads its route from the address.
    @app.get(f"{UI_PATH}/runs/{{run_id}}", include_in_schema=False)
    def _ui_run(run_id: Annotated[str, PathParam(max_length=200)]) -> FileResponse:
        return _index()

    @app.get(f"{UI_PATH}/coverage", include_in_schema=False)
    def _ui_coverage() -> FileResponse:
        return _index()

    @app.get(f"{UI_PATH}/sources", include_in_schema=False)
    def _ui_sources() -> FileResponse:
        return _index()

    @app.get(f"{UI_PATH}/failures", include_in_schema=False)
    def _ui_failures() -> FileResponse:
        return _index()

    app.mount(f"{UI_PATH}/", _UiFiles(directory=STATIC_DIR, html=True), name="ui")
