"""Demo FOCUS data: a realistic few months of cost records per domain.

`finops demo-data` and `finops dev` write landing folders; `finops dev` also writes the
`public` domain as the providers deliver it (an AWS Data Exports export and an Azure Cost
Management export, `write_demo_deliveries`). Tests and benchmarks use the same generator, so
what they load looks like what operators see.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_pipeline.contract import DOMAINS
from finops_pipeline.periods import add_months, default_periods, format_period, month_bounds, parse_period

__all__ = [
    "DEMO_COLUMNS",
    "DEMO_ROWS_PER_MONTH",
    "DemoApplication",
    "DemoExport",
    "demo_applications",
    "generate_focus_table",
    "write_demo_deliveries",
    "write_demo_landing",
]

FAMILIES: Final = (
    "Paiements", "Crédit", "Epargne", "Assurance", "Marchés", "Risques", "Conformité",
    "Données", "Digital", "Poste de travail", "Réseau", "Sécurité", "RH", "Finance",
    "Plateformes",
)  # fmt: skip
# Monthly volumes per domain (cost records), kept small enough for a laptop demo.
DEMO_ROWS_PER_MONTH: Final = {"open": 6000, "private": 3500, "public": 9000, "native": 2000}
_SERVICES: Final = {
    "open": [("OpenStack Compute", "Compute"), ("Ceph Block", "Storage"), ("Octavia LB", "Networking")],
    "private": [("VMware vSphere", "Compute"), ("NetApp ONTAP", "Storage"), ("Oracle DB", "Databases")],
    "public": [
        ("Amazon EC2", "Compute"), ("Amazon S3", "Storage"), ("Amazon RDS", "Databases"),
        ("Azure Virtual Machines", "Compute"), ("Azure Blob Storage", "Storage"),
    ],
    "native": [("Kubernetes Namespace", "Compute"), ("Kafka Topic", "Other"), ("Object Store", "Storage")],
}  # fmt: skip
_PROVIDERS: Final = {
    "open": "OpenStack",
    "private": "Private Cloud",
    "public": "AWS",
    "native": "Cloud Native Platform",
}
_REGIONS: Final = ("eu-west-3", "eu-west-1", "eu-central-1", "paris-1", "marseille-2")
_UNITS: Final = ("Hours", "GB-Month", "Requests", "vCPU-Hours")
# The FOCUS 1.2 columns the demo exports carry (a subset, as many exporters write).
DEMO_COLUMNS: Final = (
    "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "BilledCost", "EffectiveCost", "BillingCurrency", "ServiceName", "ServiceCategory",
    "ProviderName", "RegionId", "ResourceId", "ResourceName", "SubAccountId", "SubAccountName",
    "ConsumedQuantity", "ConsumedUnit", "Tags",
    # The rest of FOCUS 1.2's mandatory columns, so demo files are conformant but for the bad rows.
    "BillingAccountName", "ChargeClass", "ChargeDescription", "ContractedCost", "InvoiceIssuerName",
    "ListCost", "PricingQuantity", "PricingUnit", "PublisherName",
)  # fmt: skip


@dataclass(frozen=True)
class DemoApplication:
    code: str
    family: str
    label: str


def demo_applications(count: int = 300, seed: int = 7) -> list[DemoApplication]:
    rng = np.random.default_rng(seed)
    families = rng.choice(len(FAMILIES), size=count)
    return [
        DemoApplication(f"app-{i:04d}", FAMILIES[int(f)], f"Application {i:04d}")
        for i, f in enumerate(families)
    ]


def generate_focus_table(
    domain: str,
    period: str,
    rows: int,
    *,
    seed: int = 0,
    applications: list[DemoApplication] | None = None,
    reject_fraction: float = 0.004,
) -> pa.Table:
    """`rows` FOCUS 1.2 records of one domain and month, as strings (CSV-shaped).

    About `reject_fraction` of them break a FOCUS rule: half of those cannot be
    stored (bad cost, unknown currency) and are rejected, the other half are
    conformance findings that load (charge period before the billing period,
    missing service name).
    """
    apps = applications or demo_applications()
    rng = np.random.default_rng(seed)
    start, end = month_bounds(period)
    days = (end - start).days
    day = rng.integers(0, days, size=rows)
    charge_start = np.datetime64(start.replace(tzinfo=None), "s") + day.astype("timedelta64[D]")
    charge_end = charge_start + np.timedelta64(1, "D")
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    services = _SERVICES[domain]
    service_index = rng.integers(0, len(services), size=rows)
    # Skewed costs: a few applications cost a lot, as in real bills.
    app_index = np.minimum((rng.pareto(1.2, size=rows) * 20).astype(np.int64), len(apps) - 1)
    billed = np.round(rng.lognormal(mean=2.0, sigma=1.3, size=rows), 4)
    effective = np.round(billed * rng.uniform(0.7, 1.0, size=rows), 4)
    quantity = np.round(rng.uniform(0.5, 720, size=rows), 3)
    accounts = rng.integers(1, 40, size=rows)

    def iso(values: np.ndarray) -> np.ndarray:
        return np.char.add(np.datetime_as_string(values, unit="s"), "Z")

    period_start = start.strftime(fmt)
    period_end = end.strftime(fmt)
    app_codes = np.array([a.code for a in apps])[app_index]
    tags = np.char.add(
        np.char.add('{"application": "', app_codes),
        np.char.add('", "env": "', np.array(["prod", "hprod"])[rng.integers(0, 2, size=rows)]),
    )
    tags = np.char.add(tags, '"}')
    columns: dict[str, Any] = {
        "BillingAccountId": np.full(rows, f"{domain}-billing"),
        "BillingPeriodStart": np.full(rows, period_start),
        "BillingPeriodEnd": np.full(rows, period_end),
        "ChargePeriodStart": iso(charge_start),
        "ChargePeriodEnd": iso(charge_end),
        "ChargeCategory": np.full(rows, "Usage"),
        "BilledCost": billed.astype(str),
        "EffectiveCost": effective.astype(str),
        "BillingCurrency": np.full(rows, "EUR"),
        "ServiceName": np.array([s[0] for s in services])[service_index],
        "ServiceCategory": np.array([s[1] for s in services])[service_index],
        "ProviderName": np.full(rows, _PROVIDERS[domain]),
        "RegionId": np.array(_REGIONS)[rng.integers(0, len(_REGIONS), size=rows)],
        "ResourceId": np.char.add(f"{domain}-res-", rng.integers(0, 50_000, size=rows).astype(str)),
        "ResourceName": np.char.add("resource-", rng.integers(0, 50_000, size=rows).astype(str)),
        "SubAccountId": np.char.add(f"{domain}-acct-", accounts.astype(str)),
        "SubAccountName": np.char.add(f"{domain.title()} account ", accounts.astype(str)),
        "ConsumedQuantity": quantity.astype(str),
        "ConsumedUnit": np.array(_UNITS)[rng.integers(0, len(_UNITS), size=rows)],
        "Tags": tags,
        "BillingAccountName": np.full(rows, f"{_PROVIDERS[domain]} billing account"),
        "ChargeClass": np.full(rows, None),  # null: no row is a correction of an earlier period
        "ChargeDescription": np.char.add(np.array([s[0] for s in services])[service_index], " usage"),
        "ContractedCost": billed.astype(str),
        "InvoiceIssuerName": np.full(rows, _PROVIDERS[domain]),
        "ListCost": np.round(billed * 1.1, 4).astype(str),
        "PricingQuantity": quantity.astype(str),
        "PublisherName": np.full(rows, _PROVIDERS[domain]),
    }
    columns["PricingUnit"] = columns["ConsumedUnit"]
    columns = {k: v.astype(object) for k, v in columns.items()}
    # Evenly spread, a fixed count: even a small demo month stays under the rejected-ratio
    # gate (1%), and tests know how many rows of each kind there are.
    count = int(rows * reject_fraction)
    bad = np.linspace(0, rows - 1, num=count, dtype=np.int64) if count else np.array([], dtype=np.int64)
    for i, row in enumerate(bad):
        kind = i % 4
        if kind == 0:
            columns["BilledCost"][row] = "12,50"  # decimal comma: unparsable
        elif kind == 1:
            columns["BillingCurrency"][row] = "XXX"
        elif kind == 2:
            columns["ChargePeriodStart"][row] = (start - timedelta(days=3)).strftime(fmt)
        else:
            columns["ServiceName"][row] = None
    return pa.table({name: pa.array(columns[name], pa.string()) for name in DEMO_COLUMNS})


def _writer_for(dest: str, s3_client_factory: Callable[[], Any] | None) -> Callable[[str, bytes], str]:
    parsed = urlparse(dest)
    if parsed.scheme == "s3":
        if s3_client_factory is None:
            raise ValueError(f"destination {dest!r} is on S3 but no S3 client is configured")
        client = s3_client_factory()
        bucket, prefix = parsed.netloc, parsed.path.strip("/")

        def put_s3(relative: str, data: bytes) -> str:
            key = f"{prefix}/{relative}" if prefix else relative
            client.put_object(Bucket=bucket, Key=key, Body=data)
            return f"s3://{bucket}/{key}"

        return put_s3
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"destination {dest!r}: unsupported scheme {parsed.scheme!r}")
    root = Path(parsed.path if parsed.scheme == "file" else dest)

    def put_local(relative: str, data: bytes) -> str:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return str(path)

    return put_local


def table_to_csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_demo_landing(
    dest: str,
    *,
    months: int = 6,
    now: datetime | None = None,
    scale: float = 1.0,
    broken: tuple[str, str] | None = None,
    s3_client_factory: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Write `months` months (ending with the current one) for the four domains.

    `broken` = (domain, period) gets an unreadable file, so loading it fails.
    Returns a summary: files written and rows per (domain, period).
    """
    if months < 1 or months > 60:
        raise ValueError(f"months must be between 1 and 60, got {months}")
    now = now or datetime.now(UTC)
    put = _writer_for(dest, s3_client_factory)
    apps = demo_applications()
    current = parse_period(default_periods(now)[0])
    periods = [format_period(add_months(current, -i)) for i in range(months)]
    reference = pa.table(
        {
            "application": [a.code for a in apps],
            "family": [a.family for a in apps],
            "label": [a.label for a in apps],
        }
    )
    files = [put("reference/applications.csv", table_to_csv(reference))]
    rows: dict[str, int] = {}
    for p_index, period in enumerate(periods):
        for d_index, domain in enumerate(DOMAINS):
            count = max(1, int(DEMO_ROWS_PER_MONTH[domain] * scale))
            table = generate_focus_table(
                domain, period, count, seed=p_index * 10 + d_index, applications=apps
            )
            rows[f"{domain}/{period}"] = count
            if broken == (domain, period):
                files.append(put(f"{domain}/{period}/export-000.parquet", b"PAR1 truncated export"))
            elif domain == "native":
                files.append(put(f"{domain}/{period}/export-000.parquet", table_to_parquet(table)))
            else:
                half = count // 2
                files.append(put(f"{domain}/{period}/export-000.csv", table_to_csv(table.slice(0, half))))
                files.append(put(f"{domain}/{period}/export-001.csv", table_to_csv(table.slice(half))))
    manifest = {"periods": periods, "rows": rows, "broken": list(broken) if broken else None}
    files.append(put("manifest.json", json.dumps(manifest, indent=2).encode()))
    return {"files": files, **manifest}


