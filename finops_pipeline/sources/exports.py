"""Writers of each provider's export layout, for the tests and `finops dev`'s demo.

Given FOCUS files (bytes, as the provider would write them: gzip CSV for AWS and OCI, CSV or
Parquet for Azure, Parquet for Google Cloud), each writer lays them out as the provider
does (see the kind's module for the page each layout comes from) through a `Sink`: a
`Storage` (any uri: local folder, s3://, az://, gs://) or anything with `put`. Data files
are written first and the manifest or marker last, as the providers do, so a reader that
lists in between sees an incomplete delivery, never a partial one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Literal, Protocol

from finops_pipeline.sources.scan import days_in_period
from finops_pipeline.sources.storage import Storage, open_storage

__all__ = [
    "Sink",
    "open_sink",
    "write_aws_export",
    "write_azure_run",
    "write_gcp_run",
    "write_oci_reports",
]


# The demo's account and subscription: documentation values, never a real one.
_DEMO_ARN = "arn:aws:bcm-data-exports:us-east-1:123456789012:export/"
_DEMO_SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000000"


class Sink(Protocol):
    def put(self, relative: str, data: bytes) -> None: ...


def open_sink(uri: str, options: Mapping[str, str] | None = None) -> Storage:
    return open_storage(uri, options)


def _ext(name: str) -> str:
    lower = name.lower()
    for suffix in (".snappy.parquet", ".csv.gz", ".parquet", ".csv"):
        if lower.endswith(suffix):
            return suffix
    raise ValueError(f"{name}: a FOCUS file is .csv, .csv.gz or .parquet")


def write_aws_export(
    sink: Sink,
    *,
    export_uri: str,
    period: str,
    files: Sequence[tuple[str, bytes]],
    mode: Literal["overwrite", "create-new"] = "overwrite",
    execution_id: str | None = None,
    columns: Sequence[tuple[str, str]] = (),
) -> str:
    """An AWS Data Exports execution for `period` under the export's folder; `export_uri` is
    the folder as AWS names it in the manifest (`s3://<bucket>/<prefix>/<export-name>`), which
    may differ from where `sink` writes (a mirror). Returns the manifest's relative path."""
    export_uri = export_uri.rstrip("/")
    export_name = export_uri.rsplit("/", 1)[-1]
    execution_id = execution_id or str(uuid.uuid4())
    # "create new": each execution in its own folder, named by its executionId.
    sub = f"{execution_id}/" if mode == "create-new" else ""
    data_folder = f"data/BILLING_PERIOD={period}/{sub}"
    named = []
    for i, (name, content) in enumerate(files, start=1):
        relative = f"{data_folder}{export_name}-{i:05d}{_ext(name)}"
        sink.put(relative, content)
        named.append(f"{export_uri}/{relative}")
    manifest = {
        "executionId": execution_id,
        "exportArn": f"{_DEMO_ARN}{export_name}-{uuid.uuid5(uuid.NAMESPACE_URL, export_uri)}",
        "columns": [{"name": n, "type": t} for n, t in columns],
        "dataFiles": named,
        "additionalOutputFiles": [],
    }
    relative = f"metadata/BILLING_PERIOD={period}/{sub}{export_name}-Manifest.json"
    sink.put(relative, json.dumps(manifest, indent=2).encode())
    return relative


def write_azure_run(
    sink: Sink,
    *,
    blob_prefix: str,
    period: str,
    files: Sequence[tuple[str, bytes]],
    submitted: datetime,
    rows: int = 0,
    export_name: str = "focus-cost",
    with_manifest: bool = True,
) -> str:
    """One Cost Management export run (month-to-date) for `period`; `blob_prefix` is the
    export's folder inside the container (`<root folder>/<export name>`), as blob names
    carry it. Returns the run folder's path relative to the export's folder."""
    first = date(int(period[:4]), int(period[5:7]), 1)
    last = first.replace(day=days_in_period(period))
    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{blob_prefix}/{period}/{submitted.isoformat()}"))
    folder = f"{first:%Y%m%d}-{last:%Y%m%d}/{submitted:%Y%m%d%H%M}/{run_id}"
    blobs: list[dict[str, object]] = []
    total = 0
    for i, (name, content) in enumerate(files, start=1):
        relative = f"{folder}/part_0_{i:04d}{_ext(name)}"
        sink.put(relative, content)
        blobs.append({"blobName": f"{blob_prefix.strip('/')}/{relative}", "byteCount": len(content)})
        total += len(content)
    if with_manifest:
        fmt = "Parquet" if files and _ext(files[0][0]).endswith("parquet") else "Csv"
        manifest = {
            "manifestVersion": "2024-04-01",
            "byteCount": total,
            "blobCount": len(blobs),
            "dataRowCount": rows,
            "exportConfig": {
                "exportName": export_name,
                "resourceId": f"{_DEMO_SCOPE}/providers/Microsoft.CostManagement/exports/{export_name}",
                "dataVersion": "1.0r2",
                "apiVersion": "2023-07-01-preview",
                "type": "FocusCost",
                "timeFrame": "MonthToDate",
                "granularity": "Daily",
            },
            "deliveryConfig": {
                "partitionData": True,
                "dataOverwriteBehavior": "CreateNewReport",
                "fileFormat": fmt,
                "compressionMode": "None",
                "containerUrl": "https://example.blob.core.windows.net/cost-exports",
                "rootFolderPath": blob_prefix.strip("/").rsplit("/", 1)[0],
            },
            "runInfo": {
                "executionType": "Scheduled",
                "submittedTime": submitted.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
                "runId": run_id,
                "startDate": f"{first:%Y-%m-%d}T00:00:00",
                "endDate": f"{last:%Y-%m-%d}T00:00:00Z",
            },
            "blobs": blobs,
        }
        sink.put(f"{folder}/manifest.json", json.dumps(manifest, indent=2).encode())
    return folder


def write_oci_reports(sink: Sink, reports: Sequence[tuple[date, bytes]]) -> list[str]:
    """OCI FOCUS report files (gzip CSV), each in its day folder `FOCUS Reports/YYYY/MM/DD/`."""
    written = []
    for i, (day, content) in enumerate(reports, start=1):
        relative = f"FOCUS Reports/{day:%Y/%m/%d}/{day:%Y%m%d}{i:06d}-00001.csv.gz"
        sink.put(relative, content)
        written.append(relative)
    return written


def write_gcp_run(
    sink: Sink,
    *,
    period: str,
    files: Sequence[bytes],
    run_time: datetime,
    rows: int = 0,
    with_marker: bool = True,
) -> str:
    """One run of the FOCUS export query for `period`: Parquet parts, then the marker."""
    folder = f"billing_period={period}/run={run_time.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    for i, content in enumerate(files):
        sink.put(f"{folder}/part-{i:012d}.parquet", content)
    if with_marker:
        sink.put(f"{folder}/_SUCCESS-000000000000.csv", f"row_count\n{rows}\n".encode())
    return folder
