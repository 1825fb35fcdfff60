"""Money from a multi-currency month to the API: exact, per currency, decimal strings, never summed.

Real runs of `finops_batch` load USD and EUR rows (amounts with 14 to 17 decimals, a EUR month
of 1.49 M with cents, rows without an application in both currencies) into a real warehouse;
the admin API answers from its read model. Every figure is compared with an independent
`Decimal` sum of the source rows, per currency.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from finops_admin_plugin.api.runs import csv_columns
from finops_admin_plugin.app import create_app
from finops_admin_plugin.readmodel import reindex
from finops_admin_plugin.readmodel.anomalies import MIN_HISTORY, MIN_SIGMA
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.contract import load_step_key
from finops_pipeline.demo_data import generate_focus_table, table_to_csv
from tests.support import create_database, make_instance, metadata_values, run_batch, run_events

BASE = "/finops/admin"
PERIOD = "2026-10"
DOMAINS = ["open", "private"]

Row = tuple[str, str, bool]  # currency, BilledCost as written, has an application


def _open_rows(eur_factor: int = 1) -> list[Row]:
    usd: list[Row] = [("USD", "1361.73337406487786", True)]
    usd += [("USD", f"{i}.{(i * 7_919_113) % 10**14:014d}{i % 10}", i % 5 != 0) for i in range(1, 40)]
    # 1.49 M in EUR with cents: 29 rows of 51 379.31 and the rest, to the cent.
    eur = [Decimal("51379.31")] * 29 + [Decimal("0.01"), Decimal("100.00")]
    eur_rows: list[Row] = [("EUR", str(v * eur_factor), i % 7 != 0) for i, v in enumerate(eur)]
    return usd + eur_rows


def _private_rows() -> list[Row]:
    return [("EUR", f"{i}.{i:02d}", i % 3 != 0) for i in range(1, 21)]


def _write_month(root: Path, domain: str, rows: list[Row]) -> None:
    table = generate_focus_table(domain, PERIOD, len(rows), seed=5, reject_fraction=0)
    currency, billed, tagged = zip(*rows, strict=True)
    tags = [t if keep else None for t, keep in zip(table["Tags"].to_pylist(), tagged, strict=True)]
    for name, values in (("BillingCurrency", currency), ("BilledCost", billed), ("Tags", tags)):
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values, pa.string()))
    folder = root / domain / PERIOD
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export-000.csv").write_bytes(table_to_csv(table))


def _by_currency(rows: list[Row], *, unassigned: bool = False) -> dict[str, Decimal]:
    """The oracle: plain Decimal sums of the source rows per currency (enough digits for any sum)."""
    totals: dict[str, Decimal] = {}
    with localcontext(prec=200):
        for currency, amount, tagged in rows:
            if unassigned and tagged:
                continue
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(amount)
    return totals


def _money(totals: dict[str, Decimal]) -> list[dict[str, str]]:
    """The API's shape of an oracle: largest first, ties by code, exact digits as text."""
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [{"currency": c, "amount": format(a, "f")} for c, a in ordered]


def _add(*totals: dict[str, Decimal]) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    with localcontext(prec=200):
        for item in totals:
            for currency, amount in item.items():
                result[currency] = result.get(currency, Decimal(0)) + amount
    return result


@dataclass
class World:
    instance: DagsterInstance
    client: TestClient
    runs: list[str]  # oldest first; the last one's open EUR rows cost three times as much
    rows: dict[str, list[Row]]  # of the first runs


