"""FOCUS as its files write it: virtual pricing currencies, newer versions, header case, and
the quality-gate messages' figures."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from finops_pipeline.landing.quality import PeriodQuality
from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.warehouse.gates import GatePolicy, check_gates, percent
from finops_pipeline.warehouse.loads import PeriodLoad, QualityGateFailed, load_period
from tests.support import query

DOMAIN, PERIOD = "native", "2025-03"
ROW = {
    "BilledCost": "12.5",
    "BillingCurrency": "USD",
    "BillingPeriodStart": "2025-03-01T00:00:00Z",
    "BillingPeriodEnd": "2025-04-01T00:00:00Z",
    "ChargePeriodStart": "2025-03-02T00:00:00Z",
    "ChargePeriodEnd": "2025-03-03T00:00:00Z",
    "ChargeCategory": "Usage",
    "ServiceName": "Model API",
    "ServiceCategory": "AI and Machine Learning",
}


def _write(folder: Path, name: str, rows: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (folder / name).write_text(out.getvalue(), encoding="utf-8")


def _load(url: str, root: Path) -> PeriodLoad:
    return load_period(url, LocalLandingStore(root), DOMAIN, PERIOD, "run-written")


def test_a_virtual_pricing_currency_loads_without_a_warning(warehouse_url: str, tmp_path: Path) -> None:
    # The shape of FOCUS's SaaS example: priced in tokens, billed in dollars.
    rows = [
        dict(ROW, PricingCurrency="Token", PricingCurrencyEffectiveCost=str(1000 * i), BilledCost=f"0.0{i}")
        for i in range(1, 10)
    ]
    _write(tmp_path / DOMAIN / PERIOD, "saas.csv", rows)
    result = _load(warehouse_url, tmp_path)
    assert (result.inserted, result.rejected_total) == (9, 0)
    assert not [rule for rule in result.quality.warnings if rule.startswith("PricingCurrency")]
    assert query(warehouse_url, "SELECT DISTINCT pricing_currency FROM finops.releves") == [("Token",)]


def test_a_focus_1_4_file_is_recorded_as_1_4(warehouse_url: str, tmp_path: Path) -> None:
    row = dict(
        ROW, ServiceProviderName="Acme", TagDetails='{"Default": {"Tags": {}, "UntaggedSources": null}}'
    )
    _write(tmp_path / DOMAIN / PERIOD, "v14.csv", [row])
    result = _load(warehouse_url, tmp_path)
    assert result.quality.focus_versions == {"1.4"}
    assert query(warehouse_url, "SELECT focus_version, provider_name FROM finops.releves") == [
        ("1.4", "Acme")
    ]


def test_a_header_in_the_wrong_case_is_named_in_the_reject(warehouse_url: str, tmp_path: Path) -> None:
    rows = [{("billedcost" if k == "BilledCost" else k): v for k, v in ROW.items()}] * 3
    _write(tmp_path / DOMAIN / PERIOD, "lower.csv", rows)
    with pytest.raises(QualityGateFailed) as failed:
        _load(warehouse_url, tmp_path)
    assert dict(failed.value.load.rejected) == {"missing_column:BilledCost (found 'billedcost')": 3}
    assert "missing_column:BilledCost (found 'billedcost') 3" in str(failed.value)


def test_a_month_with_only_a_sub_folder_of_files_says_it_was_skipped(
    warehouse_url: str, tmp_path: Path
) -> None:
    _write(tmp_path / DOMAIN / PERIOD / "2025-03-01-2025-03-31", "part-0.csv", [ROW])
    with pytest.raises(QualityGateFailed) as failed:
        _load(warehouse_url, tmp_path)
    assert failed.value.gate == "empty"
    assert f"{DOMAIN}/{PERIOD}/2025-03-01-2025-03-31/ (1 file(s))" in str(failed.value)
    assert "is empty" not in str(failed.value)


@pytest.mark.parametrize(
    ("fraction", "shown"),
    [
        (0, "0%"),
        (1, "100%"),
        (1 - 100 / 70_000, "99.86%"),
        (0.99999, ">99.99%"),
        (1e-6, "<0.01%"),
        (0.05, "5%"),
    ],
)
def test_percentages_never_round_a_part_to_none_or_all(fraction: float, shown: str) -> None:
    assert percent(fraction) == shown


def test_a_shrink_of_70000_rows_to_100_is_not_called_100_percent() -> None:
    quality = PeriodQuality(period=PERIOD, files=1, rows_read=100, rows_loaded=100)
    gate, message = check_gates(quality, 70_000, GatePolicy()) or ("", "")
    assert gate == "shrink"
    assert "replace 70000 row(s) with 100 (99.86% fewer, above FINOPS_MAX_SHRINK_RATIO 50%)" in message
