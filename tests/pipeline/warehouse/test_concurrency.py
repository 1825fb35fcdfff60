"""Concurrent loads of one (period, domain), killed connections, and readers during MV refreshes."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from finops_pipeline.landing.store import LandingFile, LocalLandingStore
from finops_pipeline.warehouse.loads import LoadConflict, PeriodLoad, load_period
from finops_pipeline.warehouse.mviews import refresh_view
from tests.conftest import TEST_PERIODS
from tests.support import query, releves_snapshot, run_ids_by_pair

PERIOD = TEST_PERIODS[0]
DOMAIN = "open"
WAIT = 30.0  # upper bound for anything that should happen at once


class LoadThread(threading.Thread):
    """load_period on a thread of its own, keeping its result or its error."""

    def __init__(self, url: str, store: Any, run_id: str, **kwargs: Any) -> None:
        super().__init__(daemon=True, name=f"load-{run_id}")
        self.args_ = (url, store, DOMAIN, PERIOD, run_id)
        self.kwargs_ = kwargs
        self.result: PeriodLoad | None = None
        self.error: BaseException | None = None
        self.finished_at = 0.0

    def run(self) -> None:
        try:
            self.result = load_period(*self.args_, **self.kwargs_)
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished_at = time.monotonic()


def _blocker() -> tuple[threading.Event, threading.Event, Callable[[], None]]:
    """An on_locked callback that reports it holds the lock, then waits to be released."""
    holding, release = threading.Event(), threading.Event()

    def on_locked() -> None:
        holding.set()
        if not release.wait(WAIT):
            raise TimeoutError("the test never released the lock holder")

    return holding, release, on_locked


def _waiting_for_advisory_lock(url: str, application_prefix: str) -> bool:
    """True once a session of that name waits for an advisory lock (not merely runs slowly)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        rows = query(
            url,
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name LIKE %s",
            (application_prefix + "%",),
        )
        if rows:
            return True
        time.sleep(0.05)
    return False


def _pair_rows(url: str) -> list[tuple[Any, ...]]:
    return [r for r in releves_snapshot(url, with_run_id=True) if r[0] == PERIOD and r[1] == DOMAIN]


@pytest.fixture
def stores(landing: Path, tmp_path: Path) -> tuple[LocalLandingStore, LocalLandingStore]:
    """The demo landing, and a copy whose current month of `open` has one file instead of two."""
    half = tmp_path / "landing_half"
    shutil.copytree(landing, half)
    (half / DOMAIN / PERIOD / "export-001.csv").unlink()
    return LocalLandingStore(landing), LocalLandingStore(half)


def test_two_loads_of_one_pair_never_interleave(
    warehouse_url: str, stores: tuple[LocalLandingStore, LocalLandingStore]
) -> None:
    full, half = stores
    initial = load_period(warehouse_url, full, DOMAIN, PERIOD, "initial-0")

    holding, release, on_locked = _blocker()
    first = LoadThread(warehouse_url, full, "loader-a-0001", on_locked=on_locked)
    first.start()
    assert holding.wait(WAIT)
    second = LoadThread(warehouse_url, half, "loader-b-0002", lock_timeout_seconds=WAIT)
    second.start()

    # B waits on the (period, domain) lock while A holds it; nothing of either is visible yet.
    assert _waiting_for_advisory_lock(warehouse_url, "finops-batch loader-b")
    time.sleep(0.3)
    assert second.is_alive() and first.is_alive()
    assert run_ids_by_pair(warehouse_url)[(DOMAIN, PERIOD)] == {"initial-0"}

    released_at = time.monotonic()
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert first.error is None and second.error is None
    assert first.result is not None and second.result is not None
    assert second.finished_at >= first.finished_at >= released_at

    # A replaced the initial rows, B replaced A's: each saw the other's committed work only.
    assert first.result.deleted == initial.inserted
    assert second.result.deleted == first.result.inserted
    assert second.result.inserted < first.result.inserted
    rows = _pair_rows(warehouse_url)
    assert len(rows) == second.result.inserted
    assert run_ids_by_pair(warehouse_url)[(DOMAIN, PERIOD)] == {"loader-b-0002"}
    sources = {Path(s).parent.parent.parent.name for (s,) in query(
        warehouse_url, "SELECT DISTINCT source_file FROM finops.releves WHERE domain = %s", (DOMAIN,)
    )}  # fmt: skip
    assert sources == {"landing_half"}
    # No duplicates: exactly B's rows, each once.
    assert len({repr(r) for r in rows}) == len(rows)


