"""The files of one (period, domain)'s deliveries, read by the load as a landing store.

`warehouse.load_period` reads any `LandingStore`; this one lists exactly the files of the
deliveries it is given (an AWS manifest's `dataFiles`, an Azure run's blobs...), nothing else
in their folders, and opens each in its source's own storage. Before a load, every file is
checked against the size its delivery states (`check_delivery_files`): a missing or truncated
file fails the pair with the gate `incomplete_delivery` instead of loading part of a month.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO, Final

from finops_pipeline.landing.store import LandingFile, LandingFolderMissing
from finops_pipeline.sources.config import Source
from finops_pipeline.sources.model import Delivery, DeliveryFile
from finops_pipeline.sources.scan import open_delivery_file, stat_delivery_file

__all__ = ["DeliveryStore", "check_delivery_files", "home_period"]

# OCI report files sit under `YYYY/MM/DD/`: the month a file was written in.
_OCI_DAY: Final = re.compile(r"(?:^|/)(\d{4})/(\d{2})/\d{2}/")


def home_period(file: DeliveryFile) -> str | None:
    """The month an OCI report file was written in (its folder date), None when not dated."""
    match = _OCI_DAY.search(file.relative)
    return f"{match.group(1)}-{match.group(2)}" if match else None


class DeliveryStore:
    """A `LandingStore` over the deliveries of one (period, domain), one per source."""

    def __init__(self, sources: Sequence[Source], deliveries: Sequence[Delivery], period: str) -> None:
        by_name = {s.name: s for s in sources}
        self.period = period
        self.deliveries = list(deliveries)
        self._files: dict[LandingFile, tuple[Source, DeliveryFile]] = {}
        for delivery in self.deliveries:
            source = by_name[delivery.source]
            # OCI files may hold rows of two billing periods: the rows of the other one belong
            # to that month's delivery, and are skipped here rather than rejected.
            oci = source.kind == "oci-focus-reports"
            for file in delivery.files:
                landing = LandingFile(
                    name=file.uri,
                    size=file.size,
                    relative=f"{source.name}/{file.relative}",
                    skip_other_periods=oci,
                    home_period=home_period(file) if oci else None,
                )
                self._files[landing] = (source, file)

    def folder_uri(self, domain: str, period: str) -> str:
        return ", ".join(f"{d.source} delivery {d.delivery_id}" for d in self.deliveries) or "no delivery"

    def list_files(self, domain: str, period: str) -> list[LandingFile]:
        if not self._files:
            raise LandingFolderMissing(domain, period, self.folder_uri(domain, period))
        return list(self._files)

    def skipped_sub_folders(self, domain: str, period: str) -> dict[str, int]:
        return {}  # a delivery names its files: nothing beside them is read, nothing is skipped

    @contextmanager
    def open(self, file: LandingFile) -> Iterator[BinaryIO]:
        source, delivery_file = self._files[file]
        with open_delivery_file(source, delivery_file) as handle:
            yield handle

    def read_optional(self, relative: str) -> bytes | None:
        return None  # reference data lives beside the landing root, not in a provider's export


def check_delivery_files(sources: Sequence[Source], deliveries: Sequence[Delivery]) -> str | None:
    """Why these deliveries cannot be loaded as they stand (a file missing or of another size
    than its delivery states), or None when every file is there, whole."""
    by_name = {s.name: s for s in sources}
    problems: list[str] = []
    for delivery in deliveries:
        source = by_name[delivery.source]
        for file in delivery.files:
            size = stat_delivery_file(source, file)
            if size is None:
                problems.append(f"{source.name}/{file.relative} is missing ({file.size} bytes expected)")
            elif size != file.size:
                problems.append(
                    f"{source.name}/{file.relative} is {size} bytes, its delivery states {file.size}"
                )
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            return (
                f"delivery {delivery.delivery_id} of source {source.name} for {delivery.period} is "
                f"incomplete: {shown}"
            )
    return None
