"""Scanning a source: which files make the latest complete delivery of each billing period.

`scan_source` lists the source's storage once and hands the listing to its kind's module
(`landing`, `aws`, `azure`, `oci`, `gcp`), which applies the provider's own rules (README,
"Sources"). `open_delivery_file` and `stat_delivery_file` read a delivery's files where the
source keeps them; the load's completeness gate (`incomplete_delivery`) compares
`stat_delivery_file` with the size the scan recorded.

Rules shared by every kind, here once:

- a manifest's file (AWS `dataFiles`, Azure `blobs[].blobName`) is looked up below the
  source's own uri by its path after the first segment equal to the source folder's name
  (DESIGN.md "Sources"), so a mirror of an export loads the same files (`resolve_named`);
- a period with data but no complete delivery is reported as an `IncompleteDelivery`; a
  period that has a complete delivery is not, even while a newer one is being written:
  the complete one is what a load takes meanwhile.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

from finops_pipeline.constants import LANDING_FILE_SUFFIXES
from finops_pipeline.sources.config import Source
from finops_pipeline.sources.model import Delivery, DeliveryFile, IncompleteDelivery, SourceScan
from finops_pipeline.sources.storage import Storage, StorageError, StoredObject, open_storage

__all__ = [
    "DEFAULT_SETTLE_SECONDS",
    "ScanContext",
    "SourceUnreachable",
    "days_in_period",
    "is_data_file",
    "oldest",
    "open_delivery_file",
    "open_source_storage",
    "period_of",
    "resolve_named",
    "scan_source",
    "shift_period",
    "stat_delivery_file",
]

DEFAULT_SETTLE_SECONDS: Final = 900
_PERIOD: Final = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class SourceUnreachable(Exception):
    """The source's storage cannot be listed (credentials, bucket, network...)."""

    def __init__(self, source: Source, message: str) -> None:
        super().__init__(f"source {source.name!r} ({source.location}): {message}")
        self.source = source
        self.message = message


@dataclass(frozen=True)
class ScanContext:
    """What a kind's module gets: the source, its storage, the listing and the clock."""

    source: Source
    storage: Storage
    objects: list[StoredObject]
    now: datetime
    settle_seconds: int
    since_period: str | None

    def wanted(self, period: str) -> bool:
        return self.since_period is None or period >= self.since_period

    def settled(self, obj: StoredObject) -> bool:
        return (self.now - obj.last_modified).total_seconds() >= self.settle_seconds

    def file(self, obj: StoredObject, size: int | None = None) -> DeliveryFile:
        return DeliveryFile(
            uri=self.storage.uri_of(obj.path),
            relative=obj.path,
            size=obj.size if size is None else size,
            etag=obj.etag,
        )


KindScanner = Callable[[ScanContext], tuple[dict[str, Delivery], list[IncompleteDelivery]]]


def period_of(year: int | str, month: int | str) -> str:
    return f"{int(year):04d}-{int(month):02d}"


def shift_period(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + (month - 1) + months
    return period_of(index // 12, index % 12 + 1)


def days_in_period(period: str) -> int:
    return calendar.monthrange(int(period[:4]), int(period[5:7]))[1]


def is_data_file(path: str) -> bool:
    """A FOCUS data file (CSV, gzip CSV, Parquet), not a hidden file, marker or manifest."""
    base = path.rsplit("/", 1)[-1]
    return base.lower().endswith(LANDING_FILE_SUFFIXES) and not base.startswith((".", "_"))


def oldest(objects: list[StoredObject]) -> datetime:
    return min(o.last_modified for o in objects)


def resolve_named(source: Source, named: str) -> str | None:
    """The path below the source's uri of a file a manifest names by its full location
    (`s3://bucket/cur/payer/data/x.parquet`, or a container-relative Azure blob name):
    the part after the first path segment equal to the source folder's own name. None when
    no segment matches: the manifest names a file of another export."""
    folder = source.uri.rstrip("/").rsplit("/", 1)[-1]
    text = named.split("://", 1)[1] if "://" in named else named
    segments = [s for s in text.split("/") if s]
    for i, segment in enumerate(segments[:-1]):
        if segment == folder:
            return "/".join(segments[i + 1 :])
    return None


def open_source_storage(source: Source) -> Storage:
    try:
        return open_storage(source.uri, source.storage_options())
    except StorageError as exc:
        raise SourceUnreachable(source, str(exc)) from exc


def _scanner(kind: str) -> KindScanner:
    # Imported here: the kinds' modules import the helpers above.
    from finops_pipeline.sources import aws, azure, gcp, landing, oci

    scanners: dict[str, KindScanner] = {
        "landing": landing.scan,
        "aws-data-exports": aws.scan,
        "azure-cost-exports": azure.scan,
        "oci-focus-reports": oci.scan,
        "gcp-focus-export": gcp.scan,
    }
    return scanners[kind]


def scan_source(
    source: Source,
    *,
    now: datetime,
    settle_seconds: int = DEFAULT_SETTLE_SECONDS,
    since_period: str | None = None,
) -> SourceScan:
    """List `source` and return the latest complete delivery of every period it holds (not
    older than `since_period` when given) and the periods with incomplete data. Raises
    SourceUnreachable when the storage cannot be listed or a manifest cannot be read."""
    if since_period is not None and not _PERIOD.match(since_period):
        raise ValueError(f"since_period must be YYYY-MM, got {since_period!r}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    storage = open_source_storage(source)
    try:
        objects = list(storage.list())
        context = ScanContext(source, storage, objects, now, settle_seconds, since_period)
        deliveries, incomplete = _scanner(source.kind)(context)
    except StorageError as exc:
        raise SourceUnreachable(source, str(exc)) from exc
    incomplete = [i for i in incomplete if i.period not in deliveries and context.wanted(i.period)]
    return SourceScan(
        source=source.name,
        scanned_at=now,
        deliveries={p: d for p, d in sorted(deliveries.items()) if context.wanted(p)},
        incomplete=sorted(incomplete, key=lambda i: i.period),
    )


@contextmanager
def open_delivery_file(source: Source, file: DeliveryFile) -> Iterator[BinaryIO]:
    """A delivery's file, streamed from the source's own storage."""
    storage = open_source_storage(source)
    with storage.open(file.relative) as handle:
        yield handle


def stat_delivery_file(source: Source, file: DeliveryFile) -> int | None:
    """The file's current size in the source's storage; None when it is missing."""
    obj = open_source_storage(source).head(file.relative)
    return None if obj is None else obj.size
