"""The only code that queries Dagster: public `DagsterInstance` methods, nothing else.

Facts about the Dagster 1.13 API that shape these queries:
- `get_run_records(cursor=...)` pages by run id and ignores `order_by`, so the
  projector pages by `RunsFilter(updated_after=...)` instead;
- run-list tag filters scan every matching tag row, so the plugin filters in its
  own read model rather than asking Dagster;
- `update_timestamp` is the time of the event that changed the run, written after
  the event itself: a reader must look back a little (see `RunFeed`);
- dagster-postgres opens a new connection for every call unless the instance is
  told it serves reads (`optimize_for_webserver`, what dagster-webserver does):
  4-5 ms per call, more than the query itself;
- deserializing events is most of the cost of reading a run, so only the event
  types the mapping reads are fetched (`MAPPED_EVENT_TYPES`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from dagster import DagsterInstance, EventLogEntry, EventLogRecord, RunRecord, RunsFilter

from finops_admin_plugin.mapping.runs import MAPPED_EVENT_TYPES
from finops_pipeline.contract import JOB_NAME

__all__ = ["DagsterSource", "RunEvents"]

log = logging.getLogger(__name__)

_EVENT_PAGE = 5000
# What dagster-webserver uses by default: a held connection per storage, 15 s per statement.
STATEMENT_TIMEOUT_MS = 15_000
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 10


class RunEvents:
    """A run's event log entries and the storage id of the last one (the projection version)."""

    __slots__ = ("entries", "last_id")

    def __init__(self, entries: list[EventLogEntry], last_id: int) -> None:
        self.entries = entries
        self.last_id = last_id


class DagsterSource:
    def __init__(self, instance: DagsterInstance, *, owns_instance: bool = False) -> None:
        self.instance = instance
        self._owns_instance = owns_instance

    @classmethod
    def from_home(cls, dagster_home: str) -> DagsterSource:
        if not dagster_home:
            raise ValueError(
                "DAGSTER_HOME is not set: point it at the folder holding the Dagster instance's dagster.yaml"
            )
        instance = DagsterInstance.from_config(dagster_home)
        instance.optimize_for_webserver(
            statement_timeout=STATEMENT_TIMEOUT_MS,
            pool_recycle=POOL_RECYCLE_SECONDS,
            max_overflow=POOL_MAX_OVERFLOW,
        )
        return cls(instance, owns_instance=True)

    def close(self) -> None:
        if self._owns_instance:
            self.instance.dispose()

    def runs_updated_after(self, after: datetime | None, limit: int) -> Sequence[RunRecord]:
        """FinOps runs whose record changed after `after`, oldest change first."""
        return self.instance.get_run_records(
            filters=RunsFilter(job_name=JOB_NAME, updated_after=after),
            limit=limit,
            order_by="update_timestamp",
            ascending=True,
        )

    def runs_by_id(self, run_ids: Sequence[str]) -> Sequence[RunRecord]:
        if not run_ids:
            return []
        return self.instance.get_run_records(filters=RunsFilter(run_ids=list(run_ids)))

    def run_record(self, run_id: str) -> RunRecord | None:
        """Any job's run (the caller decides what a non-FinOps run means)."""
        return self.instance.get_run_record_by_id(run_id)

    def events(self, run_id: str) -> RunEvents:
        """The run's events of the types the mapping reads; `last_id` versions that projection."""
        entries: list[EventLogEntry] = []
        cursor: str | None = None
        last_id = 0
        while True:
            page = self.instance.get_records_for_run(
                run_id, cursor=cursor, of_type=set(MAPPED_EVENT_TYPES), limit=_EVENT_PAGE
            )
            records: Sequence[EventLogRecord] = page.records
            entries.extend(r.event_log_entry for r in records)
            if records:
                last_id = max(last_id, records[-1].storage_id)
            if not page.has_more or not records:
                return RunEvents(entries, last_id)
            cursor = page.cursor

    def last_event_id(self, run_id: str) -> int:
        """Storage id of the run's newest mapped event (0 when none): cheap change detection.

        Same event types as `events`, so a run whose new events cannot change its view
        (log lines, engine events) is not projected again.
        """
        page = self.instance.get_records_for_run(
            run_id, of_type=set(MAPPED_EVENT_TYPES), limit=1, ascending=False
        )
        return page.records[0].storage_id if page.records else 0

    def check(self) -> str:
        """'ok' when the run storage answers (for /healthz)."""
        try:
            self.instance.get_run_records(limit=1)
        except Exception as exc:  # any failure is reported as unavailable, never raised
            return f"unavailable: {type(exc).__name__}"
        return "ok"