def test_a_load_gives_up_after_its_lock_timeout_naming_the_holder(
    warehouse_url: str, stores: tuple[LocalLandingStore, LocalLandingStore]
) -> None:
    full, _ = stores
    holding, release, on_locked = _blocker()
    holder = LoadThread(warehouse_url, full, "holder-a-0001", on_locked=on_locked)
    holder.start()
    try:
        assert holding.wait(WAIT)
        started = time.monotonic()
        with pytest.raises(LoadConflict) as raised:
            load_period(warehouse_url, full, DOMAIN, PERIOD, "waiter-b-0002", lock_timeout_seconds=0.5)
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(WAIT)
    assert 0.45 <= waited < 10
    message = str(raised.value)
    assert f"domain {DOMAIN!r}, period {PERIOD}" in message
    assert f"finops-batch holder-a {DOMAIN} {PERIOD}" in message
    assert "pid " in message and "waited 0.5s" in message
    # The holder finished normally and its rows are the only ones.
    assert holder.error is None and holder.result is not None
    assert run_ids_by_pair(warehouse_url)[(DOMAIN, PERIOD)] == {"holder-a-0001"}


def _terminate(url: str, application_prefix: str) -> int:
    """pg_terminate_backend the session of that name; wait until it is gone."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
                (application_prefix + "%",),
            ).fetchall()
        ]
        assert len(pids) == 1, f"expected one session named {application_prefix!r}, found {pids}"
        assert conn.execute("SELECT pg_terminate_backend(%s, 10000)", (pids[0],)).fetchone() == (True,)
    return pids[0]


class SecondFileStore(LocalLandingStore):
    """A local landing store that does something to the loader's backend when the loader
    opens its second file: by then it has deleted the previous rows and sent the first file."""

    def __init__(self, inner: LocalLandingStore, url: str, application_prefix: str) -> None:
        super().__init__(inner.root)
        self.url, self.prefix = url, application_prefix
        self.opened = 0

    def open(self, file: LandingFile) -> Any:
        self.opened += 1
        if self.opened == 2:
            self.on_second_file()
        return super().open(file)

    def on_second_file(self) -> None:
        raise NotImplementedError


class KillingStore(SecondFileStore):
    """Terminates the loader's connection."""

    def on_second_file(self) -> None:
        _terminate(self.url, self.prefix)


@pytest.mark.parametrize("when", ["holding the lock", "during COPY"])
def test_a_killed_connection_leaves_the_previous_rows(
    warehouse_url: str, stores: tuple[LocalLandingStore, LocalLandingStore], when: str
) -> None:
    full, _ = stores
    load_period(warehouse_url, full, DOMAIN, PERIOD, "previous-0")
    before = releves_snapshot(warehouse_url, with_run_id=True)
    assert _pair_rows(warehouse_url)

    if when == "holding the lock":

        def kill() -> None:
            _terminate(warehouse_url, "finops-batch victim-0")

        with pytest.raises(psycopg.OperationalError):
            load_period(warehouse_url, full, DOMAIN, PERIOD, "victim-0001", on_locked=kill)
    else:
        store = KillingStore(full, warehouse_url, "finops-batch victim-0")
        loader = LoadThread(warehouse_url, store, "victim-0001")
        loader.start()
        loader.join(WAIT)
        assert not loader.is_alive(), "the load hung after its connection was killed"
        assert store.opened == 2
        assert isinstance(loader.error, psycopg.OperationalError)

    assert releves_snapshot(warehouse_url, with_run_id=True) == before
    # The dead session's lock went with it: the next load takes the pair at once.
    again = load_period(warehouse_url, full, DOMAIN, PERIOD, "after-0001", lock_timeout_seconds=2)
    assert again.deleted == len(_pair_rows(warehouse_url)) == again.inserted


