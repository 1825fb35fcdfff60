"""End to end on the real storage servers: a sources file of the four provider kinds on moto's
S3, Azurite and fake-gcs-server, plus a landing folder, and the delivery sensor alone.

Nothing is launched by hand: each sensor tick's run requests are launched as Dagster's daemon
launches them (one run per run key), as real finops_batch runs. Every complete delivery is
loaded exactly once, each (period, domain) holds exactly the rows of its deliveries' files
(counted and summed per currency here, from the bytes written, by a reader of its own), and
the next tick asks for nothing. The files are the FinOps Foundation's FOCUS sample rows of
each provider, so the test stays small.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from finops_pipeline.contract import (
    DELIVERY_SENSOR_NAME,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    TRIGGER_DELIVERY,
)
from finops_pipeline.demo_data import generate_focus_table, table_to_csv
from finops_pipeline.settings import get_pipeline_settings
from finops_pipeline.sources import load_sources_file, scan_source
from finops_pipeline.sources.exports import (
    write_aws_export,
    write_azure_run,
    write_gcp_run,
    write_oci_reports,
)
from finops_pipeline.sources.storage import open_storage
from tests.pipeline.sources.layouts import write_sources_file
from tests.pipeline.sources.test_scan import csv_bytes, parquet_bytes, sample
from tests.servers import AZURITE_KEY, AzuriteServer, GcsServer
from tests.support import (
    delivery_sensor_tick,
    launch_run_requests,
    query,
    read_landing_frame,
    reference_reject_reason,
)

pytestmark = pytest.mark.timeout(900)

SEP, OCT, AUG = "2024-09", "2024-10", "2024-08"
Totals = dict[tuple[str, str], tuple[int, dict[str, Decimal]]]


class Files:
    """What each (period, domain) should hold, from the files that make its deliveries."""

    def __init__(self) -> None:
        self.frames: dict[tuple[str, str], list[Any]] = defaultdict(list)

    def add(self, domain: str, period: str, data: bytes, name: str) -> None:
        frame = read_landing_frame(data, name)
        if not name.endswith(".parquet"):
            # The sample writes an empty value as the bare text NULL, which CSV readers of FOCUS
            # (the loader's too) take as null.
            frame = frame.where(frame != "NULL", None)
        self.frames[(period, domain)].append(frame)

    def totals(self) -> Totals:
        found: Totals = {}
        for (period, domain), frames in self.frames.items():
            count, billed = 0, defaultdict[str, Decimal](Decimal)
            for frame in frames:
                for row in frame.to_dict("records"):
                    # An OCI file feeds two months: each takes the rows of its own period.
                    if str(row["BillingPeriodStart"])[:7] != period:
                        continue
                    if reference_reject_reason(row, period) is None:
                        count += 1
                        billed[row["BillingCurrency"]] += Decimal(row["BilledCost"])
            found[(period, domain)] = (count, dict(billed))
        return found


def warehouse_totals(url: str) -> Totals:
    found: dict[tuple[str, str], tuple[int, dict[str, Decimal]]] = {}
    rows = query(
        url,
        "SELECT period, domain, billing_currency, count(*), sum(billed_cost) FROM finops.releves "
        "GROUP BY 1, 2, 3",
    )
    for period, domain, currency, count, total in rows:
        before, billed = found.get((period, domain), (0, {}))
        found[(period, domain)] = (before + int(count), {**billed, currency: Decimal(total)})
    return found


def tick_and_launch(instance: DagsterInstance) -> list[str]:
    return launch_run_requests(instance, delivery_sensor_tick(instance), sensor_name=DELIVERY_SENSOR_NAME)


@pytest.fixture
def world(
    s3_endpoint: str,
    azurite: AzuriteServer,
    gcs_server: GcsServer,
    warehouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    """A bucket on each server and a local landing folder, and the sources file naming them;
    the environment of the code location (no FINOPS_LANDING_URI: every domain has sources)."""
    bucket, container, gcs_bucket = (f"e2e-{uuid.uuid4().hex[:10]}" for _ in range(3))
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="t",
        aws_secret_access_key="t",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    azurite.create_container(container)
    gcs_server.create_bucket(gcs_bucket)
    monkeypatch.setenv("E2E_S3_SECRET", "t")
    monkeypatch.setenv("E2E_AZURE_KEY", AZURITE_KEY)
    monkeypatch.setenv("E2E_GCS_KEY", gcs_server.service_account_key())
    s3 = {
        "endpoint_url": s3_endpoint,
        "region": "us-east-1",
        "access_key_id": "t",
        "secret_access_key_env": "E2E_S3_SECRET",
    }
    landing = tmp_path / "landing" / "open"
    landing.mkdir(parents=True)
    entries: list[dict[str, Any]] = [
        {
            "name": "aws-payer",
            "domain": "public",
            "kind": "aws-data-exports",
            "uri": f"s3://{bucket}/cur/payer",
            "storage": s3,
        },
        {
            "name": "azure-ea",
            "domain": "public",
            "kind": "azure-cost-exports",
            "uri": f"az://{container}/focus/ea",
            "storage": azurite.options("E2E_AZURE_KEY"),
        },
        {
            # OCI Object Storage is read through its S3-compatible API.
            "name": "oci-tenancy",
            "domain": "private",
            "kind": "oci-focus-reports",
            "uri": f"s3://{bucket}/oci/tenancy",
            "storage": s3,
        },
        {
            "name": "gcp-billing",
            "domain": "native",
            "kind": "gcp-focus-export",
            "uri": f"gs://{gcs_bucket}/exports/focus",
            "storage": {"service_account_key_env": "E2E_GCS_KEY"},
        },
        {"name": "open-landing", "domain": "open", "kind": "landing", "uri": str(landing)},
    ]
    path = write_sources_file(tmp_path / "sources.yaml", entries)
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.delenv("FINOPS_LANDING_URI", raising=False)
    monkeypatch.setenv("FINOPS_SOURCES", str(path))
    monkeypatch.setenv("FINOPS_DELIVERY_SETTLE_SECONDS", "0")
    get_pipeline_settings.cache_clear()
    sources = {s.name: s for s in load_sources_file(path)}
    sinks = {
        name: open_storage(source.uri, source.storage_options())
        for name, source in sources.items()
        if name != "gcp-billing"
    }
    # fake-gcs-server takes the JSON API's uploads only (docs/adr/0006).
    sinks["gcp-billing"] = gcs_server.sink(gcs_bucket, "exports/focus")  # type: ignore[assignment]
    yield {"database_url": warehouse_url, "sources": sources, "sinks": sinks, "landing": landing}
    get_pipeline_settings.cache_clear()


def test_the_sensor_alone_loads_every_delivery_of_the_four_providers_once(
    world: dict[str, Any], dagster_instance: DagsterInstance
) -> None:
    url, sinks, files = world["database_url"], world["sinks"], Files()

    # AWS on S3, "create new" mode: two executions of September, only the later one counts.
    header, aws = sample("AWS")
    half = len(aws) // 2
    for execution, parts in (
        ("20241002T0600Z-0001", [aws[:half]]),
        ("20241003T0600Z-0002", [aws[:half], aws[half:]]),
    ):
        blobs = [(f"p{i}.csv.gz", csv_bytes(header, rows, True)) for i, rows in enumerate(parts)]
        write_aws_export(
            sinks["aws-payer"],
            export_uri="s3://billing-exports/cur/payer",
            period=SEP,
            mode="create-new",
            execution_id=execution,
            files=blobs,
        )
    for name, data in blobs:
        files.add("public", SEP, data, name)
    # August's data without its manifest: an execution still writing, never loaded.
    sinks["aws-payer"].put(f"data/BILLING_PERIOD={AUG}/payer-00001.csv.gz", csv_bytes(header, aws, True))

    # Azure on Azurite: two month-to-date runs of September, the later one wins.
    header, azure = sample("Microsoft")
    for day, rows in ((3, azure[:20]), (4, azure)):
        data = csv_bytes(header, rows, False)
        write_azure_run(
            sinks["azure-ea"],
            blob_prefix="focus/ea",
            period=SEP,
            submitted=datetime(2024, 10, day, 6, tzinfo=UTC),
            rows=len(rows),
            files=[("part.csv", data)],
        )
    files.add("public", SEP, data, "part.csv")

    # OCI through S3: one daily report holding September's late rows and one of October.
    header, oracle = sample("Oracle")
    report = csv_bytes(header, oracle, True)
    write_oci_reports(sinks["oci-tenancy"], [(date(2024, 10, 1), report)])
    files.add("private", SEP, report, "r.csv.gz")
    files.add("private", OCT, report, "r.csv.gz")

    # GCP on the GCS emulator: the export query's Parquet and its marker (the sample has no
    # Google rows: AWS's stand in, as Google's BigQuery view gives them).
    header, google = sample("AWS")
    parquet = parquet_bytes(header, google)
    write_gcp_run(
        sinks["gcp-billing"],
        period=SEP,
        files=[parquet],
        run_time=datetime(2024, 10, 2, 6, tzinfo=UTC),
        rows=len(google),
    )
    files.add("native", SEP, parquet, "part.parquet")

    # A landing month on a local folder, in euros, so sums are per currency.
    landing = table_to_csv(generate_focus_table("open", OCT, 120, seed=3, reject_fraction=0.0))
    (world["landing"] / OCT).mkdir()
    (world["landing"] / OCT / "export.csv").write_bytes(landing)
    files.add("open", OCT, landing, "export.csv")

    requests = delivery_sensor_tick(dagster_instance)

    assert {(r.tags[TAG_DOMAINS], r.tags[TAG_PERIODS]) for r in requests} == {
        ("public", SEP),
        ("private", f"{OCT},{SEP}"),
        ("native", SEP),
        ("open", OCT),
    }
    assert all(r.tags[TAG_TRIGGER] == TRIGGER_DELIVERY for r in requests)
    assert {r.tags[TAG_REQUESTED_BY] for r in requests if r.tags[TAG_DOMAINS] != "public"} == {
        "source:oci-tenancy",
        "source:gcp-billing",
        "source:open-landing",
    }
    run_ids = launch_run_requests(dagster_instance, requests, sensor_name=DELIVERY_SENSOR_NAME)
    assert len(run_ids) == 4
    runs = [dagster_instance.get_run_by_id(r) for r in run_ids]
    assert [r.status if r else None for r in runs] == [DagsterRunStatus.SUCCESS] * 4

    expected = files.totals()
    # Only the later AWS execution and Azure run count (942 + 51, not 1,413 + 71); the OCI file
    # gives each month its own rows. In Parquet the text NULL is a value, not a null: one AWS
    # row's ConsumedQuantity "NULL" cannot be stored, and both the loader and `Files` reject it.
    assert {pair: count for pair, (count, _) in expected.items()} == {
        (SEP, "public"): 942 + 51,
        (SEP, "private"): 6,
        (OCT, "private"): 1,
        (SEP, "native"): 941,
        (OCT, "open"): 120,
    }
    assert warehouse_totals(url) == expected

    # Every complete delivery, as the sources show it now, loaded exactly once.
    now = datetime.now(UTC)
    latest = {
        (s.name, period, d.delivery_id)
        for s in world["sources"].values()
        for period, d in scan_source(s, now=now, settle_seconds=0).deliveries.items()
    }
    loads = query(url, "SELECT source, period, delivery_id, status, run_id FROM finops_sources.loads")
    assert sorted((s, p, d) for s, p, d, _, _ in loads) == sorted(latest)
    assert {status for *_, status, _ in loads} == {"LOADED"}
    assert {run_id for *_, run_id in loads} == set(run_ids)
    assert (AUG,) not in query(url, "SELECT DISTINCT period FROM finops.releves")

    # The next tick finds everything loaded: it asks for nothing and nothing is launched.
    assert delivery_sensor_tick(dagster_instance) == []
    assert tick_and_launch(dagster_instance) == []
    assert len(query(url, "SELECT 1 FROM finops_sources.loads")) == len(latest)
