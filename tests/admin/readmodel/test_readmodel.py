"""The read model agrees with the mapping for every run, after reindex and after incremental projection."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.mapping.runs import MAPPING_VERSION, detail_payload, map_run_detail, summary_payload
from finops_admin_plugin.readmodel import Projector, ReadModel, RunFilters, reindex
from finops_admin_plugin.readmodel.failures import signed
from finops_admin_plugin.readmodel.metrics import render
from finops_admin_plugin.readmodel.schema import LOCK_CLASS, PROJECTOR_LOCK, SCHEMA
from finops_admin_plugin.settings import AdminSettings
from tests.history import History
from tests.support import create_database


def _without_anomalies(payload: dict[str, Any]) -> dict[str, Any]:
    data = dict(payload)
    data.pop("anomalies", None)
    if "blocks" in data:
        data["blocks"] = [{k: v for k, v in b.items() if k != "anomalies"} for b in data["blocks"]]
    return data


def _direct(history: History, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    record = history.instance.get_run_record_by_id(run_id)
    assert record is not None
    # As the read model stores it: a FAILED run's errors carry its failure signature.
    detail, _ = signed(map_run_detail(record, history.instance.all_logs(run_id)))
    return summary_payload(detail), detail_payload(detail)


def _snapshot(store: ReadModel) -> dict[str, tuple[Any, ...]]:
    with store.connection() as conn:
        rows = conn.execute(
            f"SELECT r.run_id, r.status, r.anomalous, r.summary, d.detail FROM {SCHEMA}.runs r "
            f"JOIN {SCHEMA}.run_details d USING (run_id)"
        ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture(scope="module")
def reindexed(finops_history: History, pg_base_url: str) -> ReadModel:
    settings = AdminSettings(FINOPS_DATABASE_URL=finops_history.readmodel_url)
    count = reindex(settings, finops_history.instance)
    assert count == len(finops_history.order)  # every FinOps run, and only those
    store = ReadModel(finops_history.readmodel_url)
    store.open()
    return store


def test_reindex_equals_the_direct_mapping_for_every_run(
    finops_history: History, reindexed: ReadModel
) -> None:
    stored = _snapshot(reindexed)
    assert set(stored) == set(finops_history.finops_ids)
    assert finops_history.runs["other_job"] not in stored
    for run_id in finops_history.finops_ids:
        summary, detail = _direct(finops_history, run_id)
        status, anomalous, stored_summary, stored_detail = stored[run_id]
        assert _without_anomalies(stored_summary) == _without_anomalies(summary), finops_history.name_of(
            run_id
        )
        assert _without_anomalies(stored_detail) == _without_anomalies(detail), finops_history.name_of(run_id)
        assert status == summary["status"]
        assert anomalous == bool(stored_summary["anomalies"])
        assert stored_summary["anomalies"] == stored_detail["anomalies"]


def test_no_verdict_without_enough_comparable_runs(finops_history: History, reindexed: ReadModel) -> None:
    """The outlier (4x rows) has 3 comparable runs before it (open, one month, MANUAL): fewer than
    `MIN_HISTORY`, so no verdict; the scores themselves are tested in test_anomalies.py."""
    for name in finops_history.order:
        summary = reindexed.summary(finops_history.runs[name])
        assert summary is not None
        assert summary["anomalies"] == [], name
    assert reindexed.page(RunFilters(anomalous=True), 200, None).items == []


def test_incremental_projection_equals_reindex(
    finops_history: History, reindexed: ReadModel, pg_base_url: str
) -> None:
    store = ReadModel(create_database(pg_base_url, "admin"))
    store.open()
    try:
        projector = Projector(DagsterReader(finops_history.instance), store)
        assert projector.tick() == len(finops_history.order)
        assert projector.tick() == 0  # nothing changed: no rewrite
        assert _snapshot(store) == _snapshot(reindexed)
        # Another process holding the projector lock: this one skips its tick.
        with store.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK))
            try:
                finops_history.add_queued("late", domains=["open"], periods=[finops_history.periods[0]])
                assert projector.tick() == 0
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK))
        assert projector.tick() == 1
        assert store.summary(finops_history.runs["late"])["status"] == "QUEUED"  # type: ignore[index]
    finally:
        store.close()


def test_runs_of_an_older_mapping_are_reprojected_newest_first(
    finops_history: History, pg_base_url: str
) -> None:
    store = ReadModel(create_database(pg_base_url, "admin"))
    store.open()
    try:
        projector = Projector(DagsterReader(finops_history.instance), store)
        projector.tick()
        current = _snapshot(store)
        # What an older version of the mapping left behind: other views, and no version (0).
        with store.connection() as conn:
            conn.execute(f"UPDATE {SCHEMA}.runs SET mapping_version = 0, summary = summary - 'volumes'")
            conn.execute(f"UPDATE {SCHEMA}.run_details SET detail = detail - 'blocks'")
            newest = conn.execute(
                f"SELECT run_id FROM {SCHEMA}.runs ORDER BY sort_time DESC LIMIT 1"
            ).fetchone()
        assert newest is not None
        stale = _snapshot(store)
        assert all(stale[run_id] != current[run_id] for run_id in current)
        assert f"finops_readmodel_runs_to_reproject {len(current)}.0" in render(store, None).decode()

        projector.catch_up_batch = 1
        assert projector.tick() == 1  # one run a tick here: the newest first
        after_one = _snapshot(store)
        assert after_one[newest[0]] == current[newest[0]]
        assert sum(after_one[run_id] == current[run_id] for run_id in current) == 1

        projector.catch_up_batch = 50
        ticks = 0
        while projector.tick():
            ticks += 1
            assert ticks < len(current), "the catch-up does not end"
        assert _snapshot(store) == current  # every run as this mapping maps it, anomalies included
        with store.connection() as conn:
            assert conn.execute(
                f"SELECT count(*) FROM {SCHEMA}.runs WHERE mapping_version < %s", (MAPPING_VERSION,)
            ).fetchone() == (0,)
        assert projector.tick() == 0  # nothing left: the catch-up costs one index probe a tick
        assert "finops_readmodel_runs_to_reproject 0.0" in render(store, None).decode()
    finally:
        store.close()


def test_an_older_projection_never_overwrites_a_newer_one(
    finops_history: History, reindexed: ReadModel
) -> None:
    run_id = finops_history.runs["ok_1"]
    record = finops_history.instance.get_run_record_by_id(run_id)
    assert record is not None
    entries = finops_history.instance.all_logs(run_id)
    halfway = map_run_detail(record, entries[: len(entries) // 2])  # what a slow process mapped earlier
    before = _snapshot(reindexed)[run_id]
    with reindexed.connection() as conn:
        written = reindexed.save(
            conn, halfway, dagster_updated=record.update_timestamp.timestamp(), event_id=1
        )
    assert written is False
    assert _snapshot(reindexed)[run_id] == before


def test_final_status_reaches_the_list_within_5_seconds(finops_history: History, pg_base_url: str) -> None:
    store = ReadModel(create_database(pg_base_url, "admin"))
    store.open()
    projector = Projector(DagsterReader(finops_history.instance), store, interval=1.0)
    projector.start()
    try:
        run_id = finops_history.runs["running"]
        deadline = time.monotonic() + 10
        while (store.summary(run_id) or {}).get("status") != "RUNNING":
            assert time.monotonic() < deadline, "the running run never reached the read model"
            time.sleep(0.05)
        assert finops_history.release_running() is True
        record = finops_history.instance.get_run_record_by_id(run_id)
        assert record is not None and record.end_time is not None
        while (store.summary(run_id) or {}).get("status") != "SUCCESS":
            assert time.monotonic() < deadline + 10, "the final status never reached the read model"
            time.sleep(0.05)
        lag = datetime.now(UTC).timestamp() - record.end_time
        assert lag < 5.0, f"final status appeared {lag:.2f}s after Dagster recorded it"
        summary = store.summary(run_id)
        assert summary is not None
        assert summary["volumes"]["relevesInserted"] > 0 and summary["domainStatuses"]["open"] == "SUCCESS"
        direct_summary, _ = _direct(finops_history, run_id)
        assert _without_anomalies(summary) == _without_anomalies(direct_summary)
        assert projector.last_error is None
    finally:
        projector.stop()
        store.close()


def test_reindex_drops_runs_deleted_from_dagster(finops_history: History, reindexed: ReadModel) -> None:
    run_id = finops_history.add_queued("doomed", domains=["native"], periods=[finops_history.periods[0]])
    settings = AdminSettings(FINOPS_DATABASE_URL=finops_history.readmodel_url)
    reindex(settings, finops_history.instance)
    assert reindexed.summary(run_id) is not None
    finops_history.instance.delete_run(run_id)
    finops_history.order.remove("doomed")
    assert reindex(settings, finops_history.instance) == len(finops_history.order)
    assert reindexed.summary(run_id) is None


def _direct_total(store: ReadModel, filters: RunFilters) -> int:
    from psycopg import sql

    where, params = filters.where()
    query = sql.SQL("SELECT count(*) FROM {}.runs WHERE ").format(sql.Identifier(SCHEMA)) + where
    with store.connection() as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def test_totals_from_run_counts_equal_counting_the_runs(finops_history: History, pg_base_url: str) -> None:
    """totalItems comes from `run_counts` (kept by triggers); it must equal count(*) through every write."""
    p0, p1, p2 = finops_history.periods
    cases = [
        RunFilters(),
        RunFilters(statuses=("SUCCESS",)),
        RunFilters(statuses=("FAILED", "CANCELED")),
        RunFilters(trigger="CRON"),
        RunFilters(domains=("open",)),
        RunFilters(domains=("private", "native")),
        RunFilters(periods=(p0,)),
        RunFilters(periods=(p1, p2)),
        RunFilters(anomalous=True),
        RunFilters(anomalous=False, trigger="MANUAL", domains=("open",), periods=(p0,)),
        RunFilters(statuses=("QUEUED", "RUNNING"), domains=("open", "private")),
    ]
    store = ReadModel(create_database(pg_base_url, "admin"))
    store.open()

    def check(moment: str) -> None:
        for filters in cases:
            assert filters.counted
            page = store.page(filters, 200, None)
            expected = _direct_total(store, filters)
            assert page.total == expected == len(page.items), (moment, filters)
        with store.connection() as conn:
            negative = conn.execute(f"SELECT count(*) FROM {SCHEMA}.run_counts WHERE n < 0").fetchone()
        assert negative == (0,), moment

    try:
        settings = AdminSettings(FINOPS_DATABASE_URL=store.database_url)
        assert reindex(settings, finops_history.instance) == len(finops_history.order)
        check("after reindex")
        assert _direct_total(store, RunFilters()) == len(finops_history.order)
        ok_1, partial = finops_history.runs["ok_1"], finops_history.runs["partial"]
        with store.connection() as conn:
            # Updates that move runs between counted groups, as the projector's upserts do.
            conn.execute(
                f"UPDATE {SCHEMA}.runs SET status = 'RUNNING', anomalous = NOT anomalous WHERE run_id = %s",
                (ok_1,),
            )
            conn.execute(
                f"UPDATE {SCHEMA}.runs SET trigger = 'CRON', periods = %s WHERE run_id = %s", ([p2], partial)
            )
        check("after updates")
        with store.connection() as conn:
            store.delete_run(conn, ok_1)
        check("after a delete")
        reindex(settings, finops_history.instance)  # TRUNCATE, then COPY
        check("after a second reindex")
        # An incremental projection (upserts) of the same history counts the same.
        with store.connection() as conn:
            store.truncate(conn)
        Projector(DagsterReader(finops_history.instance), store).tick()
        check("after incremental projection")
    finally:
        store.close()
