"""The built-in UI's Failures screen in a real browser: three real runs failing for one cause are
one row with count 3, linked to the run list filtered on its signature, whose rows say "seen in 3
run(s) since …" and link back (tests/failures_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from finops_admin_plugin.app import create_app
from finops_admin_plugin.readmodel import Projector
from tests.admin.ui.browser import _Server
from tests.failures_world import FailuresWorld, failures_world


@pytest.fixture(scope="module")
def served(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FailuresWorld, str]]:
    with failures_world(pg_base_url, tmp_path_factory.mktemp("ui-failures")) as (world, settings):
        world.add_broken_run()
        app = create_app(settings, dagster_instance=world.instance, projector_interval=None)
        server = _Server(app)
        with server as base_url:
            resources = app.state.finops
            Projector(resources.source, resources.store).tick()
            yield world, base_url


def test_failures_screen_groups_three_runs_of_one_cause(
    browser: Any, served: tuple[FailuresWorld, str]
) -> None:
    world, base_url = served
    signature = httpx.get(f"{base_url}/failures", timeout=30).json()["items"][0]["signature"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{base_url}/ui/failures")
        row = page.locator(f"#failures tr[data-signature='{signature}']")
        row.wait_for()
        assert row.locator(".failure-count").inner_text() == "3"
        assert "unreadable_file" in row.inner_text()
        assert "<path>/export-<n>.parquet" in row.locator(".failure-text").inner_text()
        assert "Native" in row.inner_text() and "native-drop" in row.inner_text()
        assert page.locator("#tab-failures").get_attribute("aria-current") == "page"
        row.locator("a.failure-runs").click()
        page.wait_for_url(f"**/ui/?signature={signature}")
        page.wait_for_selector("#runs tbody tr[data-run-id]")
        shown = page.locator("#runs tbody tr[data-run-id]")
        assert [shown.nth(i).get_attribute("data-run-id") for i in range(shown.count())] == world.broken[::-1]
        seen = shown.first.locator("a.seen-in-runs")
        assert seen.inner_text().startswith("seen in 3 run(s) since ")
        seen.click()
        page.wait_for_url(f"**/ui/failures#signature-{signature}")
        page.locator(f"#signature-{signature}.highlight").wait_for()
        page.goto(f"{base_url}/ui/runs/{world.broken[0]}")
        page.locator("#detail-body a.seen-in-runs").wait_for()
        assert page.locator("#detail-body a.seen-in-runs").inner_text().startswith("seen in 3 run(s)")
    finally:
        context.close()
    assert errors == [], errors
