"""The built-in UI (/finops/admin/ui) in a real browser (Debian's Chromium driven by Playwright),
against a real admin API over a real run history (tests/history.py, shared with the Backstage
plugin's browser tests through tests/admin/ui/browser.py).

The module's last test lets the history's RUNNING run finish: keep it last.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.admin.ui.browser import (
    READER_TOKEN,
    UiWorld,
    assert_fits,
    axe_serious,
    launch_filed_reprocess,
    screenshot_path,
    shown_money,
)

WIDTH, HEIGHT = 1280, 900
ROWS = "#runs tbody tr[data-run-id]"


def _watch(page: Any, origin: str) -> dict[str, list[Any]]:
    """Collects what a page must never do: JavaScript errors, CSP violations, outside requests."""
    seen: dict[str, list[Any]] = {
        "errors": [],
        "csp": [],
        "outside": [],
        "runs_requests": [],
        "runs_times": [],
    }
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))

    def console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            seen["csp"].append(message.text)

    def request(req: Any) -> None:
        url = req.url
        if not (url.startswith(origin) or url.startswith(("data:", "blob:"))):
            seen["outside"].append(url)
        if urlparse(url).path == "/finops/admin/runs":
            seen["runs_requests"].append(url)
            seen["runs_times"].append(time.monotonic())

    page.on("console", console)
    page.on("request", request)
    return seen


@pytest.fixture
def ui(browser: Any, ui_world: UiWorld) -> Iterator[tuple[Any, dict[str, list[Any]]]]:
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)
    page = context.new_page()
    origin = ui_world.base_url.split("/finops/")[0]
    seen = _watch(page, origin)
    yield page, seen
    context.close()
    assert seen["errors"] == [], f"JavaScript errors on the page: {seen['errors']}"
    assert seen["csp"] == [], f"Content-Security-Policy violations: {seen['csp']}"
    assert seen["outside"] == [], f"requests outside the API: {seen['outside']}"


def _open(page: Any, url: str, ready: str = ROWS) -> Any:
    response = page.goto(url)
    page.wait_for_selector(ready)
    return response


def _api(world: UiWorld, path: str, **params: Any) -> Any:
    response = httpx.get(f"{world.base_url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _shown_ids(page: Any) -> list[str]:
    rows = page.locator(ROWS)
    return [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())]


def test_run_list_shows_the_runs_with_every_column(ui: Any, ui_world: UiWorld, tmp_path: Path) -> None:
    page, _ = ui
    response = _open(page, f"{ui_world.base_url}/ui/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
    # The page is ES modules: a browser runs one only when it is served as JavaScript.
    for module in ("main.js", "format.js", "reprocess.js"):
        served = httpx.get(f"{ui_world.base_url}/ui/{module}", timeout=30)
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript")
        assert served.headers["content-security-policy"] == policy
    labels = [
        " ".join(t.split())
        for t in page.locator("#filters fieldset").nth(1).locator("label").all_inner_texts()
    ]
    config = _api(ui_world, "/ui-config")
    assert labels == [d["label"] for d in config["domains"]] == ["Open", "Private", "Public", "Native"]
    api = _api(ui_world, "/runs", limit=200)
    assert _shown_ids(page) == [item["runId"] for item in api["items"]]
    assert page.locator("#total").inner_text() == f"{api['totalItems']} run(s)"
    assert page.locator("#dev-banner").is_visible()  # dev mode is loud
    headers = page.locator("#runs thead th").all_inner_texts()
    assert [h.lower() for h in headers] == [
        "status", "run", "trigger", "periods", "start / end / duration", "domains", "volumes",
        "errors", "actions",
    ]  # fmt: skip
    history = ui_world.history
    cron = page.locator(f"tr[data-run-id='{history.runs['cron']}']")
    assert cron.locator(".badge").first.inner_text() == "SUCCESS"
    assert cron.locator("a.run-link").inner_text() == history.runs["cron"][:8]
    assert "CRON" in cron.inner_text() and "schedule:" in cron.inner_text()
    chips = [" ".join(t.split()) for t in cron.locator(".chip").all_inner_texts()]
    assert chips == ["Open SUCCESS", "Private SUCCESS", "Public SUCCESS", "Native SUCCESS"]
    item = next(i for i in api["items"] if i["runId"] == history.runs["cron"])
    assert f"{item['volumes']['relevesInserted']:,} inserted" in cron.inner_text()
    assert "6 MVs refreshed" in cron.inner_text()
    actions = cron.locator("td.actions a")
    assert actions.all_inner_texts() == ["Detail", "Logs", "Dagster ↗", "Ext. logs ↗"]
    assert actions.nth(1).get_attribute("href") == item["links"]["logs"]
    assert actions.nth(2).get_attribute("href") == item["links"]["dagster"]
    assert actions.nth(3).get_attribute("href") == item["links"]["external"]
    # RUNNING is animated and spelled out, not only coloured.
    running = page.locator(f"tr[data-run-id='{history.runs['running']}'] .badge")
    assert running.inner_text() == "RUNNING" and running.locator(".pulse").count() == 1
    # The outlier has too few comparable runs before it for a verdict (MIN_HISTORY): not flagged.
    outlier = page.locator(f"tr[data-run-id='{history.runs['outlier']}']")
    assert outlier.locator(".abnormal-value").count() == 0
    page.screenshot(path=str(screenshot_path("builtin-runs.png", tmp_path)), full_page=True)


def test_filters_and_sort_live_in_the_url_through_reload_and_back(ui: Any, ui_world: UiWorld) -> None:
    page, _ = ui
    history = ui_world.history
    p2 = history.periods[2]
    _open(page, f"{ui_world.base_url}/ui/")
    everything = _shown_ids(page)
    page.check("input[name=status][value=FAILED]")
    page.wait_for_function("() => new URLSearchParams(location.search).get('status') === 'FAILED'")
    page.fill("input[name=period]", p2)  # <input type=month>
    page.locator("input[name=period]").dispatch_event("change")
    page.select_option("select[name=sort]", "-durationSeconds")
    page.wait_for_function("() => new URLSearchParams(location.search).get('sort') === '-durationSeconds'")
    query = parse_qs(urlparse(page.url).query)
    assert query == {"status": ["FAILED"], "period": [p2], "sort": ["-durationSeconds"]}
    page.wait_for_function(
        "(n) => document.querySelectorAll('#runs tbody tr[data-run-id]').length === n",
        arg=len(_api(ui_world, "/runs", status="FAILED", period=p2)["items"]),
    )
    expected = [
        i["runId"]
        for i in _api(ui_world, "/runs", status="FAILED", period=p2, sort="-durationSeconds")["items"]
    ]
    assert _shown_ids(page) == expected and history.runs["partial"] in expected

    page.reload()
    page.wait_for_selector(ROWS)
    assert _shown_ids(page) == expected
    assert page.is_checked("input[name=status][value=FAILED]")
    assert page.input_value("input[name=period]") == p2
    assert page.input_value("select[name=sort]") == "-durationSeconds"

    page.go_back()  # one filter less: the sort change is undone
    page.wait_for_function("() => !new URLSearchParams(location.search).has('sort')")
    assert page.input_value("select[name=sort]") == "-startTime"
    page.go_back()
    page.go_back()
    page.wait_for_function("() => location.search === ''")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#runs tbody tr[data-run-id]').length === n", arg=len(everything)
    )
    assert not page.is_checked("input[name=status][value=FAILED]")
    # The other filters reach the API under their own names.
    page.goto(
        f"{ui_world.base_url}/ui/?domain=native&trigger=MANUAL&anomalous=true&q={history.runs['outlier'][:6]}"
    )
    page.wait_for_selector("#runs tbody tr")
    assert page.is_checked("input[name=domain][value=native]")
    assert page.is_checked("input[name=anomalous]")
    assert page.input_value("select[name=trigger]") == "MANUAL"
    assert page.input_value("input[name=q]") == history.runs["outlier"][:6]
    # The outlier (open only) is not a native run: nothing matches.
    page.wait_for_selector("#runs tbody td.muted")
    assert _shown_ids(page) == []


def test_cursor_pages_load_more_until_the_last(ui: Any, ui_world: UiWorld) -> None:
    page, seen = ui
    everything = [i["runId"] for i in _api(ui_world, "/runs", limit=200)["items"]]
    _open(page, f"{ui_world.base_url}/ui/?limit=4")
    assert _shown_ids(page) == everything[:4]
    shown = 4
    while shown < len(everything):
        assert page.locator("#more").is_visible()
        page.click("#more")
        shown = min(len(everything), shown + 4)
        page.wait_for_function(
            "(n) => document.querySelectorAll('#runs tbody tr[data-run-id]').length === n", arg=shown
        )
    assert _shown_ids(page) == everything
    assert not page.locator("#more").is_visible()
    assert any("cursor=" in url for url in seen["runs_requests"])
    assert "limit" not in (page.locator("#csv-link").get_attribute("href") or "")


def test_bad_addresses_show_the_api_message(ui: Any, ui_world: UiWorld) -> None:
    page, _ = ui
    page.goto(f"{ui_world.base_url}/ui/?period=2026-13")
    error = page.locator("#error")
    error.wait_for()
    assert error.inner_text() == "InputError: period must be YYYY-MM, got '2026-13'"
    page.goto(f"{ui_world.base_url}/ui/runs/no-such-run")
    message = page.locator("#detail-body .error")
    message.wait_for()
    assert message.inner_text().startswith("NotFoundError:") and "no-such-run" in message.inner_text()


def test_failed_badge_tooltip_shows_the_short_error_without_server_paths(ui: Any, ui_world: UiWorld) -> None:
    page, _ = ui
    history = ui_world.history
    _open(page, f"{ui_world.base_url}/ui/?status=FAILED")
    row = page.locator(f"tr[data-run-id='{history.runs['partial']}']")
    tooltip = row.locator(".badge-tip .tip-text")
    assert not tooltip.is_visible()
    row.locator(".badge-tip").hover()
    assert tooltip.is_visible()
    assert "parquet" in tooltip.inner_text().lower()
    row.locator(".badge-tip").focus()  # also for keyboard users
    assert tooltip.is_visible()
    errors = row.locator("td.errors-cell")
    assert errors.locator(".error-count").inner_text() == "1"
    assert "parquet" in errors.inner_text().lower()
    api_message = next(
        i for i in _api(ui_world, "/runs", status="FAILED")["items"] if i["runId"] == history.runs["partial"]
    )["errors"]["message"]
    assert str(history.landing) not in (row.text_content() or "")
    if str(history.landing) in api_message:  # the API says where the file is; the list does not
        assert re.search(r"…/export-\d+\.parquet", row.text_content() or "")
    else:  # a name relative to the landing root is no server path: shown as it is
        assert "native/" in (row.text_content() or "")


def test_csv_export_and_log_download(ui: Any, ui_world: UiWorld) -> None:
    page, _ = ui
    history = ui_world.history
    _open(page, f"{ui_world.base_url}/ui/?status=FAILED")
    with page.expect_download() as csv_download:
        page.click("#csv-link")
    content = Path(csv_download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    assert {r["runId"] for r in rows} == set(_shown_ids(page))
    assert {r["status"] for r in rows} == {"FAILED"}
    assert csv_download.value.suggested_filename.endswith(".csv")

    row = page.locator(f"tr[data-run-id='{history.runs['partial']}']")
    with page.expect_download() as log_download:
        row.locator("a.logs-link").click()
    logs = Path(log_download.value.path()).read_text(encoding="utf-8")
    assert history.runs["partial"][:8] in log_download.value.suggested_filename
    assert "load_native" in logs and "parquet" in logs.lower()


def test_run_detail_has_its_sections_at_its_own_address(ui: Any, ui_world: UiWorld, tmp_path: Path) -> None:
    page, _ = ui
    history = ui_world.history
    p0, _p1, p2 = history.periods
    run_id = history.runs["partial"]
    _open(page, f"{ui_world.base_url}/ui/?status=FAILED")
    page.locator(f"tr[data-run-id='{run_id}'] a.run-link").click()
    page.wait_for_selector("#summary")
    assert urlparse(page.url).path == f"/finops/admin/ui/runs/{run_id}"
    detail = _api(ui_world, f"/runs/{run_id}")

    summary = page.locator("#summary")
    assert summary.locator(".badge").first.inner_text() == "FAILED"
    assert detail["version"] and detail["version"] in summary.inner_text()
    assert "MANUAL" in summary.inner_text()
    periods = page.locator("#periods li").all_inner_texts()
    assert periods == [f"{p0} CURRENT", f"{p2} OTHER"]
    blocks = page.locator("#blocks article.block")
    assert [blocks.nth(i).get_attribute("data-domain") for i in range(blocks.count())] == ["open", "native"]
    native = page.locator("#blocks article[data-domain=native]")
    assert native.locator("h3 .badge").inner_text() == "FAILED"
    assert "parquet" in native.inner_text().lower()
    assert str(history.landing) not in (native.text_content() or "")
    assert native.locator("a", has_text="Native logs").get_attribute("href").endswith("/logs?step=native")
    open_block = page.locator("#blocks article[data-domain=open]")
    open_api = next(b for b in detail["blocks"] if b["domain"] == "open")
    assert f"{open_api['volumes']['relevesInserted']:,}" in open_block.inner_text()
    for block in detail["blocks"]:
        if block.get("quality"):  # the FOCUS quality of its load, when the API reports it
            card = page.locator(f"#blocks article[data-domain={block['domain']}]")
            assert card.locator(".quality tbody tr").count() == len(block["quality"])
            for quality in block["quality"]:
                if quality.get("gate"):  # the gate that kept a month's previous rows
                    assert quality["gate"] in card.locator(".quality").inner_text()
    # A failed domain means no MV refresh in that run: every view is shown SKIPPED.
    mvs = page.locator("#aggregates tr[data-mv]")
    assert mvs.count() == 6
    assert set(mvs.locator(".badge").all_inner_texts()) == {"SKIPPED"}
    assert f"{detail['aggregates']['relevesInserted']:,}" in page.locator("#aggregates").inner_text()
    logs = page.locator("#logs")
    assert logs.locator("#download-logs").get_attribute("href") == detail["logs"]["downloadUrl"]
    assert logs.locator("a", has_text="Open in Dagster").get_attribute("href") == detail["logs"]["dagsterUrl"]
    assert (
        logs.locator("a", has_text="Open external logs").get_attribute("href")
        == detail["logs"]["externalUrl"]
    )
    assert "load_native" in logs.locator("pre.excerpt").inner_text()
    assert_fits(page, ".panel, .block")
    page.screenshot(path=str(screenshot_path("builtin-detail.png", tmp_path)), full_page=True)

    page.reload()  # the address alone opens the screen
    page.wait_for_selector("#summary")
    assert page.locator("#blocks article.block").count() == 2
    page.go_back()
    page.wait_for_selector(ROWS)
    assert parse_qs(urlparse(page.url).query) == {"status": ["FAILED"]}

    # A successful run with every domain: four blocks, refreshed views with their rows.
    _open(page, f"{ui_world.base_url}/ui/runs/{history.runs['cron']}", "#aggregates")
    assert page.locator("#blocks article.block").count() == 4
    assert set(page.locator("#aggregates tr[data-mv] .badge").all_inner_texts()) == {"SUCCESS"}
    assert page.locator("#periods li").all_inner_texts() == [f"{p0} CURRENT", f"{history.periods[1]} N-1"]
    assert "no step failed" in page.locator("#logs").inner_text().lower()
    assert_fits(page, ".panel, .block")


def test_money_is_shown_per_currency_rounded_with_the_exact_amount_in_its_title(
    browser: Any, ui_world: UiWorld
) -> None:
    """Every billed cost of a run detail: one line per currency in the API's order, rounded for
    reading in the browser's locale (en-US here), the exact decimal string the API sent, with
    its code, in the line's title; never a total across currencies."""
    run_id = ui_world.history.runs["cron"]
    detail = _api(ui_world, f"/runs/{run_id}")
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, locale="en-US")
    try:
        page = context.new_page()
        _open(page, f"{ui_world.base_url}/ui/runs/{run_id}", "#aggregates")
        figures = [
            (
                page.locator(f"#blocks article[data-domain={b['domain']}] .figure", has_text="Billed cost"),
                b["volumes"]["billedCost"],
            )
            for b in detail["blocks"]
            if b["status"] != "NOT_SELECTED"
        ]
        figures.append(
            (page.locator("#aggregates .figure", has_text="Billed cost"), detail["aggregates"]["billedCost"])
        )
        for figure, amounts in figures:
            assert amounts, "a run that loaded rows has a billed cost"
            lines = figure.locator(".money .amount")
            assert lines.count() == len(amounts)
            for i, item in enumerate(amounts):
                assert lines.nth(i).get_attribute("title") == f"{item['currency']} {item['amount']}"
                assert lines.nth(i).text_content() == shown_money(item)
        # The list shows the run's billed cost the same way.
        _open(page, f"{ui_world.base_url}/ui/?q={run_id[:8]}")
        row = page.locator(f"tr[data-run-id='{run_id}'] .billed .amount")
        listed = detail["volumes"]["billedCost"]
        assert [row.nth(i).get_attribute("title") for i in range(row.count())] == [
            f"{item['currency']} {item['amount']}" for item in listed
        ]
        assert row.all_text_contents() == [shown_money(item) for item in listed]
    finally:
        context.close()


