"""Quality gates: a bad export never replaces a loaded month; landing folders as exporters leave them."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from finops_pipeline.demo_data import generate_focus_table
from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.warehouse.gates import GatePolicy
from finops_pipeline.warehouse.loads import QualityGateFailed, load_period
from tests.support import query

DOMAIN, PERIOD = "open", "2026-11"
ROWS = 400


def _table(rows: int = ROWS, seed: int = 3) -> pa.Table:
    return generate_focus_table(DOMAIN, PERIOD, rows, seed=seed, reject_fraction=0.0)


def _csv(table: pa.Table, delimiter: str = ",") -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(delimiter=delimiter))
    return sink.getvalue()


def checksum(url: str, domain: str = DOMAIN, period: str = PERIOD) -> tuple[int, str]:
    """Row count and md5 of the pair's rows in a fixed order (run id included)."""
    row = query(
        url,
        "SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) "
        "FROM finops.releves r WHERE domain = %s AND period = %s",
        (domain, period),
    )[0]
    return int(row[0]), str(row[1])


@pytest.fixture
def loaded(warehouse_url: str, tmp_path: Path) -> dict[str, Any]:
    """A (period, domain) loaded from a good export; the folder is then the test's to break."""
    root = tmp_path / "landing"
    folder = root / DOMAIN / PERIOD
    folder.mkdir(parents=True)
    (folder / "export.csv").write_bytes(_csv(_table()))
    store = LocalLandingStore(root)
    first = load_period(warehouse_url, store, DOMAIN, PERIOD, "run-good")
    assert first.inserted == ROWS
    (folder / "export.csv").unlink()
    return {"url": warehouse_url, "store": store, "folder": folder, "before": checksum(warehouse_url)}


