"""Kind `aws-data-exports`: an AWS Data Exports export (FOCUS 1.0 table), the source's uri being
the export's own folder `s3://<bucket>/<prefix>/<export-name>`.

What AWS writes (https://docs.aws.amazon.com/cur/latest/userguide/dataexports-export-delivery.html,
manifest fields: https://docs.aws.amazon.com/cur/latest/userguide/dataexports-manifest.html):

    data/BILLING_PERIOD=YYYY-MM/[<execution folder>/]<export-name>-<n>.csv.gz|.snappy.parquet
    metadata/BILLING_PERIOD=YYYY-MM/[<execution folder>/]<export-name>-Manifest.json

The manifest is written after every data file of the execution; its `dataFiles` lists the
full S3 URIs of exactly the execution's files, and `executionId` names the execution. With
"overwrite" the period has one manifest, replaced at each refresh; with "create new" each
execution has its own folder and manifest. So, per period: the newest manifest wins, its
`dataFiles` are the delivery (nothing else in the folder: files of older executions stay
there), looked up under the source's uri (the mirror rule), and the delivery id comes from
the manifest's path and ETag (a refresh or a restatement writes a new manifest). Data
without any manifest is an execution still being written: incomplete. The partition key is
matched in any case (`billing_period=`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from typing import Any, Final

from finops_pipeline.sources.model import Delivery, DeliveryFile, IncompleteDelivery
from finops_pipeline.sources.scan import ScanContext, is_data_file, oldest, period_of, resolve_named
from finops_pipeline.sources.storage import StorageError, StoredObject

__all__ = ["scan"]

_MANIFEST: Final = re.compile(
    r"^metadata/billing_period=(\d{4})-(0[1-9]|1[0-2])/(?:[^/]+/)?[^/]+-manifest\.json$", re.IGNORECASE
)
_DATA: Final = re.compile(r"^data/billing_period=(\d{4})-(0[1-9]|1[0-2])/", re.IGNORECASE)


def _manifest(ctx: ScanContext, obj: StoredObject) -> dict[str, Any]:
    raw = ctx.storage.read_small(obj.path)
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise StorageError(f"{ctx.storage.uri_of(obj.path)} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("dataFiles"), list):
        raise StorageError(
            f"{ctx.storage.uri_of(obj.path)} has no `dataFiles` list: not an AWS Data Exports manifest"
        )
    return document


def scan(ctx: ScanContext) -> tuple[dict[str, Delivery], list[IncompleteDelivery]]:
    listed = {o.path: o for o in ctx.objects}
    manifests: dict[str, list[StoredObject]] = defaultdict(list)
    data: dict[str, list[StoredObject]] = defaultdict(list)
    for obj in ctx.objects:
        if match := _MANIFEST.match(obj.path):
            manifests[period_of(match.group(1), match.group(2))].append(obj)
        elif (match := _DATA.match(obj.path)) and is_data_file(obj.path):
            data[period_of(match.group(1), match.group(2))].append(obj)
    deliveries: dict[str, Delivery] = {}
    for period, candidates in manifests.items():
        if not ctx.wanted(period):
            continue
        latest = max(candidates, key=lambda o: (o.last_modified, o.path))
        document = _manifest(ctx, latest)
        files: list[DeliveryFile] = []
        for named in document["dataFiles"]:
            relative = resolve_named(ctx.source, str(named))
            if relative is None:
                raise StorageError(
                    f"{ctx.storage.uri_of(latest.path)} names {named}, which is not below a folder named "
                    f"like the source's ({ctx.source.uri.rsplit('/', 1)[-1]!r}): is the source's uri the "
                    "export's own folder?"
                )
            found = listed.get(relative)
            # A named file missing from the listing stays in the delivery (size 0): the load's
            # completeness gate fails the period by name instead of loading a partial month.
            files.append(
                ctx.file(found) if found else DeliveryFile(ctx.storage.uri_of(relative), relative, 0)
            )
        digest = hashlib.sha256(f"{latest.path}\0{latest.etag or latest.last_modified.isoformat()}".encode())
        deliveries[period] = Delivery(
            source=ctx.source.name,
            period=period,
            delivery_id=f"aws:{digest.hexdigest()[:32]}",
            delivered_at=latest.last_modified,
            files=tuple(files),
            manifest=latest.path,
        )
    incomplete = [
        IncompleteDelivery(
            source=ctx.source.name,
            period=period,
            since=oldest(objects),
            files=len(objects),
            reason=(
                f"data files under data/BILLING_PERIOD={period}/ but no manifest under "
                f"metadata/BILLING_PERIOD={period}/: the export is still being written"
            ),
        )
        for period, objects in data.items()
        if period not in manifests
    ]
    return deliveries, incomplete
