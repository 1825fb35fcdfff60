"""The FinOps Foundation's FOCUS sample, unmodified, as CSV and as typed Parquet, through the real loader."""

from __future__ import annotations

import csv
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_pipeline.landing.focus import ReadRules
from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.warehouse.loads import PeriodLoad, load_period
from tests.support import application_of, focus_samples_dir, query

PERIOD = "2024-09"
DOMAIN = "public"


def _sample_rows() -> list[dict[str, str]]:
    with open(focus_samples_dir() / "focus_sample.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _null(value: str) -> str | None:
    return None if value in ("NULL", "") else value


def _typed_parquet(path: Path) -> None:
    """The sample as an exporter writing Parquet types would: timestamps, decimals, a map of tags."""
    rows = _sample_rows()
    columns: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [_null(r[name]) for r in rows]
        if name.endswith(("PeriodStart", "PeriodEnd")):
            columns[name] = pa.array([None if v is None else f"{v}Z" for v in values], pa.string()).cast(
                pa.timestamp("us", tz="UTC")
            )
        elif name.endswith(("Cost", "Quantity", "Price")):
            decimals = [None if v is None else Decimal(v) for v in values]
            scale = max(-d.as_tuple().exponent for d in decimals if d is not None)  # type: ignore[operator]
            columns[name] = pa.array(decimals, pa.decimal128(38, scale))
        elif name == "Tags":
            columns[name] = pa.array(
                [None if v is None else list(json.loads(v).items()) for v in values],
                pa.map_(pa.string(), pa.string()),
            )
        elif name == "Id":
            columns[name] = pa.array([int(v) for v in values], pa.int64())
        else:
            columns[name] = pa.array(values, pa.string())
    pq.write_table(pa.table(columns), path)


@pytest.fixture(scope="module", params=["csv", "parquet"])
def sample_landing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(f"sample_{request.param}")
    folder = root / DOMAIN / PERIOD
    folder.mkdir(parents=True)
    if request.param == "csv":
        shutil.copyfile(focus_samples_dir() / "focus_sample.csv", folder / "focus_sample.csv")
    else:
        _typed_parquet(folder / "focus_sample.parquet")
    return root


def _load(url: str, root: Path, basis: str) -> PeriodLoad:
    return load_period(
        url, LocalLandingStore(root), DOMAIN, PERIOD, f"run-{basis}", rules=ReadRules(period_basis=basis)
    )


def _stored_sum(url: str) -> Decimal:
    return Decimal(query(url, "SELECT sum(billed_cost)::text FROM finops.releves")[0][0])


def test_the_billing_basis_loads_999_rows_and_rejects_the_row_billed_in_october(
    warehouse_url: str, sample_landing: Path
) -> None:
    rows = _sample_rows()
    september = [r for r in rows if r["BillingPeriodStart"].startswith(PERIOD)]
    assert (len(rows), len(september)) == (1000, 999)  # the sample's README says so

    result = _load(warehouse_url, sample_landing, "billing")
    assert (result.rows_read, result.inserted) == (1000, 999)
    assert dict(result.rejected) == {"billing_period_outside_month": 1}
    [rejected] = result.quality.as_metadata()["rejected"]
    [sample] = rejected["samples"]
    assert sample["column"] == "BillingPeriodStart"
    assert sample["file"].startswith(f"{DOMAIN}/{PERIOD}/focus_sample.")
    if sample["file"].endswith(".csv"):
        oracle = next(i for i, r in enumerate(rows) if r["BillingPeriodStart"].startswith("2024-10"))
        assert sample["line"] == oracle + 2  # the header is line 1
        assert sample["value"] == "2024-10-01 00:00:00"
    oracle_rows = query(warehouse_url, "SELECT count(*) FROM finops.releves WHERE provider_name = 'Oracle'")
    assert oracle_rows == [(6,)]

    # Money to the last digit: PostgreSQL's sum, the run's figure and Python's Decimal agree.
    exact = sum((Decimal(r["BilledCost"]) for r in september), Decimal(0))
    assert exact == Decimal("20.28022672899")
    assert _stored_sum(warehouse_url) == exact and result.billed_cost == {"USD": exact}
    stored = dict(query(warehouse_url, "SELECT source_line, billed_cost::text FROM finops.releves"))
    if sample["file"].endswith(".csv"):  # every value as written, no rounding (546 have > 6 decimals)
        assert {line: Decimal(v) for line, v in stored.items()} == {
            i + 2: Decimal(r["BilledCost"]) for i, r in enumerate(rows) if r in september
        }

    # FOCUS 1.2 says a non-Usage row has no ConsumedQuantity: the two Adjustments load, flagged.
    adjustments = query(
        warehouse_url,
        "SELECT consumed_quantity::text FROM finops.releves WHERE charge_category = 'Adjustment'",
    )
    assert sorted(Decimal(v) for (v,) in adjustments) == [Decimal(8), Decimal(128)]
    warnings = {w["rule"]: w["count"] for w in result.quality.as_metadata()["warnings"]}
    assert warnings["ConsumedQuantity:not_null_unless_usage"] == 2
    assert query(warehouse_url, "SELECT count(*) FROM finops.releves WHERE charge_category = 'Credit'") == [
        (1,)
    ]
    assert result.quality.focus_versions == {"1.0"}


def test_the_charge_basis_loads_all_1000_rows(warehouse_url: str, sample_landing: Path) -> None:
    result = _load(warehouse_url, sample_landing, "charge")
    assert (result.rows_read, result.inserted, result.rejected_total) == (1000, 1000, 0)
    exact = sum((Decimal(r["BilledCost"]) for r in _sample_rows()), Decimal(0))
    assert _stored_sum(warehouse_url) == exact == Decimal("20.52022672899")
    assert result.billed_cost == {"USD": exact}
    assert query(warehouse_url, "SELECT DISTINCT period FROM finops.releves") == [(PERIOD,)]


def test_every_column_is_kept_and_applications_follow_the_tag_keys(
    warehouse_url: str, sample_landing: Path
) -> None:
    result = _load(warehouse_url, sample_landing, "charge")
    rows = _sample_rows()
    stored = {
        r[0]: r[1:]
        for r in query(
            warehouse_url,
            "SELECT row_to_json(r)::jsonb ->> 'extra', r.application, r.tags::text, r.list_unit_price::text, "
            "r.sku_price_id, r.charge_period_start, r.provider_name, r.focus_version "
            "FROM finops.releves r",
        )
    }
    ids = {json.loads(extra)["Id"]: rest for extra, *rest in ((k, *v) for k, v in stored.items())}
    assert len(ids) == 1000  # the sample's non-FOCUS `Id` column is kept in `extra`
    for row in rows:
        application, tags, list_unit_price, sku_price_id, start, provider, version = ids[row["Id"]]
        assert application == application_of({"Tags": _null(row["Tags"])})
        assert (json.loads(tags) if tags else None) == (
            None if row["Tags"] == "NULL" else json.loads(row["Tags"])
        )
        assert (Decimal(list_unit_price) if list_unit_price else None) == (
            None if row["ListUnitPrice"] == "NULL" else Decimal(row["ListUnitPrice"])
        )
        assert sku_price_id == _null(row["SkuPriceId"])
        assert start.strftime("%Y-%m-%d %H:%M:%S") == row["ChargePeriodStart"]
        assert (provider, version) == (row["ProviderName"], "1.0")

    # Microsoft rows carry `Project`, no `application`: they are attributed through it.
    microsoft: dict[str, Any] = dict(
        query(
            warehouse_url,
            "SELECT application, count(*) FROM finops.releves WHERE provider_name = 'Microsoft' GROUP BY 1",
        )
    )
    projects = [json.loads(r["Tags"]).get("Project") for r in rows if r["ProviderName"] == "Microsoft"]
    with_project = [p for p in projects if p]
    assert len(with_project) == 31
    assert sum(n for app, n in microsoft.items() if app != "unassigned") == 31
    assert set(microsoft) - {"unassigned"} == set(with_project)
    unassigned = [r for r in rows if application_of({"Tags": _null(r["Tags"])}) == "unassigned"]
    assert result.quality.unassigned_rows == len(unassigned)
    oracle = sum((Decimal(r["BilledCost"]) for r in unassigned), Decimal(0))
    assert result.quality.unassigned_cost == {"USD": oracle}


def test_settings_reach_the_warehouse_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    """FINOPS_PERIOD_BASIS and friends flow environment -> settings -> resource -> load rules."""
    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.settings import get_pipeline_settings

    monkeypatch.setenv("FINOPS_PERIOD_BASIS", "charge")
    monkeypatch.setenv("FINOPS_APPLICATION_TAG_KEYS", "Project, app")
    monkeypatch.setenv("FINOPS_MAX_REJECTED_RATIO", "0.05")
    get_pipeline_settings.cache_clear()
    try:
        warehouse = build_definitions().resources["warehouse"]
        assert warehouse.read_rules() == ReadRules(
            period_basis="charge", application_tag_keys=("Project", "app")
        )
        assert warehouse.max_rejected_ratio == 0.05 and warehouse.max_shrink_ratio == 0.5
        monkeypatch.setenv("FINOPS_PERIOD_BASIS", "invoice")
        get_pipeline_settings.cache_clear()
        with pytest.raises(ValueError, match="period_basis"):
            get_pipeline_settings()
    finally:
        get_pipeline_settings.cache_clear()
