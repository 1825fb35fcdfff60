"""The built-in UI's Sources screen (/finops/admin/ui/sources) in a real browser, against a real
admin API over a database written by the pipeline's own `record_scan` and `record_load`
(tests/admin/api/test_sources.py's world: one month in each state)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from finops_admin_plugin.app import create_app
from finops_admin_plugin.settings import AdminSettings
from tests.admin.api.test_sources import SOURCES_FILE, World, _write_history
from tests.admin.ui.browser import _Server, assert_fits, axe_serious, screenshot_path
from tests.support import create_database

READY = "#sources-body section.source, #sources-empty"


@pytest.fixture(scope="module")
def sources_world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    folder = tmp_path_factory.mktemp("ui-sources")
    world = _write_history(create_database(pg_base_url, "uisrc"))
    sources_file = folder / "sources.yaml"
    sources_file.write_text(SOURCES_FILE, encoding="utf-8")
    settings = AdminSettings(
        FINOPS_DATABASE_URL=world.url, FINOPS_AUTH_MODE="dev", FINOPS_SOURCES=str(sources_file)
    )
    with _Server(create_app(settings, projector_interval=None)) as base_url:
        yield world, base_url


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    csp: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert csp == [], f"Content-Security-Policy violations: {csp}"


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(READY)


def test_each_source_and_each_state_of_its_months(
    page: Any, sources_world: tuple[World, str], tmp_path: Path
) -> None:
    _, base_url = sources_world
    body = httpx.get(f"{base_url}/sources", timeout=30).json()
    _open(page, f"{base_url}/ui/sources")
    assert page.locator("#tab-sources").get_attribute("aria-current") == "page"
    assert page.locator("section.source h2").all_inner_texts() == [s["name"] for s in body["items"]]

    aws = body["items"][0]
    table = page.locator("table.sources[data-source='aws-payer']")
    assert table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.period)") == [
        m["period"] for m in aws["months"]
    ]
    months = {m["state"]: m for m in aws["months"]}
    assert set(months) == {"LOADED", "PENDING", "INCOMPLETE", "FAILED", "MISSING"}
    for state, month in months.items():
        row = table.locator(f"tr[data-period='{month['period']}']")
        chip = row.locator(f".badge.src-{state}")
        assert chip.inner_text() == state

    pending = table.locator(f"tr[data-period='{months['PENDING']['period']}']")
    latest = months["PENDING"]["latest"]
    assert pending.locator(".delivery-id").first.get_attribute("title") == latest["deliveryId"]
    assert pending.locator(f"[title='{latest['bytes']:,} bytes']").inner_text() == "2.0 KiB"

    loaded = table.locator(f"tr[data-period='{months['LOADED']['period']}']")
    link = loaded.locator("a[data-nav]")
    run_id = months["LOADED"]["loaded"]["runId"]
    assert link.get_attribute("href") == f"/finops/admin/ui/runs/{run_id}"

    failed = table.locator(f"tr[data-period='{months['FAILED']['period']}']")
    assert "failed in run run-p2-n (gate incomplete_delivery)" in failed.inner_text()
    failed.locator(".tip").focus()
    assert "gate incomplete_delivery: data/part-3.parquet" in failed.locator("[role=tooltip]").inner_text()

    incomplete = table.locator(f"tr[data-period='{months['INCOMPLETE']['period']}']")
    assert "since 30 h" in incomplete.inner_text()
    missing = table.locator(f"tr[data-period='{months['MISSING']['period']}']")
    assert "expected by" in missing.inner_text()

    oci = page.locator("section.source", has=page.locator("h2", has_text="oci-tenancy"))
    assert "listing failed: AccessDenied" in oci.inner_text()
    azure = page.locator("section.source", has=page.locator("h2", has_text="azure-ea"))
    assert "Nothing delivered yet." in azure.inner_text()
    assert page.locator("#sources-empty").count() == 0
    assert_fits(page, ".panel")
    page.screenshot(path=str(screenshot_path("builtin-sources.png", tmp_path)), full_page=True)

    link.click()  # a run link changes screens without reloading the page
    page.wait_for_function("() => !document.querySelector('#screen-detail').hidden")
    assert urlparse(page.url).path == f"/finops/admin/ui/runs/{run_id}"


def test_sources_screen_is_accessible(page: Any, sources_world: tuple[World, str], axe_source: str) -> None:
    _, base_url = sources_world
    _open(page, f"{base_url}/ui/sources")
    assert axe_serious(page, axe_source) == []


def test_without_sources_file_and_nothing_listed_the_screen_says_so(page: Any, pg_base_url: str) -> None:
    settings = AdminSettings(
        FINOPS_DATABASE_URL=create_database(pg_base_url, "uisrcempty"), FINOPS_AUTH_MODE="dev"
    )
    with _Server(create_app(settings, projector_interval=None)) as base_url:
        _open(page, f"{base_url}/ui/sources")
        assert "No sources file is set (FINOPS_SOURCES)" in page.locator("#sources-empty").inner_text()
        assert page.locator("section.source").count() == 4
        assert page.get_by_text("location unknown to the API").count() == 4