@pytest.fixture(scope="module")
def world(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from finops_pipeline.warehouse.schema import ensure_schema

    tmp = tmp_path_factory.mktemp("money")
    warehouse_url = create_database(pg_base_url, "wh")
    ensure_schema(warehouse_url)
    landing = tmp / "landing"
    rows = {"open": _open_rows(), "private": _private_rows()}
    for domain, domain_rows in rows.items():
        _write_month(landing, domain, domain_rows)
    instance = make_instance(pg_base_url, tmp / "dagster_home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
        monkeypatch.setenv("FINOPS_LANDING_URI", str(landing))
        runs = []
        # MIN_HISTORY comparable runs, then the one scored against them.
        for attempt in range(MIN_HISTORY + 1):
            if attempt == MIN_HISTORY:  # EUR triples, USD stays as it was
                _write_month(landing, "open", _open_rows(eur_factor=3))
            result = run_batch(instance, periods=[PERIOD], domains=DOMAINS)
            assert result.success
            runs.append(result.run_id)
    settings = AdminSettings(
        FINOPS_DATABASE_URL=create_database(pg_base_url, "admin"), FINOPS_AUTH_MODE="dev"
    )
    reindex(settings, instance)
    app = create_app(settings, dagster_instance=instance, projector_interval=None)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield World(instance, client, runs, rows)
    finally:
        instance.dispose()


def _load_metadata(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    return {
        e.step_key: metadata_values(e.event_specific_data.metadata)
        for e in run_events(instance, run_id)
        if e.event_type_value == "STEP_OUTPUT" and e.step_key and e.step_key.startswith("load_")
    }


def test_output_metadata_is_exact_per_currency(world: World) -> None:
    metadata = _load_metadata(world.instance, world.runs[0])
    for domain in DOMAINS:
        meta = metadata[load_step_key(domain)]
        expected = {c: format(a, "f") for c, a in _by_currency(world.rows[domain]).items()}
        assert meta["billed_cost"] == expected
        assert meta["periods"][PERIOD]["billed_cost"] == expected
        unassigned = {c: format(a, "f") for c, a in _by_currency(world.rows[domain], unassigned=True).items()}
        assert meta["periods"][PERIOD]["quality"]["unassigned_cost"] == unassigned
    open_meta = metadata[load_step_key("open")]["billed_cost"]
    assert open_meta["EUR"] == "1490100.00" and len(open_meta["USD"].split(".")[1]) == 15


def test_detail_and_list_show_exact_decimal_strings_per_currency(world: World) -> None:
    run_id = world.runs[0]
    response = world.client.get(f"{BASE}/runs/{run_id}")
    assert response.status_code == 200, response.text
    detail = response.json()
    totals = {d: _by_currency(world.rows[d]) for d in DOMAINS}
    blocks = {b["domain"]: b for b in detail["blocks"]}
    for domain in DOMAINS:
        block = blocks[domain]
        assert block["volumes"]["billedCost"] == _money(totals[domain])
        [period] = block["periods"]
        assert period["billedCost"] == _money(totals[domain])
        [quality] = block["quality"]
        assert quality["unassignedCost"] == _money(_by_currency(world.rows[domain], unassigned=True))
    run_total = _money(_add(*totals.values()))
    assert [c["currency"] for c in run_total] == ["EUR", "USD"]  # 1.49 M EUR first
    assert detail["volumes"]["billedCost"] == run_total == detail["aggregates"]["billedCost"]
    # Never a JSON number: every amount is a string in the body as sent.
    for figure in (detail["volumes"]["billedCost"], blocks["open"]["volumes"]["billedCost"]):
        assert all(isinstance(item["amount"], str) for item in figure)
    listed = world.client.get(f"{BASE}/runs", params={"q": run_id}).json()["items"]
    assert [item["volumes"]["billedCost"] for item in listed] == [run_total]


def test_csv_has_one_exact_column_per_currency(world: World) -> None:
    response = world.client.get(f"{BASE}/runs", params={"format": "csv", "sort": "startTime"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == csv_columns(["EUR", "USD"])
    by_id = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert list(by_id) == world.runs
    first = _add(*(_by_currency(world.rows[d]) for d in DOMAINS))
    assert by_id[world.runs[0]]["billedCost EUR"] == format(first["EUR"], "f")
    assert by_id[world.runs[0]]["billedCost USD"] == format(first["USD"], "f")
    last = _add(_by_currency(_open_rows(eur_factor=3)), _by_currency(world.rows["private"]))
    assert by_id[world.runs[-1]]["billedCost EUR"] == format(last["EUR"], "f")


def test_cost_anomalies_are_scored_per_currency(world: World) -> None:
    last = world.client.get(f"{BASE}/runs/{world.runs[-1]}").json()
    cost = [a for a in last["anomalies"] if a["metric"] == "billedCost"]
    # EUR tripled in open (and so in the run); USD did not move; private did not change.
    assert {(a["scope"], a["value"][0]["currency"]) for a in cost} == {("run", "EUR"), ("open", "EUR")}
    open_eur = next(a for a in cost if a["scope"] == "open")
    eur = _by_currency(world.rows["open"])["EUR"]
    assert open_eur["value"] == [{"currency": "EUR", "amount": format(eur * 3, "f")}]
    assert open_eur["baseline"] == [{"currency": "EUR", "amount": format(eur, "f")}]
    # Identical history: MAD 0, so the spread is MIN_SIGMA on the log scale (floor: one unit).
    expected = (math.log(float(eur * 3) + 1) - math.log(float(eur) + 1)) / MIN_SIGMA
    assert open_eur["method"] == "robust_log_z" and open_eur["score"] == pytest.approx(expected, abs=1e-3)
    assert open_eur["comparedRuns"] == MIN_HISTORY and open_eur["comparedRunIds"][0] == world.runs[-2]
    for earlier in world.runs[:-1]:
        summary = world.client.get(f"{BASE}/runs", params={"q": earlier}).json()["items"][0]
        assert not [a for a in summary["anomalies"] if a["metric"] == "billedCost"]


def test_a_run_stored_by_the_older_mapping_is_served_until_re_projected(world: World) -> None:
    from finops_admin_plugin.readmodel import Projector
    from finops_admin_plugin.readmodel.schema import SCHEMA

    run_id = world.runs[0]
    resources = world.client.app.state.finops  # type: ignore[attr-defined]
    expected = world.client.get(f"{BASE}/runs/{run_id}").json()
    # What mapping 2 stored: one float over every currency, in the list item and the detail.
    with resources.store.connection() as conn:
        conn.execute(
            f"UPDATE {SCHEMA}.runs SET mapping_version = 2, billed_cost = '{{}}', "
            "summary = jsonb_set(summary, '{volumes,billedCost}', '1461.7333740648778') WHERE run_id = %s",
            (run_id,),
        )
        conn.execute(
            f"UPDATE {SCHEMA}.run_details SET detail = jsonb_set(jsonb_set(detail, "
            "'{volumes,billedCost}', '1461.7333740648778'), '{blocks,0,volumes,billedCost}', '1361.7') "
            "WHERE run_id = %s",
            (run_id,),
        )
    listed = world.client.get(f"{BASE}/runs", params={"q": run_id}).json()["items"]
    assert [item["volumes"]["billedCost"] for item in listed] == [[]]  # never a guess
    detail = world.client.get(f"{BASE}/runs/{run_id}")  # mapped from Dagster meanwhile
    assert detail.status_code == 200 and detail.json()["blocks"] == [
        {**b, "anomalies": []} for b in expected["blocks"]
    ]
    exported = world.client.get(f"{BASE}/runs", params={"format": "csv", "q": run_id})
    assert exported.status_code == 200
    header = next(csv.reader(io.StringIO(exported.text)))
    assert header == list(csv_columns([]))  # its cost is in no currency the export could show
    Projector(resources.source, resources.store).tick()  # re-projects runs of older mappings
    assert world.client.get(f"{BASE}/runs/{run_id}").json()["volumes"] == expected["volumes"]
    listed = world.client.get(f"{BASE}/runs", params={"q": run_id}).json()["items"]
    assert listed[0]["volumes"]["billedCost"] == expected["volumes"]["billedCost"]
