"""The live log tail, in Chromium, on a real run that is writing its log: the built-in UI's, and
the Backstage plugin's through the proxy of its dev harness (tests/admin/ui/plugin_harness.py).

Its own world, lighter than the shared history: a Postgres-backed Dagster instance, a slow run
(tests/admin/logs/slow_job.py: a line every 0.3 s in a step process of its own), and the admin
API in dev auth mode on loopback. The page opens the run's detail while it runs.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from finops_admin_plugin.app import create_app
from finops_admin_plugin.logs.followers import FollowerSlots
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings
from tests.admin.logs.slow_job import start_slow_run
from tests.admin.ui.plugin_harness import serve_harness
from tests.support import create_database, local_logs_instance, serving

LINES, INTERVAL = 20, 0.3
SLOW_LINE = re.compile(r"slow line (\d{3}) of \d+")
_MORE_LINES_THAN = (
    "n => (document.querySelector('#log-tail').textContent.match(/slow line/g) || []).length > n"
)


@dataclass
class LiveWorld:
    home: Path
    instance: DagsterInstance
    base: str
    followers: FollowerSlots  # the API's open log followers


@pytest.fixture(scope="module")
def live_world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveWorld]:
    tmp = tmp_path_factory.mktemp("live-logs")
    home = tmp / "dagster_home"
    instance = local_logs_instance(pg_base_url, tmp)
    settings = AdminSettings(
        FINOPS_DATABASE_URL=create_database(pg_base_url, "readmodel"),
        FINOPS_AUTH_MODE="dev",
        FINOPS_LOG_FOLLOW_POLL_SECONDS="0.2",
    )
    app = create_app(settings, dagster_instance=instance, projector_interval=None)
    try:
        with serving(app) as port:
            yield LiveWorld(
                home, instance, f"http://127.0.0.1:{port}{API_BASE_PATH}", app.state.finops.log_followers
            )
    finally:
        instance.dispose()


def _shown(page: Any) -> list[int]:
    return [int(n) for n in SLOW_LINE.findall(page.locator("#log-tail").inner_text())]


def _at_bottom(page: Any) -> bool:
    return bool(page.eval_on_selector("#log-tail", "e => e.scrollTop + e.clientHeight >= e.scrollHeight - 8"))


def test_the_run_detail_tails_the_log_of_a_running_run(browser: Any, live_world: LiveWorld) -> None:
    run = start_slow_run(
        live_world.instance, live_world.home, uuid.uuid4().hex, lines=LINES, interval=INTERVAL
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{live_world.base}/ui/runs/{run.run_id}")
        page.wait_for_selector(".tail[data-state='following']", timeout=30_000)
        assert page.locator("#download-logs").is_visible()

        # Lines arrive while the run runs: seen growing, in order, before the run ends.
        seen: list[tuple[float, int]] = []
        scrolled = False
        deadline = time.monotonic() + 90
        while page.locator(".tail").get_attribute("data-state") != "ended" and time.monotonic() < deadline:
            shown = _shown(page)
            if shown and (not seen or shown[-1] != seen[-1][1]):
                assert shown == list(range(len(shown))), shown
                seen.append((time.time(), shown[-1]))
            if len(seen) == 3 and not scrolled and shown[-1] < LINES - 6:
                scrolled = True
                # Scrolled up to read: the view stays there while lines keep coming ...
                page.eval_on_selector("#log-tail", "e => { e.scrollTop = 0; }")
                page.wait_for_function(_MORE_LINES_THAN, arg=len(shown), timeout=10_000)
                assert page.eval_on_selector("#log-tail", "e => e.scrollTop") == 0
                # ... and follows again once back at the bottom.
                page.eval_on_selector("#log-tail", "e => { e.scrollTop = e.scrollHeight; }")
            time.sleep(0.1)
        assert run.wait(60) == 0
        record = live_world.instance.get_run_record_by_id(run.run_id)
        assert record is not None and record.end_time is not None
        early = [t for t, _ in seen if t < record.end_time]
        assert len(early) >= 4, f"lines did not arrive while the run ran: {seen}, run end {record.end_time}"
        assert early[-1] - early[0] >= 1.0, seen

        # The tail says when the stream has ended; every line is there, the view at the bottom.
        page.wait_for_selector(".tail[data-state='ended']", timeout=30_000)
        assert "Stream ended" in page.locator(".tail .tail-status").inner_text()
        assert _shown(page) == list(range(LINES))
        assert _at_bottom(page)
        assert "end of log" in page.locator("#log-tail").inner_text()
    finally:
        context.close()
    assert errors == []


def test_pause_holds_the_lines_until_resumed(browser: Any, live_world: LiveWorld) -> None:
    run = start_slow_run(live_world.instance, live_world.home, uuid.uuid4().hex, lines=30, interval=INTERVAL)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{live_world.base}/ui/runs/{run.run_id}")
        page.wait_for_selector(".tail[data-state='following']", timeout=30_000)
        page.wait_for_function(
            "() => /slow line 001/.test(document.querySelector('#log-tail').textContent)", timeout=30_000
        )
        page.click("#tail-pause")
        assert page.locator(".tail").get_attribute("data-state") == "paused"
        held = len(_shown(page))
        time.sleep(1.5)  # about five lines written meanwhile
        assert len(_shown(page)) == held
        page.click("#tail-pause")
        page.wait_for_function(
            _MORE_LINES_THAN,
            arg=held,
            timeout=10_000,
        )
        page.wait_for_selector(".tail[data-state='ended']", timeout=30_000)
        assert _shown(page) == list(range(30))
        assert run.wait(30) == 0
    finally:
        context.close()


# The plugin's tail (backstage-plugin/src/components/RunDetailPage/LogTail.tsx).
_PLUGIN_TAIL = "[data-testid='log-tail']"
_PLUGIN_LOG = f"{_PLUGIN_TAIL} pre"
_PLUGIN_MORE_LINES_THAN = (
    f'n => (document.querySelector("{_PLUGIN_LOG}").textContent.match(/slow line/g) || []).length > n'
)


@pytest.fixture(scope="module")
def plugin_harness(live_world: LiveWorld) -> Iterator[str]:
    """The plugin's dev app, its proxy in front of the live world's API (dev auth: an admin)."""
    with serve_harness(live_world.base.removesuffix(API_BASE_PATH)) as url:
        yield url


def _plugin_shown(page: Any) -> list[int]:
    return [int(n) for n in SLOW_LINE.findall(page.locator(_PLUGIN_LOG).inner_text())]


def _until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_plugin_tails_a_running_run_through_the_proxy(
    browser: Any, live_world: LiveWorld, plugin_harness: str
) -> None:
    """Lines come through the dev harness's proxy as the run writes them, not all at its end."""
    run = start_slow_run(
        live_world.instance, live_world.home, uuid.uuid4().hex, lines=LINES, interval=INTERVAL
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{plugin_harness}/runs/{run.run_id}")
        page.wait_for_selector(f"{_PLUGIN_TAIL}[data-state='following']", timeout=60_000)

        seen: list[tuple[float, int]] = []
        deadline = time.monotonic() + 90
        while (
            page.locator(_PLUGIN_TAIL).get_attribute("data-state") == "following"
            and time.monotonic() < deadline
        ):
            shown = _plugin_shown(page)
            if shown and (not seen or shown[-1] != seen[-1][1]):
                assert shown == list(range(len(shown))), shown
                seen.append((time.time(), shown[-1]))
            time.sleep(0.1)
        assert run.wait(60) == 0
        record = live_world.instance.get_run_record_by_id(run.run_id)
        assert record is not None and record.end_time is not None
        early = [t for t, _ in seen if t < record.end_time]
        assert len(early) >= 4, f"lines did not arrive while the run ran: {seen}, run end {record.end_time}"
        assert early[-1] - early[0] >= 1.0, seen

        page.wait_for_selector(f"{_PLUGIN_TAIL}[data-state='ended']", timeout=30_000)
        status = page.locator(_PLUGIN_TAIL).get_by_role("status").inner_text()
        assert "Stream ended" in status, status
        assert _plugin_shown(page) == list(range(LINES))
        assert _until(lambda: live_world.followers.open_count() == 0, 10)
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_leaving_the_plugin_tail_stops_the_follow_behind_the_proxy(
    browser: Any, live_world: LiveWorld, plugin_harness: str
) -> None:
    """The browser's request closed, the proxy closes the API's: the API stops following (its
    follower slot is free again) while the run still writes."""
    run = start_slow_run(live_world.instance, live_world.home, uuid.uuid4().hex, lines=60, interval=INTERVAL)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{plugin_harness}/runs/{run.run_id}")
        page.wait_for_selector(f"{_PLUGIN_TAIL}[data-state='following']", timeout=60_000)
        page.wait_for_function(_PLUGIN_MORE_LINES_THAN, arg=1, timeout=30_000)
        assert live_world.followers.open_count() == 1
        page.goto("about:blank")
        assert _until(lambda: live_world.followers.open_count() == 0, 15), (
            "the API still follows the log of a page that was left"
        )
        assert run.process.poll() is None, "the run ended first: the follow may have ended with it"
    finally:
        context.close()
    assert run.wait(60) == 0
