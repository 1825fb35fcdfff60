"""The delivery sensor's tick: which runs the new deliveries ask for.

Each tick lists every source (`scan_sources`), records what it saw (`record_scan`, the
listing's error too), and compares each (source, period)'s latest complete delivery with the
one last LOADED. Every (period, domain) with a change is reloaded from the latest complete
delivery of **every** source of the domain (an AWS re-delivery keeps the month's Azure rows),
in one run per domain: its periods are the changed ones, its config names each delivery it
loads, and its run key is a digest of those delivery ids. Dagster launches at most one run
per key, so a tick repeated, or a sensor restarted, never loads a delivery twice, and a
failed load is not retried in a loop: the same deliveries give the same key. A new delivery
(a restatement is one) gives a new key; a reprocess or the schedule retries the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from finops_pipeline.contract import (
    DOMAINS,
    PLAN_STEP,
    REQUESTED_BY_SOURCE_PREFIX,
    TRIGGER_DELIVERY,
    batch_run_config,
    batch_tags,
)
from finops_pipeline.deliveries.resolve import DeliveryRef, ScanOutcome
from finops_pipeline.periods import normalize_periods
from finops_pipeline.sources.model import Delivery
from finops_pipeline.sources.state import loaded_deliveries

__all__ = ["DeliveryRunRequest", "delivery_run_requests", "run_key_of"]

RUN_KEY_PREFIX = "delivery"


@dataclass(frozen=True)
class DeliveryRunRequest:
    """One run the sensor asks for: a domain, its changed periods, every delivery they take."""

    domain: str
    periods: list[str]
    deliveries: list[DeliveryRef]
    requested_by: str  # source:<name> of the source whose new delivery asks for the run
    changed: list[DeliveryRef] = field(default_factory=list)  # the deliveries not loaded yet

    @property
    def run_key(self) -> str:
        return run_key_of(self.domain, self.deliveries)

    def run_config(self) -> dict[str, Any]:
        config = batch_run_config(self.periods, [self.domain])
        config["ops"][PLAN_STEP]["config"]["deliveries"] = [d.as_config() for d in self.deliveries]
        return config

    def tags(self) -> dict[str, str]:
        return batch_tags(
            trigger=TRIGGER_DELIVERY,
            periods=self.periods,
            domains=[self.domain],
            requested_by=self.requested_by,
        )


def run_key_of(domain: str, deliveries: Sequence[DeliveryRef]) -> str:
    """The same deliveries always give the same key, whatever their order."""
    digest = hashlib.sha256()
    for ref in sorted(set(deliveries)):
        digest.update(f"{ref.source}\0{ref.period}\0{ref.delivery_id}\n".encode())
    return f"{RUN_KEY_PREFIX}:{domain}:{digest.hexdigest()[:32]}"


def _recorded_latest(conn: psycopg.Connection[Any], sources: Sequence[str]) -> dict[tuple[str, str], str]:
    """(source, period) -> the newest complete delivery recorded by earlier scans."""
    rows = conn.execute(
        "SELECT DISTINCT ON (source, period) source, period, delivery_id FROM finops_sources.deliveries "
        "WHERE source = ANY(%s) ORDER BY source, period, delivered_at DESC, first_seen DESC",
        (list(sources),),
    ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


def delivery_run_requests(
    conn: psycopg.Connection[Any], outcomes: Sequence[ScanOutcome]
) -> list[DeliveryRunRequest]:
    """The runs this tick's scans ask for, one per domain with a changed period."""
    names = [o.source.name for o in outcomes]
    loaded = loaded_deliveries(conn, names)
    # A source that could not be listed this tick still counts with what it delivered before:
    # a reload of its domain must not drop its rows.
    unreachable = [o.source.name for o in outcomes if o.error is not None]
    recorded = _recorded_latest(conn, unreachable) if unreachable else {}
    latest: dict[tuple[str, str], DeliveryRef] = {}  # (source, period) -> latest complete
    delivered: dict[tuple[str, str], Delivery] = {}
    for outcome in outcomes:
        name = outcome.source.name
        if outcome.error is None:
            for period, delivery in outcome.scan.deliveries.items():
                latest[(name, period)] = DeliveryRef(name, period, delivery.delivery_id)
                delivered[(name, period)] = delivery
        else:
            for (source, period), delivery_id in recorded.items():
                if source == name:
                    latest[(name, period)] = DeliveryRef(name, period, delivery_id)
    domain_of = {o.source.name: o.source.domain for o in outcomes}
    requests = []
    for domain in DOMAINS:
        changed = sorted(
            ref
            for (source, period), ref in latest.items()
            if domain_of[source] == domain
            and (source, period) in delivered  # only what this tick saw asks for a run
            and loaded.get((source, period)) != ref.delivery_id
        )
        if not changed:
            continue
        periods = normalize_periods(list({ref.period for ref in changed}))
        refs = sorted(
            ref
            for (source, period), ref in latest.items()
            if domain_of[source] == domain and period in periods
        )
        # The run is asked for by the source with the newest of the changed deliveries.
        newest = max(changed, key=lambda r: (delivered[(r.source, r.period)].delivered_at, r.source))
        requests.append(
            DeliveryRunRequest(
                domain=domain,
                periods=periods,
                deliveries=refs,
                requested_by=f"{REQUESTED_BY_SOURCE_PREFIX}{newest.source}",
                changed=changed,
            )
        )
    return requests
