"""FOCUS validation through the real loader: every reject reason and warning, four formats, exact values."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.warehouse.gates import GatePolicy
from finops_pipeline.warehouse.loads import PeriodLoad, load_period
from finops_pipeline.warehouse.schema import ensure_schema
from tests.support import create_database, query, reference_reject_reason

PERIOD = "2026-11"

BASE: dict[str, str] = {
    "BillingAccountId": "acct-billing",
    "BillingPeriodStart": "2026-11-01T00:00:00Z",
    "BillingPeriodEnd": "2026-12-01T00:00:00Z",
    "ChargePeriodStart": "2026-11-05T00:00:00Z",
    "ChargePeriodEnd": "2026-11-06T00:00:00Z",
    "ChargeCategory": "Usage",
    "BilledCost": "10.5",
    "EffectiveCost": "9.25",
    "BillingCurrency": "EUR",
    "ServiceName": "Amazon EC2",
    "ServiceCategory": "Compute",
    "ProviderName": "AWS",
    "RegionId": "eu-west-3",
    "ResourceId": "",
    "ResourceName": "web-1",
    "SubAccountId": "acct-1",
    "SubAccountName": "Account 1",
    "ConsumedQuantity": "24",
    "ConsumedUnit": "Hours",
    "Tags": '{"application": "app-0001", "env": "prod"}',
}

# (ResourceId, changes, reason or None when the row must load). ResourceId names the row.
CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("ok-base", {}, None),
    ("ok-empty-optional", {"RegionId": "", "ConsumedQuantity": "", "Tags": "", "SubAccountName": ""}, None),
    ("ok-null-text", {"RegionId": "NULL", "Tags": "NULL", "SubAccountId": "NULL"}, None),
    (
        "ok-nested-tags",
        {"Tags": '{"application": "app-0002", "owner": {"team": "payments", "ids": [1, 2]}}'},
        None,
    ),
    ("ok-empty-application", {"Tags": '{"application": "", "env": "dev"}'}, None),
    ("ok-project-tag", {"Tags": '{"Project": "app-0003", "env": "dev"}'}, None),
    ("ok-upper-key", {"Tags": '{"APPLICATION": "app-0004", "project": "other"}'}, None),
    (
        "ok-naive-month-end",
        {
            "ChargePeriodStart": "2026-11-30 23:00:00",
            "ChargePeriodEnd": "2026-12-01",
            "BilledCost": "1e2",
            "EffectiveCost": "-3.5",
        },
        None,
    ),
    (
        "ok-offset",
        {
            "ChargePeriodStart": "2026-11-10T01:00:00+01:00",
            "ChargePeriodEnd": "2026-11-11T00:00:00Z",
            "ConsumedQuantity": "0.000001",
        },
        None,
    ),
    (
        "ok-fractions-and-utc",
        {"ChargePeriodStart": "2026-11-12T08:00:00.123456Z", "ChargePeriodEnd": "2026-11-12 09:00:00 UTC"},
        None,
    ),
    ("ok-quoting", {"ResourceName": 'serveur "été", ✓\nligne 2', "SubAccountName": "a\\b"}, None),
    ("ok-big-cost", {"BilledCost": "9999999999999.99", "EffectiveCost": "0"}, None),
    ("ok-huge-exact", {"BilledCost": "12345678901234567890.123456789012345", "EffectiveCost": "-2e13"}, None),
    # Conformance findings about real money: the rows load and are counted as warnings.
    ("ok-no-service", {"ServiceName": ""}, None),
    ("ok-unknown-category", {"ChargeCategory": "Refund", "ServiceCategory": "Cloud"}, None),
    ("ok-charge-before-billing", {"ChargePeriodStart": "2026-10-29T00:00:00Z"}, None),
    ("ok-end-before-start", {"ChargePeriodEnd": "2026-11-04T00:00:00Z"}, None),
    ("ok-after-month", {"ChargePeriodEnd": "2026-12-02T00:00:00Z"}, None),
    ("ok-tags-truncated", {"Tags": '{"application": "app-1"'}, None),
    ("ok-tags-array", {"Tags": '["a", "b"]'}, None),
    ("ok-tags-nul-escape", {"Tags": '{"note": "nul \\u0000 escaped"}'}, None),
    ("ok-tags-lone-surrogate", {"Tags": '{"note": "half \\ud800 a pair"}'}, None),
    ("ok-tags-surrogate-pair", {"Tags": '{"application": "app-\\ud83d\\ude00"}'}, None),
    ("ok-other-currency", {"BillingCurrency": "ISK"}, None),
    # What cannot be stored truthfully.
    ("bad-no-cost", {"BilledCost": ""}, "missing_value:BilledCost"),
    ("bad-null-cost", {"BilledCost": "NULL"}, "missing_value:BilledCost"),
    # First reason wins: a missing value comes before an unknown currency.
    ("bad-two-rules", {"ChargePeriodEnd": "", "BillingCurrency": "XXX"}, "missing_value:ChargePeriodEnd"),
    ("bad-decimal-comma", {"BilledCost": "12,50"}, "invalid_cost"),
    ("bad-effective", {"EffectiveCost": "abc"}, "invalid_cost"),
    ("bad-cost-nan", {"BilledCost": "NaN"}, "invalid_cost"),
    ("bad-quantity", {"ConsumedQuantity": "lots"}, "invalid_quantity"),
    ("bad-ts-format", {"ChargePeriodStart": "05/11/2026"}, "invalid_timestamp:ChargePeriodStart"),
    # Dates that do not exist: PostgreSQL would refuse them and fail the whole COPY.
    ("bad-ts-feb-30", {"BillingPeriodStart": "2026-02-30T00:00:00Z"}, "invalid_timestamp:BillingPeriodStart"),
    ("bad-ts-nov-31", {"ChargePeriodEnd": "2026-11-31T00:00:00Z"}, "invalid_timestamp:ChargePeriodEnd"),
    (
        "bad-ts-offset",
        {"BillingPeriodEnd": "2026-12-01T00:00:00+25:00"},
        "invalid_timestamp:BillingPeriodEnd",
    ),
    ("bad-currency", {"BillingCurrency": "XXX"}, "unknown_currency"),
    ("bad-currency-case", {"BillingCurrency": "eur"}, "unknown_currency"),
    ("bad-billed-next-month", {"BillingPeriodStart": "2026-12-01T00:00:00Z"}, "billing_period_outside_month"),
    ("bad-billed-last-month", {"BillingPeriodStart": "2026-10-31T23:00:00Z"}, "billing_period_outside_month"),
    ("bad-nul", {"ResourceName": "bad\x00name"}, "invalid_character"),
]
EXPECTED_WARNINGS = {
    "ServiceName:null_not_allowed": 1,
    "ChargeCategory:unknown_value": 1,
    "ConsumedQuantity:not_null_unless_usage": 1,  # the "Refund" row
    "ServiceCategory:unknown_value": 1,
    "ChargePeriodStart:outside_billing_period": 1,
    "ChargePeriodEnd:not_after_start": 1,
    "Tags:invalid_json": 4,
}
MISSING_COLUMN_ROWS = 3  # a second file without BillingCurrency

# The columns these cases fill in (the FOCUS columns the loader checks most); files lacking
# the other FOCUS 1.2 mandatory columns load with a conformance warning per missing column.
FOCUS_COLUMNS = (
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "BilledCost", "EffectiveCost", "BillingCurrency", "ServiceName", "ServiceCategory",
    "ProviderName", "RegionId", "ResourceId", "ResourceName", "SubAccountId", "SubAccountName",
    "ConsumedQuantity", "ConsumedUnit", "Tags",
)  # fmt: skip


def _rows() -> list[dict[str, str]]:
    return [{**BASE, **changes, "ResourceId": rid} for rid, changes, _ in CASES]


def _csv_bytes(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _parquet_bytes(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    # Empty cells stay "" (not null): Parquet keeps them apart, the loader must not. A CSV
    # NULL is a real null here, as a Parquet exporter writes it.
    table = pa.table(
        {c: pa.array([None if r[c] == "NULL" else r[c] for r in rows], pa.string()) for c in columns}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _typed_parquet_bytes() -> bytes:
    """Valid rows with native Parquet types (timestamps, doubles), as some exporters write them."""
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            **{c: pa.array([BASE[c]] * 2, pa.string()) for c in FOCUS_COLUMNS},
            "BillingPeriodStart": pa.array([datetime(2026, 11, 1, tzinfo=UTC)] * 2, ts),
            "BillingPeriodEnd": pa.array([datetime(2026, 12, 1, tzinfo=UTC)] * 2, ts),
            # 07:00 in Paris is 06:00 UTC; a naive timestamp is UTC.
            "ChargePeriodStart": pa.array(
                [datetime(2026, 11, 7, 6, tzinfo=UTC)] * 2, pa.timestamp("ms", tz="Europe/Paris")
            ),
            "ChargePeriodEnd": pa.array([datetime(2026, 11, 7, 7)] * 2, pa.timestamp("ns")),
            "BilledCost": pa.array([10.5, 0.125], pa.float64()),
            "EffectiveCost": pa.array([9.25, 0.1], pa.float64()),
            "ConsumedQuantity": pa.array([1.5, None], pa.float64()),
            "ResourceId": pa.array(["typed-1", "typed-2"], pa.string()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _expected_rejects() -> Counter[str]:
    expected = Counter(reason for _, _, reason in CASES if reason)
    expected["missing_column:BillingCurrency"] = MISSING_COLUMN_ROWS
    return expected


@pytest.fixture(scope="module")
def loaded(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The same records as CSV (open), gzip CSV (private), Parquet (public) and typed Parquet (native)."""
    url = create_database(pg_base_url, "focus")
    ensure_schema(url)
    root = tmp_path_factory.mktemp("focus_landing")
    rows = _rows()
    columns = list(FOCUS_COLUMNS)
    no_currency = [c for c in columns if c != "BillingCurrency"]
    extra = [{**BASE, "ResourceId": f"no-currency-{i}"} for i in range(MISSING_COLUMN_ROWS)]
    files = {
        "open": {"a.csv": _csv_bytes(rows, columns), "b.csv": _csv_bytes(extra, no_currency)},
        "private": {
            "a.csv.gz": gzip.compress(_csv_bytes(rows, columns)),
            "b.csv.gz": gzip.compress(_csv_bytes(extra, no_currency)),
        },
        "public": {
            "a.parquet": _parquet_bytes(rows, columns),
            "b.parquet": _parquet_bytes(extra, no_currency),
        },
        "native": {"a.parquet": _typed_parquet_bytes()},
    }
    for domain, named in files.items():
        folder = root / domain / PERIOD
        folder.mkdir(parents=True)
        for name, data in named.items():
            (folder / name).write_bytes(data)
    store = LocalLandingStore(root)
    # Half the rows here break a rule on purpose: the rejected-ratio gate is opened for them.
    policy = GatePolicy(max_rejected_ratio=1.0)
    results = {
        domain: load_period(url, store, domain, PERIOD, f"run-{domain}", policy=policy) for domain in files
    }
    yield {"url": url, "results": results, "root": root}