def test_coverage_marks_missing_stale_and_failed_cells(ui: Any, ui_world: UiWorld, tmp_path: Path) -> None:
    page, _ = ui
    history = ui_world.history
    p0, p1, p2 = history.periods
    _open(page, f"{ui_world.base_url}/ui/coverage", "#coverage")
    coverage = _api(ui_world, "/coverage")
    assert page.locator("#coverage tbody tr").count() == len(coverage["periods"])
    assert page.locator("#coverage td.cov").count() == len(coverage["periods"]) * 4
    cell = page.locator(f"td[data-period='{p0}'][data-domain='open']")
    item = next(c for c in coverage["items"] if c["period"] == p0 and c["domain"] == "open")
    assert item["lastLoad"]["runId"][:8] in cell.inner_text()
    broken = page.locator(f"td[data-period='{p2}'][data-domain='native']")
    assert "is-failed" in (broken.get_attribute("class") or "")
    assert history.runs["partial"][:8] in broken.locator(".mark.failed").inner_text()
    assert "never loaded" in broken.inner_text()
    assert page.locator("#tab-coverage").get_attribute("aria-current") == "page"
    assert p1 in page.locator("#coverage tbody").inner_text()
    assert_fits(page, ".panel")
    page.screenshot(path=str(screenshot_path("builtin-coverage.png", tmp_path)), full_page=True)
    page.click("#tab-runs")  # the tabs switch screens without reloading the page
    page.wait_for_selector(ROWS)
    assert urlparse(page.url).path == "/finops/admin/ui/"


