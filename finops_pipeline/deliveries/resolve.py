"""Which deliveries a (period, domain) load takes.

A load takes the latest complete delivery of **every** source of its domain, so a new AWS
delivery is loaded together with the month's Azure delivery and never drops its rows. Two
ways to know them:

- a run the delivery sensor launched names its deliveries in its config (`DeliveryRef`): the
  load takes exactly those, read back from `finops_sources.deliveries` where the sensor
  recorded them, so the run loads what its run key names even if a newer delivery lands
  while it waits;
- any other run (schedule, manual, reprocess, dry run) scans the domain's sources when it
  plans (`resolve_deliveries`) and records that scan as the sensor would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from finops_pipeline.sources.config import Source
from finops_pipeline.sources.model import Delivery, DeliveryFile, SourceScan
from finops_pipeline.sources.scan import SourceUnreachable, scan_source

__all__ = [
    "DeliveryRef",
    "PairDeliveries",
    "ScanOutcome",
    "delivery_from_dict",
    "delivery_to_dict",
    "pinned_deliveries",
    "resolve_deliveries",
    "scan_sources",
]


@dataclass(frozen=True, order=True)
class DeliveryRef:
    """One delivery a run must load: what the delivery sensor puts in the run config."""

    source: str
    period: str
    delivery_id: str

    def as_config(self) -> dict[str, str]:
        return {"source": self.source, "period": self.period, "delivery_id": self.delivery_id}


@dataclass
class PairDeliveries:
    """What one (period, domain) load takes, and why a source gives nothing."""

    period: str
    domain: str
    deliveries: list[Delivery] = field(default_factory=list)  # one per source, in source order
    waiting: list[str] = field(default_factory=list)  # sources with no complete delivery, and why
    errors: list[str] = field(default_factory=list)  # sources that could not be read: the load fails

    def as_plan(self) -> dict[str, Any]:
        return {
            "deliveries": [delivery_to_dict(d) for d in self.deliveries],
            "waiting": list(self.waiting),
            "errors": list(self.errors),
        }

    @classmethod
    def from_plan(cls, period: str, domain: str, plan: Mapping[str, Any]) -> PairDeliveries:
        return cls(
            period=period,
            domain=domain,
            deliveries=[delivery_from_dict(d) for d in plan.get("deliveries", [])],
            waiting=list(plan.get("waiting", [])),
            errors=list(plan.get("errors", [])),
        )


@dataclass(frozen=True)
class ScanOutcome:
    """One source's scan: what it found, or why it could not be listed."""

    source: Source
    scan: SourceScan
    error: str | None = None


def delivery_to_dict(delivery: Delivery) -> dict[str, Any]:
    """A delivery as plain data, handed from the plan step to the load steps."""
    return {
        "source": delivery.source,
        "period": delivery.period,
        "delivery_id": delivery.delivery_id,
        "delivered_at": delivery.delivered_at.isoformat(),
        "manifest": delivery.manifest,
        "files": [[f.uri, f.relative, f.size, f.etag] for f in delivery.files],
    }


def delivery_from_dict(data: Mapping[str, Any]) -> Delivery:
    return Delivery(
        source=data["source"],
        period=data["period"],
        delivery_id=data["delivery_id"],
        delivered_at=datetime.fromisoformat(data["delivered_at"]),
        manifest=data.get("manifest"),
        files=tuple(
            DeliveryFile(uri, relative, int(size), etag) for uri, relative, size, etag in data["files"]
        ),
    )


def scan_sources(
    sources: Iterable[Source], *, now: datetime, settle_seconds: int, since_period: str | None
) -> list[ScanOutcome]:
    """Scan each source; a source whose storage cannot be listed gives its error, not an
    exception, so one broken bucket never hides the others' deliveries."""
    outcomes = []
    for source in sources:
        try:
            scan = scan_source(source, now=now, settle_seconds=settle_seconds, since_period=since_period)
        except SourceUnreachable as exc:
            outcomes.append(ScanOutcome(source, SourceScan(source=source.name, scanned_at=now), str(exc)))
            continue
        outcomes.append(ScanOutcome(source, scan))
    return outcomes


def _why_waiting(outcome: ScanOutcome, period: str) -> str:
    for item in outcome.scan.incomplete:
        if item.period == period:
            return f"{outcome.source.name}: {item.files} file(s) without a complete delivery ({item.reason})"
    return f"{outcome.source.name}: no delivery for {period}"


def resolve_deliveries(
    outcomes: Sequence[ScanOutcome], domains: Iterable[str], periods: Iterable[str]
) -> dict[tuple[str, str], PairDeliveries]:
    """(period, domain) -> the latest complete delivery of every source of the domain."""
    pairs: dict[tuple[str, str], PairDeliveries] = {}
    for domain in domains:
        for period in periods:
            pair = pairs[(period, domain)] = PairDeliveries(period=period, domain=domain)
            for outcome in outcomes:
                if outcome.source.domain != domain:
                    continue
                if outcome.error is not None:
                    pair.errors.append(f"source {outcome.source.name} cannot be listed: {outcome.error}")
                elif period in outcome.scan.deliveries:
                    pair.deliveries.append(outcome.scan.deliveries[period])
                else:
                    pair.waiting.append(_why_waiting(outcome, period))
    return pairs


def pinned_deliveries(
    conn: psycopg.Connection[Any],
    sources: Sequence[Source],
    refs: Iterable[DeliveryRef],
    domains: Iterable[str],
    periods: Iterable[str],
) -> dict[tuple[str, str], PairDeliveries]:
    """(period, domain) -> exactly the deliveries `refs` name, read from
    `finops_sources.deliveries` (recorded by the sensor's scan before it asked for the run)."""
    by_name = {s.name: s for s in sources}
    pairs = {
        (period, domain): PairDeliveries(period=period, domain=domain)
        for domain in domains
        for period in periods
    }
    for ref in sorted(set(refs)):
        source = by_name.get(ref.source)
        if source is None:
            for (period, _), named in pairs.items():
                if period == ref.period:
                    named.errors.append(
                        f"the run names delivery {ref.delivery_id} of source {ref.source!r}, which is no "
                        "longer in the sources file (FINOPS_SOURCES)"
                    )
            continue
        found = pairs.get((ref.period, source.domain))
        if found is None:
            continue  # a pair this run does not load
        pair = found
        row = conn.execute(
            "SELECT delivered_at, manifest, file_list FROM finops_sources.deliveries "
            "WHERE source = %s AND period = %s AND delivery_id = %s",
            (ref.source, ref.period, ref.delivery_id),
        ).fetchone()
        if row is None:
            pair.errors.append(
                f"delivery {ref.delivery_id} of source {ref.source} for {ref.period} is not recorded in "
                "finops_sources.deliveries; launch a reprocess to load the latest delivery"
            )
            continue
        delivered_at, manifest, file_list = row
        files = tuple(
            DeliveryFile(
                uri=f"{source.uri}/{item['path']}",
                relative=item["path"],
                size=int(item["size"]),
                etag=item.get("etag"),
            )
            for item in file_list
        )
        pair.deliveries.append(
            Delivery(
                source=ref.source,
                period=ref.period,
                delivery_id=ref.delivery_id,
                delivered_at=delivered_at,
                files=files,
                manifest=manifest,
            )
        )
    order = {s.name: i for i, s in enumerate(sources)}
    for pair in pairs.values():
        pair.deliveries.sort(key=lambda d: order.get(d.source, len(order)))
    return pairs
