"""The built-in UI in a real browser (headless Chromium driven by Playwright) on real runs."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from finops_admin_plugin.app import create_app
from finops_admin_plugin.readmodel import reindex
from finops_admin_plugin.settings import AdminSettings
from tests.history import History
from tests.support import free_port, require

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def base_url(finops_history: History) -> Iterator[str]:
    settings = AdminSettings(
        FINOPS_DATABASE_URL=finops_history.readmodel_url,
        FINOPS_AUTH_MODE="dev",
        FINOPS_DAGSTER_UI_URL="http://127.0.0.1:3000",
    )
    reindex(settings, finops_history.instance)
    app = create_app(settings, dagster_instance=finops_history.instance, projector_interval=None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/finops/admin"
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the admin API did not start"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    require(executable is not None, "Debian package chromium is not installed")
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


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base_url}/ui/")
    page.wait_for_selector("#runs tbody tr[data-run-id]")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_run_list_shows_every_run_with_its_status(page: Any, base_url: str, tmp_path: Path) -> None:
    api = httpx.get(f"{base_url}/runs", params={"limit": 200}).json()
    rows = page.locator("#runs tbody tr[data-run-id]")
    assert rows.count() == len(api["items"])
    assert page.locator("#total").inner_text() == f"{api['totalItems']} run(s)"
    shown = {
        rows.nth(i).get_attribute("data-run-id"): rows.nth(i).locator(".badge").first.inner_text()
        for i in range(rows.count())
    }
    assert shown == {item["runId"]: item["status"] for item in api["items"]}
    assert page.locator("#dev-banner").is_visible()  # dev mode is loud
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)


def test_failed_filter_and_detail_show_the_cause(page: Any, finops_history: History) -> None:
    page.check("input[name=status][value=FAILED]")
    page.click("#filters button[type=submit]")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#runs tbody tr[data-run-id] .badge')]"
        ".every(b => b.textContent === 'FAILED')"
    )
    failed = page.locator("#runs tbody tr[data-run-id]")
    ids = {failed.nth(i).get_attribute("data-run-id") for i in range(failed.count())}
    assert finops_history.runs["partial"] in ids and finops_history.runs["plan_failed"] in ids
    assert finops_history.runs["ok_1"] not in ids

    page.click(f"tr[data-run-id='{finops_history.runs['partial']}']")
    drawer = page.locator("#detail")
    drawer.locator("h3", has_text="Domains").wait_for()
    text = drawer.inner_text()
    assert finops_history.runs["partial"] in text
    native = drawer.locator("tr", has_text="native")
    assert native.locator(".badge").first.inner_text() == "FAILED"
    assert "parquet" in native.inner_text().lower()  # the cause, not just "failed"
    assert drawer.locator("a", has_text="Download logs").get_attribute("href").endswith("/logs")
    # A failed domain means no MV refresh in that run: every view is shown SKIPPED.
    views = drawer.locator("h3:has-text('Materialized views') + table tbody tr")
    assert views.count() == 6
    assert {views.nth(i).locator(".badge").inner_text() for i in range(6)} == {"SKIPPED"}
