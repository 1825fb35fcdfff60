"""Demo FOCUS landing data: a realistic few months of cost records per domain.

`finops demo-data` and `finops dev` write it; tests and benchmarks use the same
generator, so what they load looks like what operators see.
"""

from __future__ import annotations

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
    "demo_applications",
    "generate_focus_table",
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
    }
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