def test_reprocess_from_a_failed_run_dry_run_confirm_and_follow(
    ui: Any, ui_world: UiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, _ = ui
    history = ui_world.history
    p0, _p1, p2 = history.periods
    _open(page, f"{ui_world.base_url}/ui/runs/{history.runs['partial']}", "#summary")
    page.click("#reprocess-run")
    dialog = page.locator("#reprocess-dialog")
    assert dialog.is_visible()
    # Pre-filled with the run's periods and its failed domain.
    assert page.input_value("#reprocess-form input[name=periods]") == f"{p0}, {p2}"
    checked = [
        d
        for d in ("open", "private", "public", "native")
        if page.is_checked(f"#reprocess-form input[value={d}]")
    ]
    assert checked == ["native"]
    assert page.is_disabled("#submit-reprocess")  # no confirmation before a preview

    page.click("#dry-run")
    preview = page.locator("#dry-run-result")
    preview.wait_for()
    rows = preview.locator("tbody tr")
    assert rows.count() == 2
    outcomes = {
        rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).locator(".badge").inner_text()
        for i in range(2)
    }
    assert outcomes == {p0: "REPLACE", p2: "FAIL"}  # the broken file would fail again
    assert _api(ui_world, "/reprocess")["totalItems"] == 0  # a dry run files nothing

    # Editing the request after its preview asks for a new preview.
    page.fill("#reprocess-form textarea[name=reason]", "Native exports re-issued by the provider")
    assert page.is_disabled("#submit-reprocess")
    page.click("#dry-run")
    page.wait_for_function("() => !document.querySelector('#submit-reprocess').disabled")
    page.click("#submit-reprocess")
    state = page.locator("#reprocess-state")
    state.wait_for()
    assert state.get_attribute("data-state") == "PENDING"
    filed = _api(ui_world, "/reprocess")["items"]
    assert len(filed) == 1 and set(filed[0]["periods"]) == {p0, p2}
    assert filed[0]["domains"] == ["native"] and filed[0]["requestedBy"] == "user:default/dev"
    assert filed[0]["requestId"] in state.inner_text()

    # The sensor's ticks (as the daemon runs them): launch, then record LAUNCHED.
    launched = launch_filed_reprocess(ui_world, monkeypatch, filed[0]["requestId"])
    page.wait_for_selector("#reprocess-state[data-state=LAUNCHED]", timeout=15_000)
    link = page.locator("#reprocess-run-link")
    assert link.inner_text() == launched
    link.click()
    page.wait_for_selector("#summary")
    assert urlparse(page.url).path == f"/finops/admin/ui/runs/{launched}"
    assert not dialog.is_visible()
    assert filed[0]["requestId"] in page.locator("#summary").inner_text()


