"""COPY encoding: binary where every value has an exact binary form, CSV otherwise; values exact."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from finops_pipeline.landing.focus import validate_file
from finops_pipeline.landing.store import LocalLandingStore
from finops_pipeline.money import EXACT, add_exact, decimal_sum
from finops_pipeline.warehouse.copy_stream import CopyEncoder, binary_form
from finops_pipeline.warehouse.loads import load_period
from tests.support import query

PERIOD = "2026-11"
DOMAIN = "open"
HEADER = [
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "BilledCost", "EffectiveCost", "ListUnitPrice", "BillingCurrency", "ServiceName",
    "ResourceId", "ResourceName", "Tags", "x_Note",
]  # fmt: skip


def _random_decimal(rng: random.Random, max_fraction: int) -> str:
    whole = str(rng.randint(0, 10 ** rng.randint(0, 12)))
    fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, max_fraction)))
    sign = "-" if rng.random() < 0.3 else ""
    return sign + whole + ("." + fraction if fraction else "")


def _rows(prefix: str, count: int, rng: random.Random, max_fraction: int) -> list[dict[str, str]]:
    # Values whose base-10000 groups are easy to get wrong: zero groups after the point,
    # exact group boundaries, many significant digits, negative zero fractions.
    tricky = [
        "1.00000001", "0.00000006538030", "-0.00000001", "10000", "100000000", "0.0001",
        "0", "-0.0", "9999.9999", "1234567890123456789.0123",
    ]  # fmt: skip
    rows = []
    for index in range(count):
        cost = tricky[index] if index < len(tricky) else _random_decimal(rng, max_fraction)
        rows.append(
            {
                "BillingAccountId": "acct",
                "BillingPeriodStart": "2026-11-01T00:00:00Z",
                "BillingPeriodEnd": "2026-12-01T00:00:00Z",
                "ChargePeriodStart": f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:00:00.{index:06d}Z",
                "ChargePeriodEnd": f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:59:59Z",
                "ChargeCategory": "Usage",
                "BilledCost": cost,
                "EffectiveCost": _random_decimal(rng, max_fraction),
                "ListUnitPrice": "" if index % 3 == 0 else _random_decimal(rng, 4),
                "BillingCurrency": "EUR",
                "ServiceName": "Compute",
                "ResourceId": f"{prefix}-{index}",
                "ResourceName": 'serveur "été", ✓\nligne 2' if index % 5 == 0 else f"vm {index}",
                "Tags": json.dumps({"application": f"app-{index % 7}", "note": 'a\\b "q"'}),
                "x_Note": f"note {index}",
            }
        )
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)


def test_binary_and_csv_statements_store_every_value_exactly(warehouse_url: str, tmp_path: Path) -> None:
    rng = random.Random(7)
    folder = tmp_path / DOMAIN / PERIOD
    files = {
        "a.csv": _rows("a", 400, rng, max_fraction=4),
        # 42 digits have no decimal128 form: this file's batch goes as CSV.
        "b.csv": [
            *_rows("b", 50, rng, max_fraction=6),
            {**_rows("b-long", 1, rng, 2)[0], "BilledCost": "12345678901234567890123456789.123456789012"},
        ],
        "c.csv": [
            *_rows("c", 400, rng, max_fraction=18),
            {**_rows("c-exp", 1, rng, 2)[0], "BilledCost": "1.5E+2", "EffectiveCost": "-2.50e-3"},
        ],
    }
    for name, rows in files.items():
        _write(folder / name, rows)

    # The encoder's plan for these three files: binary, CSV, binary at another scale.
    encoder = CopyEncoder()
    chunks = []
    for name in sorted(files):
        with (folder / name).open("rb") as handle:
            for checked in validate_file(handle, name, DOMAIN, PERIOD, "run-1"):
                assert checked.valid is not None
                chunks += list(encoder.encode(checked.valid))
    chunks += list(encoder.finish())
    plan = sorted({(c.statement, c.binary) for c in chunks})
    assert plan == [(1, True), (2, False), (3, True)]

    result = load_period(warehouse_url, LocalLandingStore(tmp_path), DOMAIN, PERIOD, "run-1")
    expected = {r["ResourceId"]: r for rows in files.values() for r in rows}
    assert result.inserted == len(expected) == 852
    stored = query(
        warehouse_url,
        "SELECT resource_id, billed_cost, effective_cost, list_unit_price, charge_period_start, "
        "resource_name, tags, extra, period, source_line FROM finops.releves",
    )
    assert len(stored) == len(expected)
    for resource, billed, effective, list_price, start, name, tags, extra, period, line in stored:
        source = expected[resource]
        assert billed == Decimal(source["BilledCost"]), resource
        assert effective == Decimal(source["EffectiveCost"]), resource
        assert list_price == (Decimal(source["ListUnitPrice"]) if source["ListUnitPrice"] else None)
        assert start == datetime.fromisoformat(source["ChargePeriodStart"]).astimezone(UTC)
        assert name == source["ResourceName"]
        assert tags == json.loads(source["Tags"])
        assert extra == {"x_Note": source["x_Note"]}
        assert period == PERIOD and line >= 2
    exact = add_exact(*(Decimal(r["BilledCost"]) for r in expected.values()))  # not Python's 28 digits
    assert result.billed_cost == {"EUR": exact}
    assert query(warehouse_url, "SELECT sum(billed_cost) FROM finops.releves") == [(exact,)]


def test_a_decimal_without_a_decimal128_form_sends_the_batch_as_csv() -> None:
    def batch(*costs: str | None) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([pa.array(list(costs), pa.string())], names=["billed_cost"])

    typed = binary_form(batch("1.5", "-0.125", None))
    assert typed is not None and typed.column(0).type == pa.decimal128(38, 3)
    assert typed.column(0).to_pylist() == [Decimal("1.500"), Decimal("-0.125"), None]
    assert binary_form(batch(None, None)) is not None
    for cost in ("1e-5", "12345678901234567890123456789.123456789012", " 1.5", "0." + "1" * 39):
        assert binary_form(batch("1.5", cost)) is None, cost


def test_decimal_sum_is_exact_past_arrow_decimal_widths() -> None:
    # Arrow wraps around silently past decimal256's 76 digits, in its string parser (a value
    # with exactly 38 fraction digits) and in its sum: neither may reach the run's figure.
    values = ["1" * 40 + "." + "1" * 38, "0." + "9" * 40, "-5", "1.5E+2", None]
    expected = add_exact(*(Decimal(v) for v in values if v is not None))
    assert decimal_sum(pa.array(values, pa.string())) == expected
    many = "9" * 38 + ".5"
    assert decimal_sum(pa.array([many] * 200_000, pa.string())) == EXACT.multiply(Decimal(many), 200_000)
