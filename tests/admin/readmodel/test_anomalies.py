"""Anomalies compare like with like: the comparable-run keys, the robust score, and the read model's
history queries (a reprocess is not compared with scheduled runs; EUR and USD never share a baseline)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from finops_admin_plugin.models import CurrencyAmount
from finops_admin_plugin.readmodel.anomalies import (
    BLOCK_HISTORY,
    MIN_HISTORY,
    RUN_HISTORY,
    WINDOW,
    Z_THRESHOLD,
    MetricValues,
    ScoredRun,
    period_roles,
    score_cost,
    score_metric,
)
from finops_admin_plugin.readmodel.schema import SCHEMA, ensure_schema
from finops_admin_plugin.readmodel.scoring import rescore_all, score_stored_run
from tests.support import create_database

START = datetime(2026, 3, 10, 8, tzinfo=UTC)
STEADY = [1000.0, 1040, 960, 1010, 990, 1050, 950, 1020, 980, 1000]  # about 3 % spread


def _run(trigger: str = "CRON", periods: tuple[str, ...] = ("2026-03", "2026-02"), **kw: Any) -> ScoredRun:
    fields: dict[str, Any] = dict(
        run_id="r", status="SUCCESS", domains=("open",), period_count=len(periods), sort_time=START,
        values=MetricValues(1.0, 1.0), trigger=trigger, period_roles=period_roles(periods, START),
    )  # fmt: skip
    fields.update(kw)
    return ScoredRun(**fields)


@pytest.mark.parametrize(
    ("periods", "roles"),
    [
        (("2026-03", "2026-02"), "CURRENT,PREVIOUS"),
        (("2026-03",), "CURRENT"),
        (("2026-02",), "PREVIOUS"),
        (("2025-11",), "OTHER"),
        (("2025-11", "2025-10"), "OTHER,OTHER"),
        (("2026-02", "2025-12"), "OTHER,PREVIOUS"),
    ],
)
def test_period_roles(periods: tuple[str, ...], roles: str) -> None:
    assert period_roles(periods, START) == roles


@pytest.mark.parametrize(
    ("a", "b", "comparable"),
    [
        (_run(), _run(run_id="other"), True),
        (_run(), _run(trigger="DELIVERY"), False),  # a delivery run is not a scheduled one
        (_run(), _run(trigger="MANUAL"), False),
        (_run(), _run(periods=("2026-03",)), False),  # one month is not two
        (_run(periods=("2025-11",)), _run(periods=("2025-10",)), True),  # two reprocesses of an old month
        (_run(periods=("2026-02",)), _run(periods=("2025-10",)), False),  # N-1 is not an older month
        (_run(), _run(domains=("open", "public")), False),
    ],
)
def test_comparable_runs(a: ScoredRun, b: ScoredRun, comparable: bool) -> None:
    assert (RUN_HISTORY.key(a) == RUN_HISTORY.key(b)) is comparable


def test_comparable_blocks_ignore_the_other_domains_of_their_runs() -> None:
    a, b = _run(domains=("open",)), _run(domains=("open", "public"))
    assert BLOCK_HISTORY.key(a, "open") == BLOCK_HISTORY.key(b, "open")
    assert BLOCK_HISTORY.key(a, "open") != BLOCK_HISTORY.key(_run(trigger="DELIVERY"), "open")


def _z(value: float, history: list[float], floor: float) -> float:
    logs = sorted(math.log(v + floor) for v in history)
    center = (
        (logs[len(logs) // 2 - 1] + logs[len(logs) // 2]) / 2 if len(logs) % 2 == 0 else logs[len(logs) // 2]
    )
    deviations = sorted(abs(v - center) for v in logs)
    n = len(deviations)
    mad = (deviations[n // 2 - 1] + deviations[n // 2]) / 2 if n % 2 == 0 else deviations[n // 2]
    return (math.log(value + floor) - center) / max(1.4826 * mad, 0.05)


@pytest.mark.parametrize(
    ("metric", "history", "value", "flagged"),
    [
        ("relevesInserted", STEADY, 3000.0, True),  # x3
        ("relevesInserted", STEADY, 200.0, True),  # x0.2
        ("relevesInserted", STEADY, 1100.0, False),  # +10 %: within the spread
        ("relevesInserted", STEADY[: MIN_HISTORY - 1], 1e9, False),  # too little history: no verdict
        ("relevesInserted", [1000.0] * 10, 1300.0, False),  # identical history: +30 % is below the ratio
        ("relevesInserted", [1000.0] * 10, 1500.0, True),  # identical history: x1.5 is beyond it
        ("relevesInserted", [1.0, 2, 1, 3, 1, 2, 1, 2], 40.0, False),  # a tiny baseline: floor of 100 rows
        ("relevesInserted", [0.0] * 8, 5000.0, True),  # from nothing to something large
        ("durationSeconds", [60.0, 62, 58, 61, 59, 60, 63, 57], 300.0, True),  # x5
        ("durationSeconds", [0.1] * 8, 0.9, False),  # sub-second jitter
        ("durationSeconds", [60.0, 62, 58, 61, 59, 60, 63, 57], 80.0, False),  # slow, not 1.4 times slower
    ],
)
def test_score(metric: Any, history: list[float], value: float, flagged: bool) -> None:
    anomaly = score_metric(metric, "run", value, history)
    assert (anomaly is not None) is flagged
    if anomaly is not None:
        floor = 1.0 if metric == "durationSeconds" else 100.0
        assert anomaly.method == "robust_log_z" and abs(anomaly.score) > Z_THRESHOLD
        assert anomaly.score == pytest.approx(_z(value, history, floor), abs=1e-3)
        assert anomaly.value == value and anomaly.compared_runs == len(history)


def test_only_the_window_is_compared_and_named() -> None:
    history = [
        MetricValues(10.0, 1000.0 + i, run_id=f"run-{i}", sort_time=START - timedelta(days=i + 1))
        for i in range(WINDOW + 5)
    ]
    anomaly = score_metric("relevesInserted", "open", 5000.0, history)
    assert anomaly is not None
    assert anomaly.compared_runs == WINDOW
    assert anomaly.compared_run_ids == ["run-0", "run-1", "run-2", "run-3", "run-4"]
    assert anomaly.compared_to == START - timedelta(days=1)
    assert anomaly.compared_from == START - timedelta(days=WINDOW)
    assert anomaly.baseline == pytest.approx(1009.5)


def test_cost_is_scored_per_currency_in_exact_decimals() -> None:
    usd = [Decimal("1000.123456789012345"), Decimal("1000.2"), Decimal("999.9"), Decimal("1000.1")] * 2
    history = [{"USD": u, "EUR": Decimal("500.00") + i} for i, u in enumerate(usd)]
    history.append({"USD": Decimal("1000.0")})  # a run without EUR is no part of EUR's history
    found = score_cost("run", {"USD": Decimal("1000.15"), "EUR": Decimal("4500.00")}, history)
    [eur] = found  # USD is within its usual spread; EUR's costs are never added to USD's
    assert eur.method == "robust_log_z" and eur.score > Z_THRESHOLD
    assert eur.compared_runs == 8
    assert eur.value == [CurrencyAmount(currency="EUR", amount="4500.00")]
    assert eur.baseline == [CurrencyAmount(currency="EUR", amount="503.50")]  # exact median
    assert score_cost("run", {"GBP": Decimal(5)}, history) == []  # a currency new to the history


# --- the read model ---------------------------------------------------------------------------------


def _store(
    conn: psycopg.Connection,
    run_id: str,
    start: datetime,
    trigger: str,
    periods: list[str],
    rows: int,
    cost: dict[str, str],
) -> None:
    roles = period_roles(periods, start)
    conn.execute(
        f"INSERT INTO {SCHEMA}.runs (run_id, status, trigger, periods, domains, period_count, period_roles, "
        "created_time, start_time, end_time, sort_time, duration_seconds, duration_sort, releves_inserted, "
        "billed_cost, active, dagster_updated, event_id, summary) "
        "VALUES (%s, 'SUCCESS', %s, %s, '{open}', %s, %s, %s, %s, %s, %s, 60, 60, %s, %s, false, 0, 0, %s)",
        (run_id, trigger, periods, len(periods), roles, start, start, start + timedelta(minutes=1), start,
         rows, Jsonb(cost), Jsonb({"runId": run_id})),
    )  # fmt: skip
    conn.execute(
        f"INSERT INTO {SCHEMA}.run_details (run_id, detail) VALUES (%s, %s)",
        (run_id, Jsonb({"runId": run_id, "blocks": [{"domain": "open"}]})),
    )
    conn.execute(
        f"INSERT INTO {SCHEMA}.blocks (run_id, domain, status, period_count, sort_time, duration_seconds, "
        "releves_inserted, billed_cost, trigger, period_roles) "
        "VALUES (%s, 'open', 'SUCCESS', %s, %s, 60, %s, %s, %s, %s)",
        (run_id, len(periods), start, rows, Jsonb(cost), trigger, roles),
    )


@pytest.fixture
def conn(pg_base_url: str) -> Any:
    with psycopg.connect(create_database(pg_base_url, "anomalies"), autocommit=True) as c:
        ensure_schema(c)
        yield c


def _stored_anomalies(conn: psycopg.Connection, run_id: str) -> list[dict[str, Any]]:
    row = conn.execute(
        f"SELECT summary -> 'anomalies' FROM {SCHEMA}.runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    assert row is not None
    return list(row[0] or [])


def test_a_reprocess_is_not_compared_with_scheduled_runs(conn: psycopg.Connection) -> None:
    """Two-month CRON runs load twice the rows of a one-month reprocess: no anomaly for that."""
    for i in range(12):
        start = START - timedelta(days=12 - i)
        _store(conn, f"cron-{i}", start, "CRON", ["2026-03", "2026-02"], 20_000 + 100 * i, {"USD": "200.00"})
    for i in range(MIN_HISTORY):
        start = START - timedelta(days=12 - i, hours=1)
        _store(conn, f"old-{i}", start, "MANUAL", ["2025-06"], 10_000 + 100 * i, {"USD": "100.00"})
    _store(conn, "reprocess", START, "MANUAL", ["2025-09"], 10_300, {"USD": "101.00"})
    _store(conn, "short", START + timedelta(hours=1), "MANUAL", ["2025-09"], 2_000, {"USD": "101.00"})
    _store(
        conn,
        "cron-new",
        START + timedelta(hours=2),
        "CRON",
        ["2026-03", "2026-02"],
        20_500,
        {"USD": "201.00"},
    )
    for run_id in ("reprocess", "short", "cron-new"):
        score_stored_run(conn, run_id)
    assert _stored_anomalies(conn, "reprocess") == []
    assert _stored_anomalies(conn, "cron-new") == []
    short = {(a["scope"], a["metric"]): a for a in _stored_anomalies(conn, "short")}
    assert set(short) == {("run", "relevesInserted"), ("open", "relevesInserted")}
    for anomaly in short.values():
        assert anomaly["comparedRuns"] == MIN_HISTORY + 1  # the older reprocesses and "reprocess"
        assert anomaly["comparedRunIds"][0] == "reprocess"
        assert not [r for r in anomaly["comparedRunIds"] if r.startswith("cron")]
        assert anomaly["baseline"] == 10_300
    # A reindex scores every run in one pass with the same keys.
    conn.execute(f"UPDATE {SCHEMA}.runs SET anomalous = false, summary = summary - 'anomalies'")
    assert rescore_all(conn) == 1
    assert {(a["scope"], a["metric"]) for a in _stored_anomalies(conn, "short")} == set(short)


def test_eur_and_usd_costs_are_never_in_one_baseline(conn: psycopg.Connection) -> None:
    """Runs bill in EUR or USD (1000 of either, or 1000 EUR + 1000 USD): each currency keeps its own
    baseline, so a run whose EUR cost triples is flagged in EUR only, against EUR costs only."""
    for i in range(16):
        cost = {"EUR": f"{1000 + i}.00"} if i % 2 else {"USD": f"{1000 + i}.00"}
        _store(conn, f"h-{i}", START - timedelta(hours=16 - i), "CRON", ["2026-03", "2026-02"], 10_000, cost)
    _store(conn, "last", START, "CRON", ["2026-03", "2026-02"], 10_000, {"EUR": "3000.00", "USD": "1008.00"})
    score_stored_run(conn, "last")
    found = [a for a in _stored_anomalies(conn, "last") if a["metric"] == "billedCost"]
    assert {(a["scope"], a["value"][0]["currency"]) for a in found} == {("run", "EUR"), ("open", "EUR")}
    for anomaly in found:
        assert anomaly["comparedRuns"] == 8  # the EUR half of the history
        assert all(int(r.split("-")[1]) % 2 for r in anomaly["comparedRunIds"])
        assert anomaly["baseline"] == [{"currency": "EUR", "amount": "1008.00"}]