def test_reprocess_from_the_list_is_prefilled_with_the_failed_domains(ui: Any, ui_world: UiWorld) -> None:
    page, _ = ui
    history = ui_world.history
    p0, _p1, p2 = history.periods
    _open(page, f"{ui_world.base_url}/ui/?status=FAILED")
    assert page.locator(f"tr[data-run-id='{history.runs['cron']}'] .reprocess-row").count() == 0
    page.locator(f"tr[data-run-id='{history.runs['partial']}'] .reprocess-row").click()
    assert page.locator("#reprocess-dialog").is_visible()
    assert page.input_value("#reprocess-form input[name=periods]") == f"{p0}, {p2}"
    assert page.is_checked("#reprocess-form input[value=native]")
    assert not page.is_checked("#reprocess-form input[value=open]")
    assert history.runs["partial"][:8] in page.input_value("#reprocess-form textarea[name=reason]")
    page.click("#close-reprocess")
    assert not page.locator("#reprocess-dialog").is_visible()
    # The header's button opens an empty request with every domain.
    page.click("#open-reprocess")
    assert page.input_value("#reprocess-form input[name=periods]") == ""
    assert all(
        page.is_checked(f"#reprocess-form input[value={d}]") for d in ("open", "private", "public", "native")
    )
    # A period the API's schema refuses: refused before or by the API, and the dialog says which.
    page.fill("#reprocess-form input[name=periods]", "2026-13")
    page.fill("#reprocess-form textarea[name=reason]", "Exports re-issued by the provider")
    page.click("#dry-run")
    refusal = page.locator("#reprocess-result .error")
    refusal.wait_for()
    assert "2026-13" in refusal.inner_text()
    assert page.is_disabled("#submit-reprocess")