@dataclass(frozen=True)
class DemoExport:
    """One provider export `write_demo_deliveries` wrote: a source of the sources file."""

    name: str
    kind: str
    uri: str
    rows: dict[str, int]  # period -> rows of the delivery that counts (the latest complete one)


# The demo exports' names; a manifest names its files under the export's folder name (AWS:
# `s3://<bucket>/<prefix>/<export>/…`, Azure: `<root folder>/<export>/…`), which is how a
# local mirror finds them (DESIGN.md "Sources").
_AWS_EXPORT: Final = "focus-payer"
_AZURE_EXPORT: Final = "focus-ea"
# Azure's monthly export sends last month again in the first days of the next one.
_AZURE_RESEND_DAY: Final = 3


def _with_provider(table: pa.Table, provider: str, prefix: str) -> pa.Table:
    """Rows of `table` whose service is the provider's, named as that provider names itself."""
    services = table.column("ServiceName").to_pylist()
    keep = [i for i, name in enumerate(services) if name is not None and name.startswith(prefix)]
    picked = table.take(pa.array(keep, pa.int64()))
    for column in ("ProviderName", "PublisherName", "InvoiceIssuerName"):
        index = picked.schema.get_field_index(column)
        picked = picked.set_column(index, column, pa.array([provider] * picked.num_rows, pa.string()))
    return picked


