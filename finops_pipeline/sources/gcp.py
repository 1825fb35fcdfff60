"""Kind `gcp-focus-export`: Google Cloud's FOCUS BigQuery view, exported to Parquet in GCS by
the scheduled query of the README ("Sources", Google Cloud), the source's uri being its
destination folder `gs://<bucket>/<prefix>`.

Google Cloud writes no cost files itself: FOCUS data is a BigQuery view over the billing
export. The scheduled query writes, for the current and the previous month, one folder per
run so that a run never overwrites files another load may be reading:

    billing_period=YYYY-MM/run=<YYYYMMDDTHHMMSSZ>/part-<n>.parquet
    billing_period=YYYY-MM/run=<YYYYMMDDTHHMMSSZ>/_SUCCESS-<n>.csv    (written last)

A run folder counts once its `_SUCCESS` marker exists (EXPORT DATA statements of one script
run in order, so the marker's export starts after the data's has finished); per period the
newest complete run wins. Its Parquet files are the delivery (nested `Tags` and `x_Credits`
as BigQuery writes them); its id is a digest of the marker and files with their ETags.
A run folder with data but no marker is still being written: incomplete.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Final

from finops_pipeline.sources.model import Delivery, IncompleteDelivery, digest_id
from finops_pipeline.sources.scan import ScanContext, is_data_file, oldest, period_of
from finops_pipeline.sources.storage import StoredObject

__all__ = ["MARKER_PREFIX", "scan"]

MARKER_PREFIX: Final = "_SUCCESS"
_RUN_FILE: Final = re.compile(r"^billing_period=(\d{4})-(0[1-9]|1[0-2])/(run=[^/]+)/([^/]+)$", re.IGNORECASE)


def scan(ctx: ScanContext) -> tuple[dict[str, Delivery], list[IncompleteDelivery]]:
    runs: dict[tuple[str, str], dict[str, list[StoredObject]]] = defaultdict(
        lambda: {"data": [], "marker": []}
    )
    for obj in ctx.objects:
        match = _RUN_FILE.match(obj.path)
        if not match:
            continue
        key = (period_of(match.group(1), match.group(2)), match.group(3))
        if match.group(4).upper().startswith(MARKER_PREFIX):
            runs[key]["marker"].append(obj)
        elif is_data_file(obj.path):
            runs[key]["data"].append(obj)
    deliveries: dict[str, Delivery] = {}
    incomplete: list[IncompleteDelivery] = []
    # Run folders are named by their UTC start time: the greatest name is the newest run.
    for (period, run), parts in sorted(runs.items()):
        if not parts["marker"]:
            if parts["data"]:
                incomplete.append(
                    IncompleteDelivery(
                        source=ctx.source.name,
                        period=period,
                        since=oldest(parts["data"]),
                        files=len(parts["data"]),
                        reason=f"no {MARKER_PREFIX} marker in billing_period={period}/{run}/: "
                        "the export query is still writing",
                    )
                )
            continue
        files = tuple(ctx.file(o) for o in sorted(parts["data"], key=lambda o: o.path))
        marker = max(parts["marker"], key=lambda o: o.last_modified)
        deliveries[period] = Delivery(
            source=ctx.source.name,
            period=period,
            delivery_id=digest_id("gcp", (*files, ctx.file(marker))),
            delivered_at=marker.last_modified,
            files=files,
            manifest=marker.path,
        )
    return deliveries, incomplete
