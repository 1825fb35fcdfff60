"""Parquet files typed the way providers' FOCUS exports type them, through the real loader.

Google's FOCUS BigQuery view (Tags as a list of key/value records with extra fields,
billing periods at Pacific midnight), AWS Data Exports (DOUBLE costs, millisecond
timestamps, map<string, string> tags), Azure cost exports (DECIMAL(38, 18)), and a
month billed in two currencies: exact sums per currency, row counts and applications
checked against an independent computation in Python.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.landing.focus import ReadRules
from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.warehouse.loads import PeriodLoad, load_period
from tests.support import application_of, focus_samples_dir, query

DOMAIN = "public"
PERIOD = "2024-11"
# Google bills by Pacific-time month: 2024-11-01 00:00 PDT and 2024-12-01 00:00 PST.
PACIFIC_START = datetime(2024, 11, 1, 7, tzinfo=UTC)
PACIFIC_END = datetime(2024, 12, 1, 8, tzinfo=UTC)
GCP_TAG = pa.struct(
    [
        ("key", pa.string()),
        ("value", pa.string()),
        ("x_type", pa.string()),
        ("x_inherited", pa.bool_()),
        ("x_namespace", pa.string()),
    ]
)


def _rows(n: int) -> list[dict[str, Any]]:
    """n FOCUS rows of one month, costs with many decimals, a few applications."""
    rows = []
    for i in range(n):
        start = PACIFIC_START + timedelta(hours=i)
        rows.append(
            {
                "BilledCost": Decimal(f"{i % 97}.{(i * 7919) % 10**9:09d}"),
                "EffectiveCost": Decimal(f"{i % 13}.5"),
                "BillingCurrency": "USD",
                "BillingPeriodStart": PACIFIC_START,
                "BillingPeriodEnd": PACIFIC_END,
                "ChargePeriodStart": start,
                "ChargePeriodEnd": start + timedelta(hours=1),
                "ChargeCategory": "Usage",
                "ServiceName": "Compute Engine",
                "ServiceCategory": "Compute",
                "ProviderName": "Google Cloud",
                "ConsumedUnit": "hour",  # units are free text in FOCUS: kept as written
                "application": None if i % 5 == 0 else f"app-{i % 3}",
            }
        )
    return rows


def _table(rows: list[dict[str, Any]], tags: pa.Array, cost: Callable[[list[Decimal]], pa.Array]) -> pa.Table:
    def stamps(name: str, unit: str = "us") -> pa.Array:
        return pa.array([r[name] for r in rows], pa.timestamp(unit, tz="UTC"))

    return pa.table(
        {
            "BilledCost": cost([r["BilledCost"] for r in rows]),
            "EffectiveCost": cost([r["EffectiveCost"] for r in rows]),
            "BillingCurrency": pa.array([r["BillingCurrency"] for r in rows]),
            **{name: stamps(name) for name in ("BillingPeriodStart", "BillingPeriodEnd")},
            **{name: stamps(name) for name in ("ChargePeriodStart", "ChargePeriodEnd")},
            **{
                k: pa.array([r[k] for r in rows])
                for k in ("ChargeCategory", "ServiceName", "ServiceCategory")
            },
            **{k: pa.array([r[k] for r in rows]) for k in ("ProviderName", "ConsumedUnit")},
            "Tags": tags,
        }
    )


def _gcp_tags(rows: list[dict[str, Any]]) -> pa.Array:
    records = []
    for r in rows:
        tags = [
            {
                "key": "goog-env",
                "value": "prod",
                "x_type": "system_label",
                "x_inherited": True,
                "x_namespace": None,
            }
        ]
        if r["application"]:
            tags.append(
                {
                    "key": "application",
                    "value": r["application"],
                    "x_type": "label",
                    "x_inherited": False,
                    "x_namespace": "projects/p1",
                }
            )
        records.append(tags)
    return pa.array(records, pa.list_(GCP_TAG))


def _map_tags(rows: list[dict[str, Any]]) -> pa.Array:
    return pa.array(
        [[("user:application", r["application"])] if r["application"] else [] for r in rows],
        pa.map_(pa.string(), pa.string()),
    )


def _decimals(scale: int) -> Callable[[list[Decimal]], pa.Array]:
    return lambda values: pa.array(values, pa.decimal128(38, scale))


def _landing(tmp_path: Path, *tables: pa.Table) -> Path:
    folder = tmp_path / DOMAIN / PERIOD
    folder.mkdir(parents=True)
    for i, table in enumerate(tables):
        pq.write_table(table, folder / f"part-{i}.parquet")
    return tmp_path


def _load(url: str, root: Path, basis: str = "billing") -> PeriodLoad:
    return load_period(url, LocalLandingStore(root), DOMAIN, PERIOD, "run-shapes", rules=ReadRules(basis))


def _sums(url: str) -> dict[str, Decimal]:
    rows = query(url, "SELECT billing_currency, sum(billed_cost)::text FROM finops.releves GROUP BY 1")
    return {currency: Decimal(total) for currency, total in rows}


def _applications(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT application, count(*) FROM finops.releves GROUP BY 1"))


def _expected_applications(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        app = r["application"] or "unassigned"
        counts[app] = counts.get(app, 0) + 1
    return counts


def test_google_tags_as_records_keep_key_to_value_and_their_extra_fields(
    warehouse_url: str, tmp_path: Path
) -> None:
    rows = _rows(500)
    result = _load(warehouse_url, _landing(tmp_path, _table(rows, _gcp_tags(rows), _decimals(9))))
    assert (result.rows_read, result.inserted, result.rejected_total) == (500, 500, 0)
    assert _sums(warehouse_url) == {"USD": sum((r["BilledCost"] for r in rows), Decimal(0))}
    assert _applications(warehouse_url) == _expected_applications(rows)
    unassigned = [r for r in rows if not r["application"]]
    assert result.quality.unassigned_rows == len(unassigned) == 100
    assert result.quality.unassigned_cost == {"USD": sum((r["BilledCost"] for r in unassigned), Decimal(0))}
    warnings = {w["rule"] for w in result.quality.as_metadata()["warnings"]}
    assert not {w for w in warnings if w.startswith("Tags:")}
    tags, extra, unit = query(
        warehouse_url,
        "SELECT tags, extra, consumed_unit FROM finops.releves WHERE source_line = 2",
    )[0]
    assert tags == {"goog-env": "prod", "application": "app-1"}
    assert json.loads(extra["Tags"])[1] == {
        "key": "application",
        "value": "app-1",
        "x_type": "label",
        "x_inherited": False,
        "x_namespace": "projects/p1",
    }
    assert unit == "hour"
    stored = query(warehouse_url, "SELECT DISTINCT billing_period_start FROM finops.releves")
    assert stored == [(PACIFIC_START,)]


def test_aws_doubles_milliseconds_and_map_tags(warehouse_url: str, tmp_path: Path) -> None:
    rows = _rows(300)
    doubles = [float(r["BilledCost"]) for r in rows] + [1e-7, 0.1]
    rows += [dict(rows[0], application="tiny"), dict(rows[1], application=None)]
    table = _table(rows, _map_tags(rows), lambda _: pa.array(doubles, pa.float64()))
    table = table.set_column(
        table.schema.get_field_index("ChargePeriodStart"),
        "ChargePeriodStart",
        table["ChargePeriodStart"].cast(pa.timestamp("ms", tz="UTC")),
    )
    result = _load(warehouse_url, _landing(tmp_path, table))
    assert (result.rows_read, result.inserted, result.rejected_total) == (302, 302, 0)
    # A double is stored as its shortest decimal form, the text a reader of the file sees.
    expected = sum((Decimal(repr(d)) for d in doubles), Decimal(0))
    assert _sums(warehouse_url) == {"USD": expected} == result.billed_cost
    assert _applications(warehouse_url) == _expected_applications(rows)
    assert query(warehouse_url, "SELECT tags FROM finops.releves WHERE source_line = 301") == [
        ({"user:application": "tiny"},)
    ]


def test_azure_decimal_38_18_and_two_currencies(warehouse_url: str, tmp_path: Path) -> None:
    usd = _rows(200)
    eur = [
        dict(r, BillingCurrency="EUR", BilledCost=r["BilledCost"] * 3 + Decimal("0.000000000000000001"))
        for r in _rows(50)
    ]
    tables = [_table(part, _map_tags(part), _decimals(18)) for part in (usd, eur)]
    result = _load(warehouse_url, _landing(tmp_path, *tables))
    assert (result.rows_read, result.inserted) == (250, 250)
    assert _sums(warehouse_url) == {
        "USD": sum((r["BilledCost"] for r in usd), Decimal(0)),
        "EUR": sum((r["BilledCost"] for r in eur), Decimal(0)),
    }
    assert _applications(warehouse_url) == _expected_applications(usd + eur)


def test_shapes_that_are_not_key_value_are_kept_as_written_with_a_warning(
    warehouse_url: str, tmp_path: Path
) -> None:
    rows = _rows(4)
    tags = pa.array(
        [
            [{"key": "application", "value": "a"}, {"key": "application", "value": "b"}],  # a key twice
            [{"key": None, "value": "x"}],
            [{"key": "app", "value": "nul\x00inside"}],
            [{"key": "app", "value": "web"}],
        ],
        pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())])),
    )
    table = _table(rows, tags, _decimals(9)).append_column(
        "x_Credits", pa.array([["ab", "cd"], None, [], ["e"]], pa.list_(pa.string()))
    )
    strings = _table(rows, pa.array([["ab", "cd"]] * 4, pa.list_(pa.string())), _decimals(9))
    result = _load(warehouse_url, _landing(tmp_path, table, strings))
    assert (result.rows_read, result.inserted, result.rejected_total) == (8, 8, 0)
    warnings = {w["rule"]: w["count"] for w in result.quality.as_metadata()["warnings"]}
    assert warnings["Tags:not_key_value"] == 3 + 4
    stored = {
        (Path(file).name, line): (tags, extra, app)
        for file, line, tags, extra, app in query(
            warehouse_url, "SELECT source_file, source_line, tags, extra, application FROM finops.releves"
        )
    }
    assert stored["part-0.parquet", 4] == ({"app": "web"}, {"x_Credits": '["e"]'}, "web")
    tags_, extra, app = stored["part-0.parquet", 1]
    assert tags_ is None and app == "unassigned"
    assert json.loads(extra["Tags"]) == [
        {"key": "application", "value": "a"},
        {"key": "application", "value": "b"},
    ]
    assert json.loads(extra["x_Credits"]) == ["ab", "cd"]  # never paired up into {"a": "b", ...}
    assert json.loads(stored["part-0.parquet", 3][1]["Tags"]) == [{"key": "app", "value": "nul\x00inside"}]
    assert stored["part-1.parquet", 1] == (None, {"Tags": '["ab","cd"]'}, "unassigned")


def _sample_rows() -> list[dict[str, str]]:
    with open(focus_samples_dir() / "focus_sample.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _sample_as_google_parquet(path: Path) -> None:
    """The official sample, its Tags as Google writes them: a list of key/value records."""
    rows = _sample_rows()
    columns: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [None if r[name] in ("NULL", "") else r[name] for r in rows]
        if name == "Tags":
            records = [
                None
                if v is None
                else [
                    {"key": k, "value": val, "x_type": "label", "x_inherited": False, "x_namespace": None}
                    for k, val in json.loads(v).items()
                ]
                for v in values
            ]
            columns[name] = pa.array(records, pa.list_(GCP_TAG))
        else:
            columns[name] = pa.array(values, pa.string())
    pq.write_table(pa.table(columns), path)


def test_the_official_sample_with_google_tags_attributes_as_the_csv_does(
    warehouse_url: str, tmp_path: Path
) -> None:
    period = "2024-09"
    csv_root, parquet_root = tmp_path / "csv", tmp_path / "parquet"
    (csv_root / DOMAIN / period).mkdir(parents=True)
    (parquet_root / DOMAIN / period).mkdir(parents=True)
    shutil.copyfile(focus_samples_dir() / "focus_sample.csv", csv_root / DOMAIN / period / "sample.csv")
    _sample_as_google_parquet(parquet_root / DOMAIN / period / "sample.parquet")

    def load(root: Path) -> tuple[PeriodLoad, dict[str, int]]:
        loaded = load_period(warehouse_url, LocalLandingStore(root), DOMAIN, period, "run-sample")
        return loaded, _applications(warehouse_url)

    from_csv, csv_apps = load(csv_root)
    from_parquet, parquet_apps = load(parquet_root)
    rows = [r for r in _sample_rows() if r["BillingPeriodStart"].startswith(period)]
    unassigned = [
        r
        for r in rows
        if application_of({"Tags": None if r["Tags"] == "NULL" else r["Tags"]}) == "unassigned"
    ]
    oracle = sum((Decimal(r["BilledCost"]) for r in unassigned), Decimal(0))
    for loaded in (from_csv, from_parquet):
        assert (loaded.inserted, loaded.quality.unassigned_rows) == (999, len(unassigned))
        assert loaded.quality.unassigned_cost == {"USD": oracle}
    assert (len(unassigned), round(oracle, 2)) == (309, Decimal("0.27"))
    assert parquet_apps == csv_apps
