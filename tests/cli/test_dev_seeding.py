"""`finops dev`'s demo deliveries: the public domain as AWS and Azure deliver it, the sources
file naming them, every source giving a complete delivery per month, and a real batch run
loading them, after which the delivery sensor has nothing left to ask for."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from finops_cli.devstack import demo_sources_file, seed_demo_landing, seed_demo_sources
from finops_pipeline.contract import DOMAINS
from finops_pipeline.settings import get_pipeline_settings
from finops_pipeline.sources import Source, load_sources_file, open_delivery_file, scan_source
from finops_pipeline.sources.model import Delivery
from tests.support import (
    delivery_sensor_tick,
    query,
    read_landing_frame,
    reference_reject_reason,
    run_batch,
)

SOURCE_NAMES = ["aws-payer", "azure-ea", "open-landing", "private-landing", "native-landing"]
NOW = datetime(2026, 11, 15, 9, tzinfo=UTC)
PERIODS = ["2026-11", "2026-10"]
SCALE = 0.05  # public: 450 rows a month; the demo's shape, a test's size


@pytest.fixture
def seeded(tmp_path: Path) -> dict[str, Any]:
    home, landing = tmp_path / "home", tmp_path / "home" / "landing"
    seed_demo_landing(landing, now=NOW, months=len(PERIODS), scale=SCALE)
    path = seed_demo_sources(home, landing, now=NOW, months=len(PERIODS), scale=SCALE)
    return {"home": home, "landing": landing, "sources_file": path}


def delivery_rows(source: Source, delivery: Delivery) -> list[dict[str, Any]]:
    """The delivery's rows, read back from its files as strings (pandas, not the loader)."""
    rows: list[dict[str, Any]] = []
    for file in delivery.files:
        with open_delivery_file(source, file) as handle:
            rows += read_landing_frame(handle.read(), file.relative).to_dict("records")
    return rows


def test_the_sources_file_names_the_demo_exports_and_landing_folders(seeded: dict[str, Any]) -> None:
    path = seeded["sources_file"]
    assert path == demo_sources_file(seeded["home"])
    sources = load_sources_file(path)
    assert [s.name for s in sources] == SOURCE_NAMES
    assert [(s.name, s.domain, s.kind) for s in sources] == [
        ("aws-payer", "public", "aws-data-exports"),
        ("azure-ea", "public", "azure-cost-exports"),
        ("open-landing", "open", "landing"),
        ("private-landing", "private", "landing"),
        ("native-landing", "native", "landing"),
    ]
    by_name = {s.name: s for s in sources}
    assert by_name["open-landing"].uri == str(seeded["landing"] / "open")
    # The exports are local folders beside the sources file.
    assert all(Path(s.uri).parent.parent == path.parent for s in sources if s.domain == "public")


def test_every_seeded_source_has_a_complete_delivery_each_month(seeded: dict[str, Any]) -> None:
    for source in load_sources_file(seeded["sources_file"]):
        # The default settle time: the demo's landing files count as already delivered.
        scan = scan_source(source, now=NOW)
        assert sorted(scan.deliveries) == sorted(PERIODS), source.name
        assert scan.incomplete == [], source.name
        for period, delivery in scan.deliveries.items():
            rows = delivery_rows(source, delivery)
            assert rows, (source.name, period)
            assert {r["BillingPeriodStart"][:7] for r in rows} == {period}
            if source.kind == "aws-data-exports":
                assert len(delivery.files) == 2
                assert {r["ProviderName"] for r in rows} == {"AWS"}
            if source.kind == "azure-cost-exports":
                # Two runs a month: the later, full one is the delivery (the earlier holds the
                # first half of the month only).
                runs = sorted(Path(source.uri).glob(f"{period.replace('-', '')}01-*/*"))
                assert len(runs) == 2
                assert delivery.manifest is not None and delivery.manifest.split("/")[1] == runs[-1].name
                assert {r["ProviderName"] for r in rows} == {"Microsoft"}
                assert max(r["ChargePeriodStart"] for r in rows) >= f"{period}-15"


def test_a_batch_run_loads_the_seeded_deliveries_and_the_sensor_then_asks_for_nothing(
    seeded: dict[str, Any],
    warehouse_url: str,
    dagster_instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("FINOPS_LANDING_URI", str(seeded["landing"]))
    monkeypatch.setenv("FINOPS_SOURCES", str(seeded["sources_file"]))
    get_pipeline_settings.cache_clear()
    try:
        # What the loads should hold, from the files themselves: per period, the rows of the
        # AWS delivery and of Azure's later run, less those that cannot be stored.
        expected: dict[str, tuple[int, Decimal]] = {}
        public = [s for s in load_sources_file(seeded["sources_file"]) if s.domain == "public"]
        for period in PERIODS:
            count, total = 0, Decimal(0)
            for source in public:
                for row in delivery_rows(source, scan_source(source, now=NOW).deliveries[period]):
                    if reference_reject_reason(row, period) is None:
                        count += 1
                        total += Decimal(row["BilledCost"])
            expected[period] = (count, total)

        result = run_batch(dagster_instance, periods=PERIODS, domains=list(DOMAINS))
        assert result.success

        loaded = query(
            warehouse_url,
            "SELECT period, count(*), sum(billed_cost) FROM finops.releves WHERE domain = 'public' "
            "GROUP BY period ORDER BY period DESC",
        )
        assert [(p, int(n), Decimal(s)) for p, n, s in loaded] == [(p, *expected[p]) for p in PERIODS]
        loads = query(
            warehouse_url,
            "SELECT source, status, count(*) FROM finops_sources.loads GROUP BY 1, 2 ORDER BY 1",
        )
        assert loads == [(name, "LOADED", len(PERIODS)) for name in sorted(SOURCE_NAMES)]
        # What `finops dev` relies on: after the seeded runs, the delivery sensor finds every
        # delivery loaded and asks for no run.
        assert delivery_sensor_tick(dagster_instance) == []
    finally:
        get_pipeline_settings.cache_clear()
