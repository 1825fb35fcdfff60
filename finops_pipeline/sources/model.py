"""A delivery, as each provider defines it.

A *delivery* is one complete set of files a provider wrote for one billing period of one
source: an AWS Data Exports manifest and its `dataFiles`, the Azure export run whose
`manifest.json` wins the month, the settled OCI report files of the month, a GCP export
folder with its completion marker, or a `landing` month folder. Its id changes whenever
what it holds changes (manifest ETag, or a digest of the file list with sizes and ETags),
so "a newer delivery than the one loaded" is a plain comparison of ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Delivery", "DeliveryFile", "IncompleteDelivery", "SourceScan", "digest_id"]


@dataclass(frozen=True)
class DeliveryFile:
    uri: str  # where the file is read from: the source's own storage (a mirror resolves here)
    relative: str  # its path below the source's uri: what messages and screens name
    size: int  # bytes, as listed (or as the manifest states, checked against the listing)
    etag: str | None = None


@dataclass(frozen=True)
class Delivery:
    source: str
    period: str  # YYYY-MM: the billing period the delivery is for
    delivery_id: str
    delivered_at: datetime  # when the provider completed it (manifest time, newest file time)
    files: tuple[DeliveryFile, ...]
    manifest: str | None = None  # the manifest's path below the source's uri, if the kind has one

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file_list(self) -> list[dict[str, object]]:
        """The files as stored in `finops_sources.deliveries.file_list`."""
        return [{"path": f.relative, "size": f.size, "etag": f.etag} for f in self.files]


@dataclass(frozen=True)
class IncompleteDelivery:
    """Data of a period with no complete delivery yet (no manifest, still settling)."""

    source: str
    period: str
    since: datetime  # the oldest file's time: how long it has been waiting
    files: int
    reason: str  # e.g. "no manifest.json in run folder 20261101-20261130/202612030812/…"


@dataclass(frozen=True)
class SourceScan:
    """What one listing of a source found: the latest complete delivery of every period it
    holds, and the periods with data but no complete delivery."""

    source: str
    scanned_at: datetime
    deliveries: dict[str, Delivery] = field(default_factory=dict)  # period -> latest complete
    incomplete: list[IncompleteDelivery] = field(default_factory=list)


def digest_id(prefix: str, files: Iterable[DeliveryFile]) -> str:
    """A delivery id for kinds without a manifest ETag: a digest of the sorted file list with
    sizes and ETags, so any change to the files is a new delivery."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relative):
        h.update(f"{f.relative}\0{f.size}\0{f.etag or ''}\n".encode())
    return f"{prefix}:{h.hexdigest()[:32]}"
