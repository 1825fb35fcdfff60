"""Real finops_batch runs on a Postgres-backed Dagster instance, checked against the landing files."""

from __future__ import annotations

import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

import finops_pipeline
from finops_pipeline.contract import (
    DOMAINS,
    MATERIALIZED_VIEWS,
    REFRESH_STEP,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    TAG_VERSION,
    load_step_key,
)
from tests.conftest import TEST_PERIODS
from tests.support import (
    application_of,
    counts_by_pair,
    expected_from_local_landing,
    metadata_values,
    mv_snapshot,
    output_metadata,
    query,
    releves_snapshot,
    run_batch,
    run_events,
    run_ids_by_pair,
)

CURRENT, PREVIOUS = TEST_PERIODS  # 2026-11, 2026-10


def _step_events(instance: DagsterInstance, run_id: str) -> dict[str, set[DagsterEventType]]:
    found: dict[str, set[DagsterEventType]] = defaultdict(set)
    for event in run_events(instance, run_id):
        if event.step_key:
            found[event.step_key].add(event.event_type)
    return found


def _mv_materializations(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    found = {}
    for event in run_events(instance, run_id):
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            path = materialization.asset_key.path
            if path[0] == "finops" and path[1].startswith("mv_"):
                found[path[1]] = metadata_values(materialization.metadata)
    return found


def _sum(rows: list[dict[str, Any]], column: str) -> Decimal:
    return sum((Decimal(r[column]) for r in rows), Decimal(0))


def _by_currency(rows: list[dict[str, Any]]) -> dict[str, Decimal]:
    """BilledCost summed per BillingCurrency: what a load's money metadata must say."""
    return {c: _sum(group, "BilledCost") for (c,), group in _group(rows, "BillingCurrency").items()}


def _decimals(money: dict[str, str]) -> dict[str, Decimal]:
    assert all(isinstance(amount, str) for amount in money.values())  # exact text, never a number
    return {currency: Decimal(amount) for currency, amount in money.items()}


def _group(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


def _valid_rows(expected: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Every valid input row, with its (domain, period) and derived application."""
    rows = []
    for (domain, period), item in expected.items():
        for row in item["valid"]:
            rows.append({**row, "domain": domain, "period": period, "application": application_of(row)})
    return rows


def test_full_load_matches_the_landing_files_and_reloading_changes_nothing(
    dagster_instance: DagsterInstance, finops_env: dict[str, Any]
) -> None:
    url, landing = finops_env["database_url"], finops_env["landing"]
    expected = expected_from_local_landing(landing, TEST_PERIODS)
    rows = _valid_rows(expected)
    # The demo data carries both kinds of rows that cannot be stored, or this test proves little
    # (its two other kinds of findings, a charge before its billing period and a missing service
    # name, load as conformance warnings).
    reasons = set().union(*(item["rejected"] for item in expected.values()))
    assert reasons == {"invalid_cost", "unknown_currency"}

    first = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS))
    assert first.success
    run = dagster_instance.get_run_by_id(first.run_id)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS

    # Exact row counts per (period, domain): input rows minus rejects.
    assert counts_by_pair(url) == {pair: len(item["valid"]) for pair, item in expected.items()}
    assert all(ids == {first.run_id} for ids in run_ids_by_pair(url).values())

    # Output metadata of each domain block.
    metadata = output_metadata(dagster_instance, first.run_id)
    assert set(metadata) == {load_step_key(d) for d in DOMAINS}
    warned: set[str] = set()
    for domain in DOMAINS:
        meta = metadata[load_step_key(domain)]
        items = [expected[(domain, p)] for p in TEST_PERIODS]
        assert meta["rows_read"] == sum(i["rows_read"] for i in items)
        assert meta["releves_inserted"] == sum(len(i["valid"]) for i in items)
        assert meta["releves_deleted"] == 0
        assert meta["releves_rejected"] == sum(i["rejected"].total() for i in items)
        assert _decimals(meta["billed_cost"]) == _by_currency([r for i in items for r in i["valid"]])
        assert set(meta["periods"]) == set(TEST_PERIODS)
        for period in TEST_PERIODS:
            item, per_period = expected[(domain, period)], meta["periods"][period]
            assert per_period["rows_read"] == item["rows_read"]
            assert per_period["releves_inserted"] == len(item["valid"])
            assert per_period["releves_rejected"] == item["rejected"].total()
            assert per_period["rejected_by_reason"] == dict(item["rejected"])
            assert _decimals(per_period["billed_cost"]) == _by_currency(item["valid"])
            quality = per_period["quality"]
            assert quality["gate"] is None and quality["focus_versions"] == ["1.0"]
            assert (quality["rows_read"], quality["rows_loaded"]) == (item["rows_read"], len(item["valid"]))
            assert {r["reason"]: r["count"] for r in quality["rejected"]} == dict(item["rejected"])
            assert all(1 <= len(r["samples"]) <= 3 for r in quality["rejected"])
            warned.update(w["rule"] for w in quality["warnings"])

    assert {"ChargePeriodStart:outside_billing_period", "ServiceName:null_not_allowed"} <= warned

    # Run tags of the contract.
    tags = run.tags
    assert tags[TAG_TRIGGER] == "MANUAL"
    assert tags[TAG_PERIODS] == ",".join(TEST_PERIODS)
    assert tags[TAG_DOMAINS] == ",".join(DOMAINS)
    assert tags[TAG_VERSION] == finops_pipeline.__version__
    assert tags[TAG_REQUESTED_BY] == "user:default/tester"

    # MV materializations carry row_count and refresh_seconds.
    materialized = _mv_materializations(dagster_instance, first.run_id)
    assert set(materialized) == set(MATERIALIZED_VIEWS)
    for name, meta in materialized.items():
        assert meta["row_count"] == query(url, f"SELECT count(*) FROM finops.{name}")[0][0] > 0
        assert isinstance(meta["refresh_seconds"], float) and 0 <= meta["refresh_seconds"] < 60

    _check_mv_contents(url, landing, rows)

    # Loading the same input again: identical tables, every previous row replaced.
    before, mvs_before = releves_snapshot(url), mv_snapshot(url)
    second = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS))
    assert second.success
    assert releves_snapshot(url) == before
    assert mv_snapshot(url) == mvs_before
    assert all(ids == {second.run_id} for ids in run_ids_by_pair(url).values())
    again = output_metadata(dagster_instance, second.run_id)
    for step, meta in again.items():
        assert meta["releves_deleted"] == metadata[step]["releves_inserted"] > 0
        assert meta["releves_inserted"] == metadata[step]["releves_inserted"]


def _check_mv_contents(url: str, landing: Path, rows: list[dict[str, Any]]) -> None:
    """Every dashboard view against sums computed from the landing files."""
    # Vue Domaine.
    domain_monthly = {
        (p, d, c): (Decimal(b), Decimal(e), int(n))
        for p, d, c, b, e, n in query(
            url,
            "SELECT period, domain, billing_currency, billed_cost, effective_cost, releves "
            "FROM finops.mv_domain_monthly",
        )
    }
    assert domain_monthly == {
        (p, d, c): (_sum(g, "BilledCost"), _sum(g, "EffectiveCost"), len(g))
        for (p, d, c), g in _group(rows, "period", "domain", "BillingCurrency").items()
    }

    # Dashboard.
    dashboard = {
        (p, c): (Decimal(b), int(n), int(a))
        for p, c, b, n, a in query(
            url,
            "SELECT period, billing_currency, billed_cost, releves, applications "
            "FROM finops.mv_dashboard_monthly",
        )
    }
    assert dashboard == {
        key: (_sum(g, "BilledCost"), len(g), len({r["application"] for r in g}))
        for key, g in _group(rows, "period", "BillingCurrency").items()
    }

    # Vue Famille, from the reference file read independently.
    reference = pd.read_csv(landing / "reference" / "applications.csv", dtype=str)
    families = dict(zip(reference["application"], reference["family"], strict=True))
    for row in rows:
        row["family"] = families.get(row["application"], "Unassigned")
    family = {
        (p, f, c): Decimal(b)
        for p, f, c, b in query(
            url, "SELECT period, family, billing_currency, billed_cost FROM finops.mv_family_monthly"
        )
    }
    assert family == {
        key: _sum(g, "BilledCost") for key, g in _group(rows, "period", "family", "BillingCurrency").items()
    }
    assert len(family) > 3

    # Vue Application.
    application = {
        (p, d, a, c): (Decimal(b), int(n))
        for p, d, a, c, b, n in query(
            url,
            "SELECT period, domain, application, billing_currency, billed_cost, releves "
            "FROM finops.mv_application_monthly",
        )
    }
    assert application == {
        key: (_sum(g, "BilledCost"), len(g))
        for key, g in _group(rows, "period", "domain", "application", "BillingCurrency").items()
    }

    # Classements: rank 1 is the costliest application of the month.
    for (period, currency), group in _group(rows, "period", "BillingCurrency").items():
        sums = {app: _sum(g, "BilledCost") for (app,), g in _group(group, "application").items()}
        ranked = sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
        found = query(
            url,
            "SELECT cost_rank, application, billed_cost FROM finops.mv_application_rankings "
            "WHERE period = %s AND billing_currency = %s ORDER BY cost_rank",
            (period, currency),
        )
        assert [(int(r), a, Decimal(b)) for r, a, b in found] == [
            (i + 1, app, total) for i, (app, total) in enumerate(ranked)
        ]

    # Historique: N-1 has no previous month here; N's delta is against N-1.
    history = {
        (p, d): (prev, delta, pct)
        for p, d, prev, delta, pct in query(
            url,
            "SELECT period, domain, previous_billed_cost, delta, delta_percent FROM finops.mv_domain_history",
        )
    }
    totals = {key: _sum(g, "BilledCost") for key, g in _group(rows, "period", "domain").items()}
    for domain in DOMAINS:
        assert history[(PREVIOUS, domain)] == (None, None, None)
        previous, current = totals[(PREVIOUS, domain)], totals[(CURRENT, domain)]
        prev, delta, pct = history[(CURRENT, domain)]
        assert (prev, delta) == (previous, current - previous)
        assert pct == round(100 * (current - previous) / previous, 2)


def test_a_failing_domain_keeps_its_rows_and_the_views(
    dagster_instance: DagsterInstance, finops_env: dict[str, Any]
) -> None:
    url, landing = finops_env["database_url"], finops_env["landing"]
    first = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS))
    assert first.success
    before = releves_snapshot(url, with_run_id=True)
    mvs_before = mv_snapshot(url)

    def pair_rows(snapshot: list[tuple[Any, ...]], domain: str, period: str) -> list[tuple[Any, ...]]:
        return [r for r in snapshot if r[0] == period and r[1] == domain]

    # Break the landing: private's current month is gone, native's is unreadable, and open's
    # current month shrinks (so a refresh of the views would show).
    shutil.rmtree(landing / "private" / CURRENT)
    (landing / "open" / CURRENT / "export-001.csv").unlink()
    expected = expected_from_local_landing(landing, TEST_PERIODS)
    (landing / "native" / CURRENT / "export-000.parquet").write_bytes(b"PAR1 truncated export")

    # allow_shrink: open's current month loses half its rows on purpose.
    second = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS), allow_shrink=True)
    assert not second.success
    run = dagster_instance.get_run_by_id(second.run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE

    after = releves_snapshot(url, with_run_id=True)
    ids = run_ids_by_pair(url)
    # The failed (domain, period) pairs keep their previous rows exactly.
    for domain in ("private", "native"):
        assert pair_rows(after, domain, CURRENT) == pair_rows(before, domain, CURRENT) != []
        assert ids[(domain, CURRENT)] == {first.run_id}
        # Each period has its own transaction: the domain's other month was reloaded.
        assert ids[(domain, PREVIOUS)] == {second.run_id}
    # The other domains loaded their (new) input.
    for domain in ("open", "public"):
        for period in TEST_PERIODS:
            assert ids[(domain, period)] == {second.run_id}
    counts = counts_by_pair(url)
    assert counts[("open", CURRENT)] == len(expected[("open", CURRENT)]["valid"])
    assert counts[("open", CURRENT)] < len(pair_rows(before, "open", CURRENT))

    # The views were not refreshed: same contents, no MV materialization in this run.
    assert mv_snapshot(url) == mvs_before
    assert _mv_materializations(dagster_instance, second.run_id) == {}
    steps = _step_events(dagster_instance, second.run_id)
    assert DagsterEventType.STEP_START not in steps.get(REFRESH_STEP, set())
    assert DagsterEventType.STEP_SUCCESS in steps[load_step_key("open")]
    assert DagsterEventType.STEP_SUCCESS in steps[load_step_key("public")]

    # The failed steps say which folder or file was expected.
    failures = {
        e.step_key: e.event_specific_data
        for e in run_events(dagster_instance, second.run_id)
        if e.event_type == DagsterEventType.STEP_FAILURE
    }
    assert set(failures) == {load_step_key("private"), load_step_key("native")}
    private = failures[load_step_key("private")]
    expected_folder = f"{landing / 'private' / CURRENT}/"
    assert expected_folder in private.error.message
    assert expected_folder in private.user_failure_data.description
    native = failures[load_step_key("native")]
    # Files are named relative to the landing root.
    assert f"native/{CURRENT}/export-000.parquet: not a readable Parquet file" in native.error.message
    assert "quality gate unreadable_file" in native.error.message
    # The failure still reports what each period did: the other month loaded, this one kept its rows.
    meta = metadata_values(private.user_failure_data.metadata)
    assert meta["releves_inserted"] == len(expected[("private", PREVIOUS)]["valid"])
    assert set(meta["periods"]) == {PREVIOUS, CURRENT}
    assert meta["periods"][CURRENT]["quality"]["gate"] == "empty"
    assert meta["periods"][CURRENT]["releves_inserted"] == meta["periods"][CURRENT]["releves_deleted"] == 0
    assert meta["periods"][PREVIOUS]["quality"]["gate"] is None


def test_a_domain_not_selected_is_skipped_and_untouched(
    dagster_instance: DagsterInstance, finops_env: dict[str, Any]
) -> None:
    url, landing = finops_env["database_url"], finops_env["landing"]
    first = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS))
    assert first.success
    before = releves_snapshot(url, with_run_id=True)
    # Had open been loaded again, its current month would have changed.
    (landing / "open" / CURRENT / "export-001.csv").unlink()

    second = run_batch(dagster_instance, periods=[CURRENT], domains=["public"])
    assert second.success
    steps = _step_events(dagster_instance, second.run_id)
    for domain in ("open", "private", "native"):
        assert steps[load_step_key(domain)] == {DagsterEventType.STEP_SKIPPED}
    assert DagsterEventType.STEP_SUCCESS in steps[load_step_key("public")]
    assert DagsterEventType.STEP_SUCCESS in steps[REFRESH_STEP]

    after = releves_snapshot(url, with_run_id=True)
    untouched = [r for r in before if not (r[1] == "public" and r[0] == CURRENT)]
    assert [r for r in after if not (r[1] == "public" and r[0] == CURRENT)] == untouched
    ids = run_ids_by_pair(url)
    assert ids[("public", CURRENT)] == {second.run_id}
    assert ids[("public", PREVIOUS)] == {first.run_id}
    assert ids[("open", CURRENT)] == {first.run_id}
    meta = output_metadata(dagster_instance, second.run_id)
    assert set(meta) == {load_step_key("public")}
    assert (
        meta[load_step_key("public")]["releves_deleted"] == meta[load_step_key("public")]["releves_inserted"]
    )


def test_a_domain_whose_every_period_fails_reports_the_cause(
    dagster_instance: DagsterInstance, finops_env: dict[str, Any]
) -> None:
    """Nothing loaded at all: the failure still names the file, with zero volumes."""
    landing = finops_env["landing"]
    broken = landing / "native" / CURRENT / "export-000.parquet"
    broken.write_bytes(b"PAR1 truncated export")
    result = run_batch(dagster_instance, periods=[CURRENT], domains=["native"])
    assert not result.success
    failure = next(
        e.event_specific_data
        for e in run_events(dagster_instance, result.run_id)
        if e.event_type == DagsterEventType.STEP_FAILURE
    )
    assert f"native/{CURRENT}/export-000.parquet" in failure.error.message
    assert "Parquet" in failure.error.message
    meta = metadata_values(failure.user_failure_data.metadata)
    assert (meta["releves_inserted"], meta["billed_cost"], list(meta["periods"])) == (0, {}, [CURRENT])
    assert meta["periods"][CURRENT]["quality"]["gate"] == "unreadable_file"