def _row(url: str, domain: str, resource_id: str) -> dict[str, Any]:
    with_names = query(
        url,
        "SELECT row_to_json(r)::text FROM finops.releves r WHERE domain = %s AND resource_id = %s",
        (domain, resource_id),
    )
    assert len(with_names) == 1, f"{domain}/{resource_id}: {len(with_names)} rows"
    return dict(json.loads(with_names[0][0]))


def test_reference_rules_agree_with_the_cases() -> None:
    # The plain-Python restatement of the rules (used for the demo data) classifies the cases alike.
    for rid, changes, reason in CASES:
        row = {k: (None if v == "NULL" else v) for k, v in {**BASE, **changes}.items()}
        assert reference_reject_reason(row, PERIOD) == reason, rid


@pytest.mark.parametrize("domain", ["open", "private", "public"])
def test_each_rule_is_counted_under_its_reason(loaded: dict[str, Any], domain: str) -> None:
    result: PeriodLoad = loaded["results"][domain]
    assert dict(result.rejected) == dict(_expected_rejects())
    assert result.rows_read == len(CASES) + MISSING_COLUMN_ROWS
    valid = [rid for rid, _, reason in CASES if reason is None]
    assert result.inserted == len(valid)
    assert result.deleted == 0
    assert len(result.files) == 2
    with localcontext(prec=100):  # Python's default 28 digits would round this sum
        rows = [{**BASE, **changes} for _, changes, r in CASES if r is None]
        billed = sum(Decimal(row["BilledCost"]) for row in rows)
        by_currency = {
            c: sum(Decimal(row["BilledCost"]) for row in rows if row["BillingCurrency"] == c)
            for c in {row["BillingCurrency"] for row in rows}
        }
    assert set(by_currency) == {"EUR", "ISK"}  # one sum per currency, never one across them
    assert result.billed_cost == by_currency
    stored = query(
        loaded["url"], "SELECT sum(billed_cost)::text FROM finops.releves WHERE domain = %s", (domain,)
    )
    assert Decimal(stored[0][0]) == billed
    warnings = dict(result.quality.warnings)
    missing = {rule: n for rule, n in warnings.items() if rule.endswith(":mandatory_column_missing")}
    assert {rule: n for rule, n in warnings.items() if rule not in missing} == EXPECTED_WARNINGS
    # The test files carry the demo's 20 columns: FOCUS 1.2 mandatory ones are missing.
    assert missing["ListCost:mandatory_column_missing"] == len(valid)
    loaded_ids = {
        r[0]
        for r in query(loaded["url"], "SELECT resource_id FROM finops.releves WHERE domain = %s", (domain,))
    }
    assert loaded_ids == set(valid)


