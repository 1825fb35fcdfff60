"""`GET /metrics`: the batch's state in the Prometheus text format, read at scrape time.

Nothing is counted in memory: each scrape reads the read model (PostgreSQL) and
Dagster, so every replica answers the same and a restart loses nothing. Labels
are bounded: the four domains, the last `PERIODS` months, the quality gates,
run statuses and triggers, the materialized views, Dagster's daemon types, and
reject reasons (FOCUS rule names). Every counter is present, at 0, for every
label set it can have, so `increase()` sees the first failure.

What each metric comes from:
- `finops_load_last_success_timestamp_seconds{domain,period}`: the read model's last load of
  the month that passed its quality gates; `finops_releves_rows{domain,period}`: the rows that
  load left in `finops.releves` (a load replaces its month);
- `finops_load_rows_{read,loaded}_total{domain}`, `finops_load_rows_rejected_total{domain,reason}`,
  `finops_quality_gate_failures_total{domain,gate}`: every projected load;
- `finops_failure_signature_runs{signature,kind}`: runs that failed with each failure signature
  over the last `FAILURE_DAYS` days, the `FAILURE_SIGNATURES` most frequent only (the text of
  a signature is in `GET /failures`; its id keeps the label short and the series few);
- `finops_runs_total{status,trigger}`, `finops_runs_in_progress`,
  `finops_run_oldest_in_progress_start_timestamp_seconds`, `finops_run_duration_seconds`
  (histogram of finished runs): the read model's runs;
- `finops_mv_last_refresh_timestamp_seconds{mv}`, `finops_mv_refresh_duration_seconds{mv}`: the
  MV assets' last materializations in Dagster;
- `finops_readmodel_lag_seconds`: Dagster's newest FinOps run change not projected yet;
  `finops_readmodel_runs_to_reproject`: runs stored by an older mapping, still to re-project
  after an upgrade (the projector does it in the background);
- `finops_dagster_daemon_heartbeat_timestamp_seconds{daemon}`: Dagster's daemon heartbeats;
- per configured source (`FINOPS_SOURCES`, or the landing sources), from schema `finops_sources`
  that the delivery sensor and the loads write: `finops_source_last_delivery_timestamp_seconds`
  (its newest complete delivery), `finops_source_last_loaded_timestamp_seconds` (its newest
  loaded delivery's load), `finops_source_incomplete_deliveries` and
  `finops_source_incomplete_oldest_age_seconds` (data without a complete delivery),
  `finops_source_pending_oldest_age_seconds` (the oldest complete delivery not loaded yet),
  `finops_source_months{state}` (its last `PERIODS` months by state, as `GET /sources` derives
  them), `finops_source_last_scan_timestamp_seconds` and `finops_source_scan_failing` (the
  sensor's last listing, 1 when it failed). Labels `source`, `domain` (and `kind` on the last
  delivery); a source with no delivery yet has no last-delivery sample.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, get_args

import psycopg
from dagster import AssetKey
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.mapping.runs import MAPPING_VERSION
from finops_admin_plugin.mapping.sources import map_source
from finops_admin_plugin.models import QualityGate, RunStatus
from finops_admin_plugin.models.sources import SOURCE_STATES
from finops_admin_plugin.readmodel import ReadModel
from finops_admin_plugin.readmodel.schema import SCHEMA
from finops_pipeline.contract import ASSET_KEY_PREFIX, DOMAINS, MATERIALIZED_VIEWS, TRIGGERS, MvMeta
from finops_pipeline.periods import add_months, format_period
from finops_pipeline.sources.config import Source
from finops_pipeline.sources.state import last_scans, source_activity, source_months

__all__ = ["DURATION_BUCKETS", "PERIODS", "FinopsCollector", "render"]

PERIODS: Final = 13  # the current month and the 12 before it
DURATION_BUCKETS: Final = (60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
GATES: Final[tuple[str, ...]] = get_args(QualityGate)
RUN_STATUSES: Final[tuple[str, ...]] = get_args(RunStatus)
FAILURE_DAYS: Final = 7
FAILURE_SIGNATURES: Final = 10  # series per scrape at most: a label per cause would grow without bound


def _first_period(now: datetime) -> str:
    current = datetime(now.year, now.month, 1, tzinfo=UTC).date()
    return format_period(add_months(current, -(PERIODS - 1)))


class FinopsCollector(Collector):
    """One scrape: reads everything when `collect` is called, never at registration."""

    def __init__(
        self,
        store: ReadModel,
        source: DagsterReader | None,
        *,
        now: datetime | None = None,
        sources: Sequence[Source] = (),
    ) -> None:
        self.store = store
        self.source = source
        self.now = now
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        now = self.now or datetime.now(UTC)
        with self.store.connection() as conn:
            yield from self._loads(conn, now)
            yield from self._runs(conn)
            yield from self._sources(conn, now)
            yield from self._failures(conn, now)
            watermark = self.store.watermark(conn)
        if self.source is not None:
            yield from self._dagster(watermark)

    # --- sources (schema finops_sources) --------------------------------------------------

    def _sources(self, conn: psycopg.Connection, now: datetime) -> Iterator[Metric]:
        labels = ["source", "domain"]
        delivered = GaugeMetricFamily(
            "finops_source_last_delivery_timestamp_seconds",
            "When the source's newest complete delivery was completed by its provider.",
            labels=[*labels, "kind"],
        )
        loaded = GaugeMetricFamily(
            "finops_source_last_loaded_timestamp_seconds",
            "When a delivery of the source was last loaded.",
            labels=labels,
        )
        incomplete = GaugeMetricFamily(
            "finops_source_incomplete_deliveries",
            "Months of the source with data but no complete delivery (no manifest, still settling).",
            labels=labels,
        )
        incomplete_age = GaugeMetricFamily(
            "finops_source_incomplete_oldest_age_seconds",
            "Age of the source's oldest incomplete delivery (0 when none).",
            labels=labels,
        )
        pending_age = GaugeMetricFamily(
            "finops_source_pending_oldest_age_seconds",
            "Age of the source's oldest complete delivery not loaded yet (0 when none).",
            labels=labels,
        )
        months = GaugeMetricFamily(
            "finops_source_months",
            f"The source's last {PERIODS} months by state (LOADED, PENDING, INCOMPLETE, FAILED, MISSING).",
            labels=[*labels, "state"],
        )
        scanned = GaugeMetricFamily(
            "finops_source_last_scan_timestamp_seconds",
            "When the delivery sensor last listed the source.",
            labels=labels,
        )
        failing = GaugeMetricFamily(
            "finops_source_scan_failing",
            "1 when the delivery sensor's last listing of the source failed (its storage did not answer).",
            labels=labels,
        )
        names = [s.name for s in self.sources]
        try:
            activity = source_activity(conn, names) if names else {}
            scans = last_scans(conn, names) if names else {}
            rows = source_months(conn, names, PERIODS) if names else []
        except psycopg.errors.UndefinedTable:
            activity, scans, rows = {}, {}, []  # the pipeline has not scanned nor loaded yet
        for source in self.sources:
            key = [source.name, source.domain]
            figures = activity.get(source.name)
            if figures is not None and figures.last_delivered_at is not None:
                delivered.add_metric([*key, source.kind], figures.last_delivered_at.timestamp())
            if figures is not None and figures.last_loaded_at is not None:
                loaded.add_metric(key, figures.last_loaded_at.timestamp())
            incomplete.add_metric(key, figures.incomplete if figures is not None else 0)
            since = figures.incomplete_since if figures is not None else None
            incomplete_age.add_metric(key, max(0.0, (now - since).total_seconds()) if since else 0.0)
            scan = scans.get(source.name)
            if scan is not None:
                scanned.add_metric(key, scan.scanned_at.timestamp())
            failing.add_metric(key, 1 if scan is not None and scan.error else 0)
            view = map_source(source, rows, scan, now, limit=PERIODS)
            counts = dict.fromkeys(SOURCE_STATES, 0)
            oldest_pending = 0.0
            for month in view.months:
                counts[month.state] += 1
                if month.state == "PENDING" and month.latest is not None:
                    age = (now - month.latest.delivered_at).total_seconds()
                    oldest_pending = max(oldest_pending, age)
            for state, count in counts.items():
                months.add_metric([*key, state], count)
            pending_age.add_metric(key, oldest_pending)
        yield from (delivered, loaded, incomplete, incomplete_age, pending_age, months, scanned, failing)

    # --- read model ------------------------------------------------------------------------

    def _loads(self, conn: psycopg.Connection, now: datetime) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            "finops_load_last_success_timestamp_seconds",
            "When the month's data of a domain was last loaded (a load that passed its quality gates).",
            labels=["domain", "period"],
        )
        rows = GaugeMetricFamily(
            "finops_releves_rows",
            "Cost records of a domain and month in finops.releves, as its last load left them.",
            labels=["domain", "period"],
        )
        for domain, period, loaded_at, inserted in conn.execute(
            f"SELECT DISTINCT ON (domain, period) domain, period, extract(epoch FROM loaded_at), "
            f"releves_inserted FROM {SCHEMA}.period_loads WHERE period >= %s "
            "ORDER BY domain, period, loaded_at DESC",
            (_first_period(now),),
        ):
            last.add_metric([domain, period], float(loaded_at))
            if inserted is not None:
                rows.add_metric([domain, period], float(inserted))
        yield last
        yield rows

        read = CounterMetricFamily(
            "finops_load_rows_read", "Rows read from landing files by every load.", labels=["domain"]
        )
        loaded = CounterMetricFamily(
            "finops_load_rows_loaded", "Rows loaded into finops.releves by every load.", labels=["domain"]
        )
        totals = {d: (0, 0) for d in DOMAINS}
        for domain, rows_read, rows_loaded in conn.execute(
            f"SELECT domain, coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0) "
            f"FROM {SCHEMA}.load_quality GROUP BY domain"
        ):
            totals[domain] = (int(rows_read), int(rows_loaded))
        for domain, (rows_read, rows_loaded) in totals.items():
            read.add_metric([domain], rows_read)
            loaded.add_metric([domain], rows_loaded)
        yield read
        yield loaded

        rejected = CounterMetricFamily(
            "finops_load_rows_rejected",
            "Rows refused by every load, by reason (rows that could not be stored truthfully).",
            labels=["domain", "reason"],
        )
        for domain, reason, count in conn.execute(
            f"SELECT domain, r.key, sum(r.value::bigint) FROM {SCHEMA}.load_quality, "
            "jsonb_each_text(rejected) AS r GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            rejected.add_metric([domain, reason], int(count))
        yield rejected

        gates = CounterMetricFamily(
            "finops_quality_gate_failures",
            "Month loads a quality gate refused (the month kept its previous rows).",
            labels=["domain", "gate"],
        )
        failures = {(d, g): 0 for d in DOMAINS for g in GATES}
        for domain, gate, count in conn.execute(
            f"SELECT domain, gate, count(*) FROM {SCHEMA}.load_quality WHERE gate IS NOT NULL GROUP BY 1, 2"
        ):
            failures[(domain, gate)] = int(count)
        for (domain, gate), count in failures.items():
            gates.add_metric([domain, gate], count)
        yield gates

    def _failures(self, conn: psycopg.Connection, now: datetime) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "finops_failure_signature_runs",
            f"Runs that failed with each cause (failure signature, GET /failures) over the last "
            f"{FAILURE_DAYS} days; the {FAILURE_SIGNATURES} most frequent.",
            labels=["signature", "kind"],
        )
        for signature, kind, count in conn.execute(
            f"SELECT signature, min(kind), count(*) FROM {SCHEMA}.failures "
            "WHERE failed_at >= %s - make_interval(days => %s) "
            "GROUP BY signature ORDER BY count(*) DESC, max(failed_at) DESC, signature LIMIT %s",
            (now, FAILURE_DAYS, FAILURE_SIGNATURES),
        ):
            runs.add_metric([signature, kind], int(count))
        yield runs

    def _runs(self, conn: psycopg.Connection) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "finops_runs", "FinOps batch runs, by admin status and trigger.", labels=["status", "trigger"]
        )
        counts = {(s, t): 0 for s in RUN_STATUSES for t in TRIGGERS}
        for status, trigger, n in conn.execute(
            f"SELECT status, trigger, sum(n) FROM {SCHEMA}.run_counts GROUP BY 1, 2"
        ):
            counts[(status, trigger)] = int(n)
        for (status, trigger), n in counts.items():
            runs.add_metric([status, trigger], n)
        yield runs

        row = conn.execute(
            f"SELECT count(*), extract(epoch FROM min(coalesce(start_time, created_time))) "
            f"FROM {SCHEMA}.runs WHERE active"
        ).fetchone()
        in_progress, oldest = (int(row[0]), float(row[1] or 0)) if row else (0, 0.0)
        yield GaugeMetricFamily("finops_runs_in_progress", "Runs queued or running.", value=in_progress)
        yield GaugeMetricFamily(
            "finops_run_oldest_in_progress_start_timestamp_seconds",
            "When the oldest run still queued or running started (or was queued); 0 when none is.",
            value=oldest,
        )
        row = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.runs WHERE mapping_version < %s", (MAPPING_VERSION,)
        ).fetchone()
        yield GaugeMetricFamily(
            "finops_readmodel_runs_to_reproject",
            "Runs stored by an older version of the mapping, re-projected in the background after an "
            "upgrade (0 when done).",
            value=int(row[0]) if row else 0,
        )

        buckets = ", ".join(f"count(*) FILTER (WHERE duration_seconds <= {b})" for b in DURATION_BUCKETS)
        row = conn.execute(
            f"SELECT {buckets}, count(*), coalesce(sum(duration_seconds), 0) FROM {SCHEMA}.runs "
            "WHERE NOT active AND duration_seconds IS NOT NULL"
        ).fetchone()
        values = list(row) if row else [0] * (len(DURATION_BUCKETS) + 2)
        histogram = HistogramMetricFamily("finops_run_duration_seconds", "Duration of finished runs.")
        histogram.add_metric(
            [],
            buckets=[(f"{b:g}", int(v)) for b, v in zip(DURATION_BUCKETS, values, strict=False)]
            + [("+Inf", int(values[len(DURATION_BUCKETS)]))],
            sum_value=float(values[len(DURATION_BUCKETS) + 1]),
        )
        yield histogram

    # --- Dagster ---------------------------------------------------------------------------

    def _dagster(self, watermark: float | None) -> Iterator[Metric]:
        assert self.source is not None
        refreshed = GaugeMetricFamily(
            "finops_mv_last_refresh_timestamp_seconds",
            "When a dashboard MV was last refreshed.",
            labels=["mv"],
        )
        duration = GaugeMetricFamily(
            "finops_mv_refresh_duration_seconds", "How long the MV's last refresh took.", labels=["mv"]
        )
        keys = [AssetKey([ASSET_KEY_PREFIX, mv]) for mv in MATERIALIZED_VIEWS]
        for key, entry in self.source.latest_materializations(keys).items():
            mv = key.path[-1]
            refreshed.add_metric([mv], float(entry.timestamp))
            event = entry.dagster_event
            materialization = getattr(getattr(event, "event_specific_data", None), "materialization", None)
            seconds: Any = getattr(materialization, "metadata", {}).get(MvMeta.REFRESH_SECONDS)
            seconds = getattr(seconds, "value", seconds)
            if isinstance(seconds, int | float):
                duration.add_metric([mv], float(seconds))
        yield refreshed
        yield duration

        newest = self.source.newest_update()
        lag = 0.0
        if newest is not None and watermark is not None:
            lag = max(0.0, newest.timestamp() - watermark)
        elif newest is not None:  # nothing projected yet: behind since that change
            lag = max(0.0, time.time() - newest.timestamp())
        yield GaugeMetricFamily(
            "finops_readmodel_lag_seconds",
            "How far the read model is behind Dagster's newest FinOps run change (0 when caught up).",
            value=lag,
        )

        beats = GaugeMetricFamily(
            "finops_dagster_daemon_heartbeat_timestamp_seconds",
            "Each Dagster daemon's last heartbeat.",
            labels=["daemon"],
        )
        for daemon, timestamp in sorted(self.source.daemon_heartbeats().items()):
            beats.add_metric([daemon], float(timestamp))
        yield beats


def render(store: ReadModel, source: DagsterReader | None, sources: Sequence[Source] = ()) -> bytes:
    """The whole exposition, collected now."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FinopsCollector(store, source, sources=sources))
    return generate_latest(registry)
