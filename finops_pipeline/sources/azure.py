"""Kind `azure-cost-exports`: a Cost Management export (FOCUS cost dataset), the source's uri
being the export's root folder `az://<container>/<root folder>/<export name>`.

What Cost Management writes (https://learn.microsoft.com/azure/cost-management-billing/costs/tutorial-improved-exports,
"File partitioning" and the manifest): one folder per export run,

    <YYYYMMDD-YYYYMMDD>/<run time>/<run guid>/part_<n>_<m>.csv[.gz]|.parquet  + manifest.json

`manifest.json` is written last. Fields read: `blobCount`, `runInfo.submittedTime`,
`runInfo.startDate` (the first day of the month the run covers), `runInfo.runId`, and
`blobs[]` (`blobName`, container-relative, and `byteCount`). Each scheduled run is a
full month-to-date snapshot, so runs are never added up: per month, the run with the latest
`submittedTime` and a non-zero blob count wins (an empty run, e.g. written before the
month's first charges, is ignored), its `blobs` are the delivery's files with the manifest's
sizes (the load checks them), its id comes from the manifest's path and ETag. A run folder
with data files but no manifest is still being written: incomplete.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Final

from finops_pipeline.sources.model import Delivery, DeliveryFile, IncompleteDelivery
from finops_pipeline.sources.scan import ScanContext, is_data_file, oldest, period_of, resolve_named
from finops_pipeline.sources.storage import StorageError, StoredObject

__all__ = ["parse_time", "scan"]

_RANGE: Final = re.compile(r"(?:^|/)(\d{4})(0[1-9]|1[0-2])\d{2}-\d{8}/")
_FRACTION: Final = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime:
    """An ISO time as Cost Management writes it (7 fractional digits, `Z` or no zone: UTC)."""
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip().replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run(ctx: ScanContext, obj: StoredObject) -> dict[str, Any]:
    where = ctx.storage.uri_of(obj.path)
    try:
        document = json.loads(ctx.storage.read_small(obj.path))
        run_info = document["runInfo"]
        period = str(run_info["startDate"])[:7]
        submitted = parse_time(str(run_info["submittedTime"]))
        blobs = document.get("blobs") or []
        if not isinstance(blobs, list):
            raise TypeError("blobs is not a list")
        count = int(document.get("blobCount", len(blobs)))
    except StorageError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(
            f"{where} is not a Cost Management export manifest (runInfo.startDate, runInfo.submittedTime, "
            f"blobs): {exc!r}"
        ) from None
    return {"period": period, "submitted": submitted, "blobs": blobs, "count": count, "obj": obj}


def scan(ctx: ScanContext) -> tuple[dict[str, Delivery], list[IncompleteDelivery]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    run_folders: set[str] = set()
    for obj in ctx.objects:
        if obj.path.rsplit("/", 1)[-1].lower() == "manifest.json":
            folder = obj.path.rsplit("/", 1)[0] if "/" in obj.path else ""
            run_folders.add(folder)
            match = _RANGE.search(obj.path + "/")
            # The folder's date range bounds the month; skip manifests of unwanted months unread.
            if match and not ctx.wanted(period_of(match.group(1), match.group(2))):
                continue
            run = _run(ctx, obj)
            runs[run["period"]].append(run)
    deliveries: dict[str, Delivery] = {}
    for period, candidates in runs.items():
        full = [r for r in candidates if r["count"] > 0 and r["blobs"]]
        if not full:
            continue
        best = max(full, key=lambda r: (r["submitted"], r["obj"].path))
        manifest: StoredObject = best["obj"]
        files = []
        for blob in best["blobs"]:
            named = str(blob.get("blobName", ""))
            relative = resolve_named(ctx.source, named)
            if relative is None:
                raise StorageError(
                    f"{ctx.storage.uri_of(manifest.path)} names blob {named!r}, which is not below a folder "
                    f"named like the source's ({ctx.source.uri.rsplit('/', 1)[-1]!r}): is the source's uri "
                    "the export's folder (<container>/<root folder>/<export name>)?"
                )
            files.append(DeliveryFile(ctx.storage.uri_of(relative), relative, int(blob.get("byteCount", 0))))
        digest = hashlib.sha256(f"{manifest.path}\0{manifest.etag or manifest.last_modified}".encode())
        deliveries[period] = Delivery(
            source=ctx.source.name,
            period=period,
            delivery_id=f"azure:{digest.hexdigest()[:32]}",
            delivered_at=manifest.last_modified,
            files=tuple(files),
            manifest=manifest.path,
        )
    pending: dict[str, list[StoredObject]] = defaultdict(list)
    for obj in ctx.objects:
        folder = obj.path.rsplit("/", 1)[0] if "/" in obj.path else ""
        if folder in run_folders or not is_data_file(obj.path):
            continue
        match = _RANGE.search(obj.path)
        if match:
            pending[f"{period_of(match.group(1), match.group(2))}\0{folder}"].append(obj)
    incomplete = []
    for key, objects in pending.items():
        period, folder = key.split("\0", 1)
        incomplete.append(
            IncompleteDelivery(
                source=ctx.source.name,
                period=period,
                since=oldest(objects),
                files=len(objects),
                reason=f"no manifest.json in run folder {folder}/: the export run is still being written",
            )
        )
    return deliveries, incomplete