def _broken_exports() -> dict[str, tuple[str, Callable[[Path], None], str]]:
    table = _table()

    def header_only(folder: Path) -> None:
        (folder / "export.csv").write_bytes(_csv(table.slice(0, 0)))

    def semicolons(folder: Path) -> None:
        (folder / "export.csv").write_bytes(_csv(table, delimiter=";"))

    def duplicated_column(folder: Path) -> None:
        data = _csv(table).decode()
        header, rest = data.split("\n", 1)
        body = "\n".join(f"{line},9.99" for line in rest.splitlines())
        (folder / "export.csv").write_text(f'{header},"BilledCost"\n{body}\n')

    def missing_column(folder: Path) -> None:
        (folder / "export.csv").write_bytes(_csv(table.drop_columns(["BilledCost"])))

    def some_rejected(folder: Path) -> None:
        costs = table.column("BilledCost").to_pylist()
        bad = [("12,50" if i % 20 == 0 else c) for i, c in enumerate(costs)]  # 5% unparsable
        index = table.schema.get_field_index("BilledCost")
        (folder / "export.csv").write_bytes(_csv(table.set_column(index, "BilledCost", pa.array(bad))))

    def shrunk(folder: Path) -> None:
        (folder / "export.csv").write_bytes(_csv(table.slice(0, ROWS // 10)))

    def truncated_gzip(folder: Path) -> None:
        data = gzip.compress(_csv(_table(20_000)))
        (folder / "export.csv.gz").write_bytes(data[: len(data) // 2])

    def symlink(folder: Path) -> None:
        secret = folder.parent.parent.parent / "secret.csv"
        secret.write_text("top-secret-line\n")
        os.symlink(secret, folder / "export.csv")

    return {
        "header only": ("empty", header_only, "no row in 1 landing file(s)"),
        "no file": ("empty", lambda folder: None, "the folder exists but is empty"),
        "semicolon separated": ("all_rejected", semicolons, "malformed_row 400"),
        "duplicated header column": ("all_rejected", duplicated_column, "duplicate_column:BilledCost 400"),
        "missing mandatory column": ("all_rejected", missing_column, "missing_column:BilledCost 400"),
        "5% rejected": ("rejected_ratio", some_rejected, "20 of 400 row(s) rejected (5%"),
        "shrink": ("shrink", shrunk, "replace 400 row(s) with 40"),
        "truncated gzip": ("unreadable_file", truncated_gzip, f"{DOMAIN}/{PERIOD}/export.csv.gz"),
        "symbolic link": ("unreadable_file", symlink, f"{DOMAIN}/{PERIOD}/export.csv is a symbolic link"),
    }


@pytest.mark.parametrize("case", list(_broken_exports()))
def test_a_failed_gate_keeps_the_previous_rows(loaded: dict[str, Any], case: str) -> None:
    gate, break_folder, words = _broken_exports()[case]
    break_folder(loaded["folder"])
    with pytest.raises(QualityGateFailed) as failed:
        load_period(loaded["url"], loaded["store"], DOMAIN, PERIOD, "run-bad")
    assert failed.value.gate == gate
    assert words in str(failed.value)
    assert "the previous" in str(failed.value) and "kept" in str(failed.value)
    assert "top-secret-line" not in str(failed.value)
    quality = failed.value.load.quality.as_metadata()
    assert quality["gate"] == gate and quality["rows_loaded"] == 0
    assert checksum(loaded["url"]) == loaded["before"]
    # Nothing left behind: the staged table went with the rolled-back transaction.
    assert query(loaded["url"], "SELECT to_regclass('finops.releves_open_2026_11_next')") == [(None,)]


def test_the_reject_messages_name_figures_reasons_and_the_first_offending_line(
    loaded: dict[str, Any],
) -> None:
    _broken_exports()["5% rejected"][1](loaded["folder"])
    with pytest.raises(QualityGateFailed) as failed:
        load_period(loaded["url"], loaded["store"], DOMAIN, PERIOD, "run-bad")
    message = str(failed.value)
    assert "FINOPS_MAX_REJECTED_RATIO 1%" in message
    assert f"top reasons: invalid_cost 20; first: {DOMAIN}/{PERIOD}/export.csv line 2, column BilledCost" in (
        message
    )
    [rejected] = failed.value.load.quality.as_metadata()["rejected"]
    assert rejected["count"] == 20
    assert [s["line"] for s in rejected["samples"]] == [2, 22, 42]
    assert {s["value"] for s in rejected["samples"]} == {"12,50"}


def test_allow_shrink_and_a_higher_ratio_let_a_launch_through(loaded: dict[str, Any]) -> None:
    _broken_exports()["shrink"][1](loaded["folder"])
    result = load_period(
        loaded["url"], loaded["store"], DOMAIN, PERIOD, "run-shrink", policy=GatePolicy(allow_shrink=True)
    )
    assert (result.inserted, result.deleted) == (ROWS // 10, ROWS)
    assert checksum(loaded["url"])[0] == ROWS // 10

    (loaded["folder"] / "export.csv").unlink()
    _broken_exports()["5% rejected"][1](loaded["folder"])
    result = load_period(
        loaded["url"], loaded["store"], DOMAIN, PERIOD, "run-ratio", policy=GatePolicy(max_rejected_ratio=0.1)
    )
    assert (result.inserted, result.rejected_total) == (380, 20)


def test_landing_folders_are_read_as_exporters_leave_them(warehouse_url: str, tmp_path: Path) -> None:
    root = tmp_path / "landing"
    folder = root / DOMAIN / PERIOD
    folder.mkdir(parents=True)
    table = _table(300)
    (folder / "PART-0001.CSV").write_bytes(_csv(table.slice(0, 100)))
    (folder / "part-0002.CSV.GZ").write_bytes(gzip.compress(_csv(table.slice(100, 100))))
    (folder / "part-0003.csv.gz").write_bytes(gzip.compress(_csv(table.slice(200, 100))))
    for name in ("_SUCCESS", ".part-0004.csv.crc", ".hidden.csv", "manifest.json", "_committed_1.csv"):
        (folder / name).write_text("not,an,export\n1,2,3\n")
    (folder / "nested").mkdir()
    (folder / "nested" / "x.csv").write_bytes(_csv(table))

    result = load_period(warehouse_url, LocalLandingStore(root), DOMAIN, PERIOD, "run-1")
    assert (result.rows_read, result.inserted) == (300, 300)
    assert result.quality.warnings[f"skipped_sub_folder:{DOMAIN}/{PERIOD}/nested/"] == 1
    assert sorted(Path(f).name for f in result.files) == [
        "PART-0001.CSV",
        "part-0002.CSV.GZ",
        "part-0003.csv.gz",
    ]


def test_a_period_folder_linked_outside_the_root_is_refused(warehouse_url: str, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "export.csv").write_bytes(_csv(_table(10)))
    root = tmp_path / "landing"
    (root / DOMAIN).mkdir(parents=True)
    os.symlink(outside, root / DOMAIN / PERIOD)
    with pytest.raises(QualityGateFailed) as failed:
        load_period(warehouse_url, LocalLandingStore(root), DOMAIN, PERIOD, "run-1")
    assert failed.value.gate == "unreadable_file"
    assert "outside the landing root" in str(failed.value)


def test_a_truncated_file_fails_its_month_only_and_the_views_wait(
    dagster_instance: Any, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from dagster import DagsterEventType

    from finops_pipeline.demo_data import write_demo_landing
    from tests.support import expected_from_local_landing, metadata_values, mv_snapshot, run_batch, run_events

    root = tmp_path / "landing"
    write_demo_landing(str(root), months=3, now=datetime(2026, 11, 15, tzinfo=UTC), scale=0.2)
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("FINOPS_LANDING_URI", str(root))
    periods = ["2026-11", "2026-10", "2026-09"]
    assert run_batch(dagster_instance, periods=periods, domains=["public"]).success
    before = {p: checksum(warehouse_url, "public", p) for p in periods}
    views = mv_snapshot(warehouse_url)

    # The middle month's export is re-delivered gzipped, and cut in the middle of its stream.
    middle = root / "public" / "2026-10"
    whole = gzip.compress((middle / "export-001.csv").read_bytes())
    (middle / "export-001.csv").unlink()
    (middle / "export-001.csv.gz").write_bytes(whole[: len(whole) * 2 // 3])
    for period in ("2026-11", "2026-09"):  # the other months change, so a reload shows
        (root / "public" / period / "export-001.csv").unlink()
    expected = expected_from_local_landing(root, ["2026-11", "2026-09"])

    second = run_batch(dagster_instance, periods=periods, domains=["public"], allow_shrink=True)
    assert not second.success
    failure = next(
        e.event_specific_data
        for e in run_events(dagster_instance, second.run_id)
        if e.event_type == DagsterEventType.STEP_FAILURE
    )
    assert "public/2026-10/export-001.csv.gz" in failure.error.message
    assert "unreadable_file" in failure.error.message
    meta = metadata_values(failure.user_failure_data.metadata)
    assert set(meta["periods"]) == set(periods)
    middle_meta = meta["periods"]["2026-10"]
    assert middle_meta["releves_inserted"] == 0 and middle_meta["quality"]["gate"] == "unreadable_file"
    assert checksum(warehouse_url, "public", "2026-10") == before["2026-10"]
    for period in ("2026-11", "2026-09"):
        item = expected[("public", period)]
        per_period = meta["periods"][period]
        assert per_period["quality"]["gate"] is None
        assert (
            per_period["releves_inserted"]
            == len(item["valid"])
            == checksum(warehouse_url, "public", period)[0]
        )
        assert per_period["releves_rejected"] == item["rejected"].total()
        assert per_period["quality"]["rows_read"] == item["rows_read"]
    assert meta["releves_inserted"] == sum(
        len(expected[("public", p)]["valid"]) for p in ("2026-11", "2026-09")
    )
    # The views were not refreshed.
    assert mv_snapshot(warehouse_url) == views
    assert not any(
        e.event_type == DagsterEventType.ASSET_MATERIALIZATION
        and e.event_specific_data.materialization.asset_key.path[1].startswith("mv_")
        for e in run_events(dagster_instance, second.run_id)
    )


def test_a_large_file_whose_sparse_columns_fill_in_late_loads(warehouse_url: str, tmp_path: Path) -> None:
    """Over 64 MiB: the columns empty in the first blocks get text in the last ones."""
    header = (
        "BilledCost,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,"
        "ChargeCategory,CommitmentDiscountId,ContractedUnitPrice,x_SpendKind,Tags\n"
    )
    pad = "x" * 300
    early = (
        f"0.000001,USD,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,2026-11-02 10:00:00,2026-11-02 11:00:00,"
        f'Usage,,,,"{{""application"": ""app-{pad}""}}"\n'
    )
    late = (
        "1.5,USD,2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,2026-11-03 10:00:00.250 UTC,2026-11-03 11:00:00Z,"
        "Usage,cd-1,0.125,Spend,NULL\n"
    )
    early_rows, late_rows = 72 * 1024 * 1024 // len(early) + 1, 1000
    path = tmp_path / "landing" / DOMAIN / PERIOD / "big.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w") as out:
        out.write(header)
        chunk = early * 10_000
        for _ in range(early_rows // 10_000):
            out.write(chunk)
        out.write(early * (early_rows % 10_000))
        out.write(late * late_rows)
    assert path.stat().st_size > 64 * 1024 * 1024
    result = load_period(warehouse_url, LocalLandingStore(tmp_path / "landing"), DOMAIN, PERIOD, "run-big")
    assert (result.rows_read, result.inserted) == (early_rows + late_rows, early_rows + late_rows)
    rows = query(
        warehouse_url,
        "SELECT commitment_discount_id, contracted_unit_price::text, extra::text, charge_period_start, "
        "count(*) FROM finops.releves WHERE commitment_discount_id IS NOT NULL GROUP BY 1, 2, 3, 4",
    )
    from datetime import UTC, datetime

    assert rows == [
        ("cd-1", "0.125", '{"x_SpendKind": "Spend"}', datetime(2026, 11, 3, 10, 0, 0, 250000, UTC), 1000)
    ]
