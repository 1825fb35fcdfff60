"""What the browser tests of both user interfaces share: one run history behind a real admin API,
headless Chromium (Debian's), axe-core, and the checks every page must pass.

The built-in UI tests (`test_ui.py`) and the Backstage plugin tests (`test_ui_backstage.py`) use
the same history (tests/history.py), built once: its runs are real Dagster runs.
Screenshots go to `tmp_path`, or to `$FINOPS_SCREENSHOTS_DIR` when set (how
`docs/screenshots/` is made: `FINOPS_SCREENSHOTS_DIR=docs/screenshots pytest tests/admin/ui/test_ui.py
tests/admin/ui/test_ui_backstage.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from finops_admin_plugin.app import create_app
from finops_admin_plugin.readmodel import reindex
from finops_admin_plugin.settings import AdminSettings
from tests.history import History, build_history
from tests.support import free_port, launch_run_requests, reprocess_sensor_tick, require

__all__ = [
    "CHROMIUM_ARGS",
    "READER_TOKEN",
    "UiWorld",
    "assert_fits",
    "axe_serious",
    "axe_source",
    "browser",
    "launch_filed_reprocess",
    "screenshot_path",
    "shown_money",
    "ui_world",
]

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
READER_TOKEN = "svc-reader-token-0123456789abcdef"
EXTERNAL_LOGS = "http://127.0.0.1:9/app/discover#/?q=run:{runId}&from={start}&to={end}"
AXE_DIR = Path(__file__).parent / "axe"


@dataclass
class UiWorld:
    history: History
    base_url: str  # the admin API of an admin caller (dev auth mode), /finops/admin
    reader_url: str  # the same read model, static tokens: READER_TOKEN is a read-only finops-user
    api_port: int
    landing: Path


class _Server:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the admin API did not start"
        return f"http://127.0.0.1:{self.port}/finops/admin"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


# Package scope: alive from the first browser test module to the end of tests/admin (the two
# modules run one after the other), not for the whole session (its API follows Dagster).
@pytest.fixture(scope="package")
def ui_world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorld]:
    """The history of tests/history.py behind two API servers; the admin one follows Dagster."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        history = build_history(pg_base_url, tmp_path_factory.mktemp("ui-history"), monkeypatch)
    common = {
        # One database for the warehouse and the plugin's tables, as in production: a reprocess
        # dry run reads what is loaded from it.
        "FINOPS_DATABASE_URL": history.warehouse_url,
        "FINOPS_LANDING_URI": str(history.landing),
        "FINOPS_DAGSTER_UI_URL": "http://127.0.0.1:3000",
        "FINOPS_LOGS_URL_TEMPLATE": EXTERNAL_LOGS,
    }
    admin = AdminSettings(**common, FINOPS_AUTH_MODE="dev", FINOPS_REPROCESS_RATE_LIMIT=1000)
    reader = AdminSettings(
        **common,
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=json.dumps(
            [{"token": READER_TOKEN, "subject": "component:default/finops-dashboard", "role": "user"}]
        ),
        FINOPS_USER_ACCESS="read",
    )
    try:
        reindex(admin, history.instance)
        admin_server = _Server(create_app(admin, dagster_instance=history.instance, projector_interval=0.5))
        reader_server = _Server(
            create_app(reader, dagster_instance=history.instance, projector_interval=None)
        )
        with admin_server as base_url, reader_server as reader_url:
            yield UiWorld(history, base_url, reader_url, admin_server.port, history.landing)
    finally:
        history.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    require(executable is not None, "Debian package chromium is not installed (make browser)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed")
        raise
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's `axe.min.js`, installed with `npm ci` from tests/admin/ui/axe's lockfile into a
    cache folder outside the working tree (once per lockfile)."""
    lock = (AXE_DIR / "package-lock.json").read_bytes()
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache_root / "finops-admin-tests" / f"axe-{hashlib.sha256(lock).hexdigest()[:16]}"
    script = folder / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        require(
            npm is not None, "npm (Node.js 20) is needed to install axe-core for the accessibility checks"
        )
        assert npm is not None
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(AXE_DIR / name, folder / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        require(done.returncode == 0, f"npm ci of axe-core failed: {done.stderr[-2000:]}")
    return script.read_text()


def axe_serious(page: Any, source: str, *, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source)  # through the DevTools protocol: the page's CSP does not apply
    result = page.evaluate(
        """async (exclude) => {
            const context = exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
            const r = await axe.run(context, { runOnly: { type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
            return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary) }));
        }""",
        exclude or [],
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_fits(page: Any, panels: str) -> dict[str, Any]:
    """Nothing wider than the page, and nothing wider than its panel (a table may scroll inside
    its own scroll box, which is what keeps the panel in bounds). Returns the measures."""
    measures = page.evaluate(
        """(panels) => ({
            page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
            panels: [...document.querySelectorAll(panels)].filter((p) => p.offsetParent !== null)
                .map((p) => [p.id || p.className, p.scrollWidth, p.clientWidth]),
        })""",
        panels,
    )
    width, client = measures["page"]
    assert width <= client, f"the page is {width} px wide in a {client} px window"
    too_wide = [p for p in measures["panels"] if p[1] > p[2]]
    assert not too_wide, f"panels wider than their box: {too_wide}"
    assert measures["panels"], f"no panel matches {panels!r}"
    return measures


def screenshot_path(name: str, tmp_path: Path) -> Path:
    folder = os.environ.get("FINOPS_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder) / name
    return tmp_path / name


def _sensor_tick(world: UiWorld) -> list[Any]:
    return reprocess_sensor_tick(world.history.instance, world.history.warehouse_url)


def launch_filed_reprocess(world: UiWorld, monkeypatch: pytest.MonkeyPatch, request_id: str) -> str:
    """The reprocess sensor's ticks, as the daemon runs them, for the one PENDING request
    `request_id`: its run launched, then the request recorded LAUNCHED. Returns the run id."""
    monkeypatch.setenv("FINOPS_DATABASE_URL", world.history.warehouse_url)
    monkeypatch.setenv("FINOPS_LANDING_URI", str(world.history.landing))
    launched = launch_run_requests(world.history.instance, _sensor_tick(world))
    assert len(launched) == 1
    deadline = time.monotonic() + 30
    while httpx.get(f"{world.base_url}/reprocess/{request_id}", timeout=30).json()["state"] == "PENDING":
        assert time.monotonic() < deadline, "the sensor did not record the launch"
        _sensor_tick(world)
        time.sleep(0.3)
    return launched[0]


# Minor units of the currencies a test may meet that do not have two (ISO 4217).
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "TND": 3}


def shown_money(item: dict[str, str]) -> str:
    """One currency's amount as both UIs show it in an `en-US` browser, worked out here without
    the UIs' code: rounded half away from zero to the currency's minor unit, grouped, the code
    first (Intl puts a no-break space after it); a credit that rounds to zero loses its sign."""
    digits = _MINOR_UNITS.get(item["currency"], 2)
    rounded = Decimal(item["amount"]).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{item['currency']}\u00a0{abs(rounded):,.{digits}f}"
