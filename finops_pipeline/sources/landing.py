"""Kind `landing`: `<uri>/<YYYY-MM>/*.csv|*.csv.gz|*.parquet`, the layout of FINOPS_LANDING_URI.

A month folder is one delivery: the FOCUS files directly in it (sub-folders, hidden files and
`_` markers are not read, as the landing loader does). Nothing marks a copy as finished, so
a month counts once none of its files has changed for the settle time; until then it is
incomplete (a copy in progress), never a partial delivery. Its id is a digest of the file
list with sizes and ETags: any change is a new delivery.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Final

from finops_pipeline.sources.model import Delivery, IncompleteDelivery, digest_id
from finops_pipeline.sources.scan import ScanContext, is_data_file, oldest
from finops_pipeline.sources.storage import StoredObject

__all__ = ["scan"]

_MONTH_FILE: Final = re.compile(r"^(\d{4}-(?:0[1-9]|1[0-2]))/([^/]+)$")


def scan(ctx: ScanContext) -> tuple[dict[str, Delivery], list[IncompleteDelivery]]:
    months: dict[str, list[StoredObject]] = defaultdict(list)
    for obj in ctx.objects:
        match = _MONTH_FILE.match(obj.path)
        if match and is_data_file(obj.path):
            months[match.group(1)].append(obj)
    deliveries: dict[str, Delivery] = {}
    incomplete: list[IncompleteDelivery] = []
    for period, objects in months.items():
        fresh = [o for o in objects if not ctx.settled(o)]
        if fresh:
            incomplete.append(
                IncompleteDelivery(
                    source=ctx.source.name,
                    period=period,
                    since=oldest(fresh),
                    files=len(objects),
                    reason=(
                        f"{len(fresh)} file(s) in {period}/ changed less than {ctx.settle_seconds} s ago: "
                        "a copy may still be under way"
                    ),
                )
            )
            continue
        files = tuple(ctx.file(o) for o in sorted(objects, key=lambda o: o.path))
        deliveries[period] = Delivery(
            source=ctx.source.name,
            period=period,
            delivery_id=digest_id("landing", files),
            delivered_at=max(o.last_modified for o in objects),
            files=files,
        )
    return deliveries, incomplete