def test_read_only_caller_sees_no_reprocess_or_log_controls(browser: Any, ui_world: UiWorld) -> None:
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.add_init_script(f"sessionStorage.setItem('finops-token', '{READER_TOKEN}')")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _open(page, f"{ui_world.reader_url}/ui/")
        assert page.locator("#who").inner_text() == "component:default/finops-dashboard (user)"
        assert page.locator(ROWS).count() > 0
        assert not page.locator("#open-reprocess").is_visible()
        assert page.locator("a.logs-link").count() == 0
        assert page.locator(".reprocess-row").count() == 0
        assert page.locator("td.actions", has_text="Ext. logs").count() == 0
        # Dagster's UI shows the logs too: no link to it for a caller who may not read them.
        assert page.locator("td.actions", has_text="Dagster").count() == 0
        assert not page.locator("#dev-banner").is_visible()
        _open(page, f"{ui_world.reader_url}/ui/runs/{ui_world.history.runs['partial']}", "#summary")
        assert page.locator("#reprocess-run").count() == 0
        assert page.locator("#download-logs").count() == 0
        assert "Logs are for FinOps admins" in page.locator("#logs").inner_text()
        assert page.locator("#logs a", has_text="Dagster").count() == 0
        assert page.locator("#blocks a", has_text="logs").count() == 0
    finally:
        context.close()
    assert errors == []


