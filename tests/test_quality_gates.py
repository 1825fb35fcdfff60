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
        (folder / "export.csv").write_text(f"{header},\"BilledCost\"\n{body}\n")

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
        "5% rejected": ("rejected_ratio", some_rejected, "20 of 400 row(s) rejected (5.00%"),
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


def test_the_reject_messages_name_figures_reasons_and_the_first_offending_line(loaded: dict[str, Any]) -> None:
    _broken_exports()["5% rejected"][1](loaded["folder"])
    with pytest.raises(QualityGateFailed) as failed:
        load_period(loaded["url"], loaded["store"], DOMAIN, PERIOD, "run-bad")
    message = str(failed.value)
    assert "FINOPS_MAX_REJECTED_RATIO 1.00%" in message
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
    assert sorted(Path(f).name for f in result.files) == ["PART-0001.CSV", "part-0002.CSV.GZ", "part-0003.csv.gz"]


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