def test_csv_gzip_and_parquet_load_the_same_rows(loaded: dict[str, Any]) -> None:
    def contents(domain: str) -> list[str]:
        rows = query(
            loaded["url"],
            "SELECT (to_jsonb(r) - 'domain' - 'source_file' - 'source_line' - 'dagster_run_id')::text "
            "FROM finops.releves r WHERE domain = %s ORDER BY resource_id",
            (domain,),
        )
        return [r[0] for r in rows]

    assert contents("open") == contents("private") == contents("public")
    assert len(contents("open")) == sum(1 for *_, reason in CASES if reason is None)
    sources = query(
        loaded["url"], "SELECT DISTINCT domain, source_file FROM finops.releves WHERE domain <> 'native'"
    )
    assert {(d, Path(s).name) for d, s in sources} == {
        ("open", "a.csv"),
        ("private", "a.csv.gz"),
        ("public", "a.parquet"),
    }


def test_loaded_values_are_exact(loaded: dict[str, Any]) -> None:
    url = loaded["url"]
    base = _row(url, "open", "ok-base")
    assert base["period"] == PERIOD and base["domain"] == "open"
    assert base["billed_cost"] == 10.5 and base["effective_cost"] == 9.25
    assert base["charge_period_start"] == "2026-11-05T00:00:00+00:00"
    assert base["billing_period_end"] == "2026-12-01T00:00:00+00:00"
    assert base["tags"] == {"application": "app-0001", "env": "prod"}
    assert base["application"] == "app-0001"
    assert base["dagster_run_id"] == "run-open"
    assert base["source_file"] == str(loaded["root"] / "open" / PERIOD / "a.csv")
    # Numerics keep their exact decimal value as written (no float round trip, no scale cap;
    # binary COPY shows them at their batch's widest scale: compared as values).
    exact = query(
        url,
        "SELECT resource_id, billed_cost, effective_cost, consumed_quantity "
        "FROM finops.releves WHERE domain = 'open' AND resource_id IN "
        "('ok-naive-month-end', 'ok-offset', 'ok-big-cost', 'ok-huge-exact')",
    )
    assert sorted(exact) == [
        ("ok-big-cost", Decimal("9999999999999.99"), Decimal("0"), Decimal("24")),
        ("ok-huge-exact", Decimal("12345678901234567890.123456789012345"), Decimal("-20000000000000"),
         Decimal("24")),
        ("ok-naive-month-end", Decimal("100"), Decimal("-3.5"), Decimal("24")),
        ("ok-offset", Decimal("10.5"), Decimal("9.25"), Decimal("0.000001")),
    ]  # fmt: skip

    empty = _row(url, "private", "ok-empty-optional")
    assert empty["region_id"] is None
    assert empty["consumed_quantity"] is None
    assert empty["sub_account_name"] is None
    assert empty["tags"] is None
    assert empty["application"] == "unassigned"

    nested = _row(url, "public", "ok-nested-tags")
    assert nested["tags"] == {"application": "app-0002", "owner": {"team": "payments", "ids": [1, 2]}}
    assert nested["application"] == "app-0002"
    assert _row(url, "open", "ok-empty-application")["application"] == "unassigned"
    assert _row(url, "public", "ok-tags-surrogate-pair")["application"] == "app-\U0001f600"

    # Application: ordered tag keys, any case; `Project` when there is no application.
    assert _row(url, "open", "ok-project-tag")["application"] == "app-0003"
    assert _row(url, "private", "ok-upper-key")["application"] == "app-0004"
    # Unquoted NULL is null; tags jsonb cannot hold are kept as text in `extra`.
    null_text = _row(url, "open", "ok-null-text")
    assert (null_text["region_id"], null_text["tags"], null_text["sub_account_id"]) == (None, None, None)
    for domain in ("open", "public"):
        truncated = _row(url, domain, "ok-tags-truncated")
        assert truncated["tags"] is None and truncated["application"] == "unassigned"
        assert truncated["extra"] == {"Tags": '{"application": "app-1"'}
    assert _row(url, "open", "ok-other-currency")["billing_currency"] == "ISK"
    fractions = _row(url, "open", "ok-fractions-and-utc")
    assert fractions["charge_period_start"] == "2026-11-12T08:00:00.123456+00:00"
    assert fractions["charge_period_end"] == "2026-11-12T09:00:00+00:00"

    naive = _row(url, "open", "ok-naive-month-end")
    assert naive["charge_period_start"] == "2026-11-30T23:00:00+00:00"
    assert naive["charge_period_end"] == "2026-12-01T00:00:00+00:00"
    assert _row(url, "open", "ok-offset")["charge_period_start"] == "2026-11-10T00:00:00+00:00"
    quoting = _row(url, "private", "ok-quoting")
    assert quoting["resource_name"] == 'serveur "été", ✓\nligne 2'
    assert quoting["sub_account_name"] == "a\\b"


def test_typed_parquet_columns_load_as_their_values(loaded: dict[str, Any]) -> None:
    result: PeriodLoad = loaded["results"]["native"]
    assert (result.rows_read, result.inserted, result.rejected_total) == (2, 2, 0)
    rows = query(
        loaded["url"],
        "SELECT resource_id, charge_period_start, charge_period_end, billed_cost, "
        "effective_cost, consumed_quantity FROM finops.releves WHERE domain = 'native' "
        "ORDER BY resource_id",
    )
    # Exact values (sent as binary COPY numerics, displayed at the batch's widest scale: 10.500).
    assert rows == [
        ("typed-1", datetime(2026, 11, 7, 6, tzinfo=UTC), datetime(2026, 11, 7, 7, tzinfo=UTC),
         Decimal("10.5"), Decimal("9.25"), Decimal("1.5")),
        ("typed-2", datetime(2026, 11, 7, 6, tzinfo=UTC), datetime(2026, 11, 7, 7, tzinfo=UTC),
         Decimal("0.125"), Decimal("0.1"), None),
    ]  # fmt: skip