def test_readers_are_not_blocked_by_a_concurrent_refresh(
    warehouse_url: str, stores: tuple[LocalLandingStore, LocalLandingStore]
) -> None:
    full, _ = stores
    load_period(warehouse_url, full, DOMAIN, PERIOD, "first-0001")
    assert refresh_view(warehouse_url, "mv_domain_monthly").row_count == 1
    load_period(warehouse_url, full, "public", PERIOD, "second-0001")  # the view is now stale

    def count(conn: psycopg.Connection) -> int:
        row = conn.execute("SELECT count(*) FROM finops.mv_domain_monthly").fetchone()
        return int(row[0]) if row else -1

    with (
        psycopg.connect(warehouse_url) as refresher,
        psycopg.connect(warehouse_url, autocommit=True) as reader,
    ):
        reader.execute("SET statement_timeout = '2s'")
        # The refresh has run but is not committed: it still holds its locks.
        refresher.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY finops.mv_domain_monthly")
        started = time.monotonic()
        assert count(reader) == 1  # the old contents, served at once
        assert time.monotonic() - started < 1.5
        refresher.commit()
        assert count(reader) == 2

        # Contrast: a plain REFRESH locks readers out, so the check above can fail.
        refresher.execute("REFRESH MATERIALIZED VIEW finops.mv_domain_monthly")
        with pytest.raises(psycopg.errors.QueryCanceled):
            count(reader)
        refresher.rollback()
        assert count(reader) == 2


class FreezingStore(SecondFileStore):
    """Freezes (SIGSTOP) the loader's backend, so its COPY stalls while the file reader runs
    ahead, fills its queue and finishes."""

    frozen_pid = 0

    def on_second_file(self) -> None:
        rows = query(
            self.url,
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
            (self.prefix + "%",),
        )
        self.frozen_pid = int(rows[0][0])
        os.kill(self.frozen_pid, signal.SIGSTOP)


def test_a_connection_killed_once_every_file_is_read_does_not_hang_the_load(
    warehouse_url: str, tmp_path: Path
) -> None:
    from finops_pipeline.demo_data import generate_focus_table, table_to_csv

    previous_root, big_root = tmp_path / "previous", tmp_path / "big"
    for root, files, rows in ((previous_root, 1, 50), (big_root, 5, 6000)):
        folder = root / DOMAIN / PERIOD
        folder.mkdir(parents=True)
        # Each file is one chunk of about 2 MB: more than the socket buffers hold.
        data = table_to_csv(generate_focus_table(DOMAIN, PERIOD, rows))
        for index in range(files):
            (folder / f"export-{index:03d}.csv").write_bytes(data)
    load_period(warehouse_url, LocalLandingStore(previous_root), DOMAIN, PERIOD, "previous-0")
    before = releves_snapshot(warehouse_url, with_run_id=True)

    store = FreezingStore(LocalLandingStore(big_root), warehouse_url, "finops-batch victim-0")
    loader = LoadThread(warehouse_url, store, "victim-0001")
    loader.start()
    try:
        deadline = time.monotonic() + WAIT
        while store.opened < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.opened == 5
        time.sleep(0.5)  # the reader validates the last file and waits on the full queue
        assert loader.is_alive()
    finally:
        if store.frozen_pid:
            query(warehouse_url, "SELECT pg_terminate_backend(%s)", (store.frozen_pid,))
            os.kill(store.frozen_pid, signal.SIGCONT)
    loader.join(WAIT)
    assert not loader.is_alive(), "the load hung after its connection was killed"
    assert isinstance(loader.error, psycopg.OperationalError)
    assert releves_snapshot(warehouse_url, with_run_id=True) == before
