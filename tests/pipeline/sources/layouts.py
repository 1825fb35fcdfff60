"""Provider export layouts written into local folders, and what each should load.

Written here from the providers' documented layouts (see the README, section Sources) so the
loading tests do not depend on the scan's own writers: an AWS Data Exports export
(`data/BILLING_PERIOD=…/` + `metadata/BILLING_PERIOD=…/<export>-Manifest.json`), an Azure
Cost Management export run (`<range>/<run time>/<guid>/part_*.csv` + `manifest.json`).
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from finops_pipeline.demo_data import generate_focus_table, table_to_csv
from finops_pipeline.periods import month_bounds


@dataclass
class Expected:
    """What a set of files holds, counted independently of the loader."""

    rows: int = 0
    billed: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        for cost, currency in zip(
            table.column("BilledCost").to_pylist(), table.column("BillingCurrency").to_pylist(), strict=True
        ):
            self.billed[currency] += Decimal(cost)

    def __add__(self, other: Expected) -> Expected:
        total = Expected()
        total.rows = self.rows + other.rows
        for part in (self.billed, other.billed):
            for currency, amount in part.items():
                total.billed[currency] += amount
        return total


def focus_table(domain: str, period: str, rows: int, seed: int) -> pa.Table:
    """FOCUS rows that all load (no deliberate reject), so counts and sums are exact."""
    return generate_focus_table(domain, period, rows, seed=seed, reject_fraction=0.0)


def expected_of(*tables: pa.Table) -> Expected:
    result = Expected()
    for table in tables:
        result.add(table)
    return result


def write_aws_export(
    root: Path, period: str, tables: list[pa.Table], *, execution: str | None = None, missing: int = 0
) -> list[str]:
    """One AWS Data Exports delivery under `root` (the export's folder, named after the export):
    gzip CSV parts and the manifest naming them as `s3://billing/cur/<export>/data/…`. In
    "create new" mode (`execution`), each execution writes its own sub-folder. `missing` leaves
    that many of the listed files unwritten."""
    export = root.name
    sub = f"BILLING_PERIOD={period}" + (f"/{execution}" if execution else "")
    names = []
    for i, table in enumerate(tables):
        relative = f"data/{sub}/{export}-{i:05d}.csv.gz"
        names.append(f"s3://billing/cur/{export}/{relative}")
        if i < len(tables) - missing:
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.compress(table_to_csv(table)))
    manifest = root / "metadata" / sub / f"{export}-Manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "executionId": execution or str(uuid.uuid4()),
                "billingPeriod": {"start": f"{period}-01T00:00:00.000Z"},
                "dataFiles": names,
                "reportName": export,
            }
        )
    )
    return names


def write_azure_run(root: Path, period: str, tables: list[pa.Table], *, submitted: datetime) -> Path:
    """One Azure export run under `root` (the export's root folder): CSV parts and its
    manifest.json naming them as `<container path>/<root name>/…` with their byte counts."""
    start, end = month_bounds(period)
    last = end - timedelta(days=1)
    folder = (
        root
        / f"{start:%Y%m%d}-{last:%Y%m%d}"
        / submitted.astimezone(UTC).strftime("%Y%m%d%H%M")
        / str(uuid.uuid4())
    )
    folder.mkdir(parents=True)
    blobs = []
    for i, table in enumerate(tables):
        path = folder / f"part_0_{i + 1:04d}.csv"
        path.write_bytes(table_to_csv(table))
        blobs.append(
            {
                "blobName": f"focus/{root.name}/{path.relative_to(root).as_posix()}",
                "byteCount": path.stat().st_size,
                "dataRowCount": table.num_rows,
            }
        )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "manifestVersion": "2024-04-01",
                "byteCount": sum(b["byteCount"] for b in blobs),
                "blobCount": len(blobs),
                "dataRowCount": sum(b["dataRowCount"] for b in blobs),
                "exportConfig": {"exportName": root.name, "type": "FocusCost", "dataVersion": "1.0r2"},
                "runInfo": {
                    "executionType": "Scheduled",
                    "submittedTime": submitted.isoformat().replace("+00:00", "Z"),
                    "runId": str(uuid.uuid4()),
                    "startDate": f"{start:%Y-%m-%dT%H:%M:%S}",
                    "endDate": f"{last:%Y-%m-%dT23:59:59}",
                },
                "blobs": blobs,
            }
        )
    )
    return folder


def write_sources_file(path: Path, sources: list[dict[str, Any]]) -> Path:
    lines = ["sources:"]
    for source in sources:
        first = True
        for key, value in source.items():
            lines.append(f"  {'- ' if first else '  '}{key}: {json.dumps(value)}")
            first = False
    path.write_text("\n".join(lines) + "\n")
    return path