def write_demo_deliveries(
    root: Path, *, months: int = 6, now: datetime | None = None, scale: float = 1.0
) -> list[DemoExport]:
    """The `public` domain's last `months` months as its providers deliver them, under `root`:
    an AWS Data Exports export (`<root>/aws/focus-payer`, gzip CSV, one execution per month)
    and an Azure Cost Management export (`<root>/azure/focus-ea`, CSV) with two runs per
    month, an early month-to-date one and a later full one: the later one is the delivery.
    Each file is written before its manifest, as the providers do."""
    from finops_pipeline.sources.exports import open_sink, write_aws_export, write_azure_run

    if months < 1 or months > 60:
        raise ValueError(f"months must be between 1 and 60, got {months}")
    now = now or datetime.now(UTC)
    apps = demo_applications()
    current = parse_period(default_periods(now)[0])
    periods = [format_period(add_months(current, -i)) for i in range(months)]
    aws_uri, azure_uri = str(root / "aws" / _AWS_EXPORT), str(root / "azure" / _AZURE_EXPORT)
    aws_sink, azure_sink = open_sink(aws_uri), open_sink(azure_uri)
    aws_rows: dict[str, int] = {}
    azure_rows: dict[str, int] = {}
    public = DOMAINS.index("public")
    for p_index, period in enumerate(periods):
        count = max(2, int(DEMO_ROWS_PER_MONTH["public"] * scale))
        # Seeds apart from the landing's (p_index * 10 + domain): different rows, same shape.
        table = generate_focus_table(
            "public", period, count, seed=1000 + p_index * 10 + public, applications=apps
        )
        aws = _with_provider(table, "AWS", "Amazon ")
        azure = _with_provider(table, "Microsoft", "Azure ")
        half = aws.num_rows // 2
        write_aws_export(
            aws_sink,
            export_uri=f"s3://finops-demo-billing/cur/{_AWS_EXPORT}",
            period=period,
            execution_id=f"{period}-demo",
            files=[
                ("part-1.csv.gz", gzip.compress(table_to_csv(aws.slice(0, half)), mtime=0)),
                ("part-2.csv.gz", gzip.compress(table_to_csv(aws.slice(half)), mtime=0)),
            ],
        )
        aws_rows[period] = aws.num_rows
        end = month_bounds(period)[1]
        resend = min(end.replace(day=_AZURE_RESEND_DAY, hour=6), now - timedelta(hours=1))
        # The early run: month to date, the charges of the first half of the month only.
        early = azure.filter(
            pa.array([s < f"{period}-15" for s in azure.column("ChargePeriodStart").to_pylist()])
        )
        for submitted, rows in ((resend - timedelta(days=2), early), (resend, azure)):
            write_azure_run(
                azure_sink,
                blob_prefix=f"costexports/{_AZURE_EXPORT}",
                period=period,
                submitted=submitted,
                rows=rows.num_rows,
                export_name=_AZURE_EXPORT,
                files=[("part.csv", table_to_csv(rows))],
            )
        azure_rows[period] = azure.num_rows
    return [
        DemoExport("aws-payer", "aws-data-exports", aws_uri, aws_rows),
        DemoExport("azure-ea", "azure-cost-exports", azure_uri, azure_rows),
    ]