def test_accessibility_no_serious_or_critical_violation(ui: Any, ui_world: UiWorld, axe_source: str) -> None:
    page, _ = ui
    history = ui_world.history
    found: dict[str, Any] = {}
    _open(page, f"{ui_world.base_url}/ui/")
    found["runs"] = axe_serious(page, axe_source)
    _open(page, f"{ui_world.base_url}/ui/runs/{history.runs['partial']}", "#logs")
    found["detail"] = axe_serious(page, axe_source)
    page.click("#reprocess-run")
    page.click("#dry-run")
    page.wait_for_selector("#dry-run-result")
    found["reprocess dialog"] = axe_serious(page, axe_source)
    page.click("#close-reprocess")
    _open(page, f"{ui_world.base_url}/ui/coverage", "#coverage")
    found["coverage"] = axe_serious(page, axe_source)
    assert {screen: v for screen, v in found.items() if v} == {}


def test_nothing_overflows_at_1280_px(ui: Any, ui_world: UiWorld) -> None:
    page, _ = ui
    _open(page, f"{ui_world.base_url}/ui/")
    assert_fits(page, ".panel")
    table = page.evaluate(
        "() => [document.querySelector('#runs').scrollWidth,"
        " document.querySelector('#runs').parentElement.clientWidth]"
    )
    assert table[0] <= table[1], f"the run table ({table[0]} px) is wider than its {table[1]} px panel"
    for name in ("partial", "cron", "outlier"):
        _open(page, f"{ui_world.base_url}/ui/runs/{ui_world.history.runs[name]}", "#logs")
        assert_fits(page, ".panel, .block")


