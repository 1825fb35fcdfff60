"""Each provider's deliveries, found by `scan_source` on a local folder and on a real server of
each storage API (moto S3, Azurite, fake-gcs-server), from the FinOps Foundation's FOCUS
sample rows of that provider; the files are read back through `open_delivery_file` and their
BilledCost summed exactly."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_pipeline.sources.config import Source
from finops_pipeline.sources.exports import (
    write_aws_export,
    write_azure_run,
    write_gcp_run,
    write_oci_reports,
)
from finops_pipeline.sources.model import Delivery
from finops_pipeline.sources.scan import (
    SourceUnreachable,
    open_delivery_file,
    resolve_named,
    scan_source,
    stat_delivery_file,
)
from tests.pipeline.sources.conftest import Backend
from tests.support import focus_samples_dir

LATER = timedelta(hours=2)


def sample(provider: str) -> tuple[list[str], list[dict[str, str]]]:
    with (focus_samples_dir() / "focus_sample.csv").open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r["ProviderName"] == provider]
        return list(reader.fieldnames or []), rows


def csv_bytes(header: list[str], rows: list[dict[str, str]], gz: bool) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = out.getvalue().encode()
    return gzip.compress(data, mtime=0) if gz else data


def billed(rows: list[dict[str, str]], period: str | None = None) -> Decimal:
    return sum(
        (Decimal(r["BilledCost"]) for r in rows if period is None or r["BillingPeriodStart"][:7] == period),
        Decimal(0),
    )


def read_billed(source: Source, delivery: Delivery, period: str | None = None) -> tuple[int, Decimal]:
    """Rows and exact BilledCost of the delivery's files, streamed from the source's storage."""
    count, total = 0, Decimal(0)
    for file in delivery.files:
        with open_delivery_file(source, file) as handle:
            if file.relative.endswith(".parquet"):
                rows: Any = pq.read_table(handle).to_pylist()
            else:
                raw = gzip.GzipFile(fileobj=handle) if file.relative.endswith(".gz") else handle
                with io.TextIOWrapper(raw, encoding="utf-8") as text:  # type: ignore[arg-type]
                    rows = list(csv.DictReader(text))
            for row in rows:
                if period is None or str(row["BillingPeriodStart"])[:7] == period:
                    count += 1
                    total += Decimal(str(row["BilledCost"]))
    return count, total


def now() -> datetime:
    return datetime.now(UTC) + LATER


# --- AWS Data Exports ------------------------------------------------------------------------


def test_aws_create_new_two_executions_take_the_latest_manifest_files_only(backend: Backend) -> None:
    source, sink = backend.source("aws-data-exports", "payer")
    header, rows = sample("AWS")
    half = len(rows) // 2
    # The first execution: two files; the second (later) one restates the month in one file.
    write_aws_export(
        sink,
        export_uri="s3://billing-exports/cur/payer",
        period="2024-09",
        mode="create-new",
        execution_id="20241003T0600Z-0001",
        files=[
            ("a.csv.gz", csv_bytes(header, rows[:half], True)),
            ("b.csv.gz", csv_bytes(header, rows[half:], True)),
        ],
    )
    write_aws_export(
        sink,
        export_uri="s3://billing-exports/cur/payer",
        period="2024-09",
        mode="create-new",
        execution_id="20241004T0600Z-0002",
        files=[("all.csv.gz", csv_bytes(header, rows, True))],
    )
    scan = scan_source(source, now=now())
    delivery = scan.deliveries["2024-09"]
    assert [f.relative for f in delivery.files] == [
        "data/BILLING_PERIOD=2024-09/20241004T0600Z-0002/payer-00001.csv.gz"
    ]
    assert delivery.manifest == "metadata/BILLING_PERIOD=2024-09/20241004T0600Z-0002/payer-Manifest.json"
    # The mirror rule: the manifest names s3://billing-exports/cur/payer/…, read under the source's uri.
    assert delivery.files[0].uri == f"{source.uri}/{delivery.files[0].relative}"
    assert read_billed(source, delivery) == (942, billed(rows))
    assert scan.incomplete == []


def test_aws_overwrite_restatement_is_a_new_delivery(backend: Backend) -> None:
    source, sink = backend.source("aws-data-exports", "payer")
    header, rows = sample("AWS")
    write_aws_export(
        sink,
        export_uri="s3://x/cur/payer",
        period="2024-09",
        files=[("p.csv.gz", csv_bytes(header, rows[:100], True))],
    )
    first = scan_source(source, now=now()).deliveries["2024-09"]
    write_aws_export(
        sink,
        export_uri="s3://x/cur/payer",
        period="2024-09",
        files=[("p.csv.gz", csv_bytes(header, rows, True))],
    )
    second = scan_source(source, now=now()).deliveries["2024-09"]
    assert first.delivery_id != second.delivery_id
    assert read_billed(source, second) == (942, billed(rows))


def test_aws_data_without_manifest_is_incomplete(backend: Backend) -> None:
    source, sink = backend.source("aws-data-exports", "payer")
    header, rows = sample("AWS")
    sink.put("data/billing_period=2024-09/payer-00001.csv.gz", csv_bytes(header, rows, True))
    scan = scan_source(source, now=now())
    assert scan.deliveries == {}
    assert [(i.period, i.files) for i in scan.incomplete] == [("2024-09", 1)]
    assert "no manifest" in scan.incomplete[0].reason


def test_aws_manifest_naming_a_missing_file_still_delivers_and_stat_says_missing(backend: Backend) -> None:
    source, sink = backend.source("aws-data-exports", "payer")
    header, rows = sample("AWS")
    content = csv_bytes(header, rows, True)
    sink.put("data/BILLING_PERIOD=2024-09/payer-00001.csv.gz", content)
    manifest = {
        "executionId": "e1",
        "exportArn": "arn:aws:bcm-data-exports:us-east-1:123456789012:export/payer",
        "columns": [],
        "dataFiles": [
            "s3://other-bucket/cur/payer/data/BILLING_PERIOD=2024-09/payer-00001.csv.gz",
            "s3://other-bucket/cur/payer/data/BILLING_PERIOD=2024-09/payer-00002.csv.gz",
        ],
        "additionalOutputFiles": [],
    }
    sink.put("metadata/BILLING_PERIOD=2024-09/payer-Manifest.json", json.dumps(manifest).encode())
    delivery = scan_source(source, now=now()).deliveries["2024-09"]
    present, missing = delivery.files
    assert stat_delivery_file(source, present) == len(content) == present.size
    assert stat_delivery_file(source, missing) is None


# --- Azure Cost Management exports ------------------------------------------------------------


def test_azure_month_with_three_runs_latest_non_empty_wins(backend: Backend) -> None:
    source, sink = backend.source("azure-cost-exports", "ea")
    header, rows = sample("Microsoft")
    day = datetime(2024, 9, 3, 6, 12, 44, 123456, tzinfo=UTC)
    write_azure_run(
        sink,
        blob_prefix="focus/ea",
        period="2024-09",
        submitted=day,
        files=[("p.csv", csv_bytes(header, rows[:10], False))],
    )
    winner = write_azure_run(
        sink,
        blob_prefix="focus/ea",
        period="2024-09",
        submitted=day + timedelta(days=1),
        files=[("p.csv", csv_bytes(header, rows, False))],
    )
    # A later run with no blobs (nothing to export yet) is ignored.
    write_azure_run(
        sink, blob_prefix="focus/ea", period="2024-09", submitted=day + timedelta(days=2), files=[]
    )
    scan = scan_source(source, now=now())
    delivery = scan.deliveries["2024-09"]
    assert delivery.manifest == f"{winner}/manifest.json"
    assert [f.relative for f in delivery.files] == [f"{winner}/part_0_0001.csv"]
    assert [stat_delivery_file(source, f) for f in delivery.files] == [f.size for f in delivery.files]
    assert read_billed(source, delivery) == (51, billed(rows))


def test_azure_run_folder_without_manifest_is_in_progress(backend: Backend) -> None:
    source, sink = backend.source("azure-cost-exports", "ea")
    header, rows = sample("Microsoft")
    write_azure_run(
        sink,
        blob_prefix="focus/ea",
        period="2024-09",
        submitted=datetime(2024, 9, 3, tzinfo=UTC),
        files=[("p.csv", csv_bytes(header, rows, False))],
        with_manifest=False,
    )
    scan = scan_source(source, now=now())
    assert scan.deliveries == {}
    assert [(i.period, i.files) for i in scan.incomplete] == [("2024-09", 1)]


# --- OCI FOCUS reports ------------------------------------------------------------------------


def test_oci_file_spanning_two_months_is_in_both_deliveries(backend: Backend) -> None:
    source, sink = backend.source("oci-focus-reports", "reports")
    header, rows = sample("Oracle")
    # The day after the month's end: it holds September's late rows and one billed in October.
    (written,) = write_oci_reports(sink, [(date(2024, 10, 1), csv_bytes(header, rows, True))])
    scan = scan_source(source, now=now())
    assert sorted(scan.deliveries) == ["2024-09", "2024-10"]
    for period, expected in (("2024-09", 6), ("2024-10", 1)):
        delivery = scan.deliveries[period]
        assert [f.relative for f in delivery.files] == [written]
        assert delivery.manifest is None
        assert read_billed(source, delivery, period) == (expected, billed(rows, period))
    assert billed(rows, "2024-09") + billed(rows, "2024-10") == billed(rows)


def test_oci_file_still_settling_is_incomplete(backend: Backend) -> None:
    source, sink = backend.source("oci-focus-reports", "reports")
    header, rows = sample("Oracle")
    write_oci_reports(sink, [(date(2024, 9, 15), csv_bytes(header, rows, True))])
    scan = scan_source(source, now=datetime.now(UTC), settle_seconds=3600)
    assert scan.deliveries == {}
    assert [(i.period, i.files) for i in scan.incomplete] == [("2024-09", 1)]


# --- GCP FOCUS export -------------------------------------------------------------------------


def parquet_bytes(header: list[str], rows: list[dict[str, str]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([(h, pa.string()) for h in header])), out)
    return out.getvalue()


def test_gcp_newest_run_with_marker_wins(backend: Backend) -> None:
    source, sink = backend.source("gcp-focus-export", "focus")
    header, rows = sample("AWS")  # The sample has no Google rows: AWS's rows stand in.
    done = write_gcp_run(
        sink,
        period="2024-09",
        files=[parquet_bytes(header, rows)],
        run_time=datetime(2024, 10, 2, 6, tzinfo=UTC),
        rows=942,
    )
    # A newer run still writing (no marker yet) does not replace the complete one.
    write_gcp_run(
        sink,
        period="2024-09",
        files=[parquet_bytes(header, rows[:5])],
        run_time=datetime(2024, 10, 3, 6, tzinfo=UTC),
        with_marker=False,
    )
    write_gcp_run(
        sink,
        period="2024-10",
        files=[parquet_bytes(header, rows[:5])],
        run_time=datetime(2024, 10, 3, 6, tzinfo=UTC),
        with_marker=False,
    )
    scan = scan_source(source, now=now())
    assert sorted(scan.deliveries) == ["2024-09"]
    delivery = scan.deliveries["2024-09"]
    assert [f.relative for f in delivery.files] == [f"{done}/part-000000000000.parquet"]
    assert read_billed(source, delivery) == (942, billed(rows))
    assert [(i.period, i.files) for i in scan.incomplete] == [("2024-10", 1)]


# --- landing, shared rules --------------------------------------------------------------------


def test_landing_month_folders(backend: Backend) -> None:
    source, sink = backend.source("landing", "public")
    header, rows = sample("Microsoft")
    sink.put("2024-09/a.csv", csv_bytes(header, rows, False))
    sink.put("2024-09/_SUCCESS", b"")
    sink.put("2024-09/old/ignored.csv", b"x")
    scan = scan_source(source, now=now(), since_period="2024-01")
    delivery = scan.deliveries["2024-09"]
    assert [f.relative for f in delivery.files] == ["2024-09/a.csv"]
    assert read_billed(source, delivery) == (51, billed(rows))
    assert scan_source(source, now=now(), since_period="2024-10").deliveries == {}


def test_unreachable_storage_is_reported_not_raised_raw(backend: Backend) -> None:
    source, _ = backend.source("landing", "public")
    missing = source.uri.replace("/public", "/nothing-here") if backend.name == "local" else source.uri
    if backend.name != "local":
        scheme, rest = source.uri.split("://", 1)
        missing = f"{scheme}://no-such-bucket-{backend.name}/{rest.split('/', 1)[1]}"
    broken = Source(source.name, source.domain, source.kind, missing, source.storage)
    if backend.name == "local":
        with pytest.raises(SourceUnreachable, match="does not exist"):
            scan_source(broken, now=now())
    else:
        with pytest.raises(SourceUnreachable, match="cannot list"):
            scan_source(broken, now=now())


def test_resolve_named_is_the_mirror_rule() -> None:
    source = Source("payer", "public", "aws-data-exports", "/mirror/payer")
    assert resolve_named(source, "s3://bucket/cur/payer/data/x.parquet") == "data/x.parquet"
    assert resolve_named(source, "focus/payer/2024/x.csv") == "2024/x.csv"
    assert resolve_named(source, "s3://bucket/cur/other/data/x.parquet") is None
