"""Kind `oci-focus-reports`: OCI's FOCUS cost reports, the source's uri being the folder that
holds `FOCUS Reports/` (the reports bucket, or a copy of it).

What Oracle writes (https://docs.oracle.com/iaas/Content/Billing/Concepts/costusagereportsoverview.htm,
"How Cost Reports Work"; listing: https://docs.oracle.com/en-us/iaas/Content/Billing/Tasks/list-cost-usage-report.htm):

    FOCUS Reports/YYYY/MM/DD/<file>-<n>.csv.gz

Reports are generated every six hours and each holds the usage of those hours ("cost
reports generally contain six hours of usage data, and occasionally late-arriving data ...
delayed up to 24 hours"); corrections are added as new rows. Files are therefore
*incremental*: a month is the union of its files, never the latest one alone, and no row
is in two files. There is no manifest: a file counts once it has not changed for the settle
time. A row belongs to the billing period of its BillingPeriodStart, and late data puts
rows of a month into the first days' files of the next one (the FOCUS sample's Oracle rows
include a charge of 30 September billed in October); so a file of day D of month M feeds
M, M-1 when D is one of the first `LATE_DAYS` days, and M+1 when D is one of the last
`LATE_DAYS` days. The loader keeps, of each file, only the rows of the period it loads (a
`Delivery` of this kind has no manifest). A month's id is a digest of its files with sizes
and ETags: each new report is a new delivery.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Final

from finops_pipeline.sources.model import Delivery, IncompleteDelivery, digest_id
from finops_pipeline.sources.scan import (
    ScanContext,
    days_in_period,
    is_data_file,
    oldest,
    period_of,
    shift_period,
)
from finops_pipeline.sources.storage import StoredObject

__all__ = ["LATE_DAYS", "periods_fed", "scan"]

# Data "can be delayed up to 24 hours": two days of margin on each side of a month's end.
LATE_DAYS: Final = 2
_REPORT: Final = re.compile(r"^(?:focus reports/)?(\d{4})/(0[1-9]|1[0-2])/(\d{2})/[^/]+$", re.IGNORECASE)


def periods_fed(year: int, month: int, day: int) -> list[str]:
    """The billing periods whose rows a report file of that day folder may hold."""
    period = period_of(year, month)
    fed = [period]
    if day <= LATE_DAYS:
        fed.append(shift_period(period, -1))
    if day > days_in_period(period) - LATE_DAYS:
        fed.append(shift_period(period, 1))
    return fed


def scan(ctx: ScanContext) -> tuple[dict[str, Delivery], list[IncompleteDelivery]]:
    settled: dict[str, list[StoredObject]] = defaultdict(list)
    fresh: dict[str, list[StoredObject]] = defaultdict(list)
    for obj in ctx.objects:
        match = _REPORT.match(obj.path)
        if not match or not is_data_file(obj.path):
            continue
        for period in periods_fed(int(match.group(1)), int(match.group(2)), int(match.group(3))):
            (settled if ctx.settled(obj) else fresh)[period].append(obj)
    deliveries: dict[str, Delivery] = {}
    for period, objects in settled.items():
        files = tuple(ctx.file(o) for o in sorted(objects, key=lambda o: o.path))
        deliveries[period] = Delivery(
            source=ctx.source.name,
            period=period,
            delivery_id=digest_id("oci", files),
            delivered_at=max(o.last_modified for o in objects),
            files=files,
        )
    incomplete = [
        IncompleteDelivery(
            source=ctx.source.name,
            period=period,
            since=oldest(objects),
            files=len(objects),
            reason=f"{len(objects)} report file(s) changed less than {ctx.settle_seconds} s ago",
        )
        for period, objects in fresh.items()
    ]
    return deliveries, incomplete