def test_list_refreshes_while_a_run_is_active_and_stops_after(ui: Any, ui_world: UiWorld) -> None:
    page, seen = ui
    history = ui_world.history
    _open(page, f"{ui_world.base_url}/ui/?status=RUNNING")
    assert _shown_ids(page) == [history.runs["running"]]
    assert "refreshing every 5 s" in page.locator("#refresh-state").inner_text()
    first = len(seen["runs_times"])
    deadline = time.monotonic() + 20
    while len(seen["runs_times"]) < first + 2:  # two refreshes
        assert time.monotonic() < deadline, "the list did not refresh twice in 20 s with a run RUNNING"
        page.wait_for_timeout(200)
    times = seen["runs_times"][first - 1 : first + 2]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert all(4.5 <= gap <= 8 for gap in gaps), f"seconds between refreshes: {gaps} (expected about 5)"

    assert history.release_running(), "the running run did not succeed once released"
    page.wait_for_selector("#runs tbody td.muted", timeout=30_000)  # SUCCESS now: no RUNNING run left
    assert page.locator("#refresh-state").inner_text() == ""
    stopped = len(seen["runs_requests"])
    page.wait_for_timeout(6_500)
    assert len(seen["runs_requests"]) == stopped, "the list kept refreshing with no active run"
