"""Keeps the read model current by following Dagster through public `DagsterInstance` APIs.

Each tick (about once a second):
1. runs whose Dagster record changed since the watermark (`RunsFilter(updated_after=...)`,
   looking back `LOOKBACK_SECONDS` because Dagster stamps a run with the time of
   its event, which it writes before the run row) are mapped and upserted;
2. runs the read model still shows as QUEUED/RUNNING are re-mapped when their
   event log grew (step events do not touch the run record);
3. runs stored by an older version of the mapping (`MAPPING_VERSION`, after an
   upgrade) are re-projected, newest first, for at most `CATCH_UP_SECONDS` a tick:
   an upgrade needs no `finops reindex`, and the views of recent runs come first.
Several API processes may run a projector: a PostgreSQL advisory lock lets one
work per tick, and the upsert is guarded by a (event id, update time) version,
so an older projection never overwrites a newer one.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
from dagster import RunRecord

from finops_admin_plugin.dagster_reader import DagsterReader, RunEvents
from finops_admin_plugin.logs import build_excerpt
from finops_admin_plugin.mapping.runs import map_run_detail
from finops_admin_plugin.models import LogExcerpt, RunDetailResponse
from finops_admin_plugin.readmodel.leader import Leadership
from finops_admin_plugin.readmodel.pool import ReadModelUnavailable
from finops_admin_plugin.readmodel.schema import LOCK_CLASS, PROJECTOR_LOCK
from finops_admin_plugin.readmodel.store import ReadModel
from finops_admin_plugin.readmodel.writes import Projected

__all__ = ["CATCH_UP_SECONDS", "LOOKBACK_SECONDS", "Projector"]

log = logging.getLogger(__name__)

LOOKBACK_SECONDS = 5.0
BATCH = 500
CATCH_UP_SECONDS = 0.5  # per tick: new runs and status changes are never kept waiting long
CATCH_UP_BATCH = 50


class Projector:
    def __init__(
        self,
        source: DagsterReader,
        store: ReadModel,
        *,
        interval: float = 1.0,
        leadership: Leadership | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.interval = interval
        # With several API replicas, only the leader's projector works (the others stand by).
        self.leadership = leadership
        self.catch_up_batch = CATCH_UP_BATCH
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # --- one pass -----------------------------------------------------------------------

    def project(self, conn: psycopg.Connection, record: RunRecord, *, score: bool = True) -> bool:
        run_id = record.dagster_run.run_id
        events = self.source.events(run_id)
        detail = map_run_detail(record, events.entries)
        return self.store.save(
            conn,
            detail,
            dagster_updated=record.update_timestamp.timestamp(),
            event_id=events.last_id,
            excerpt=self._excerpt(record, detail, events),
            score=score,
        )

    def _excerpt(self, record: RunRecord, detail: RunDetailResponse, events: RunEvents) -> LogExcerpt | None:
        """The failure excerpt of an ended FAILED run, stored with its detail: its compute logs no
        longer change, and reading them (with the event log) on every request cost most of a detail.
        Built from the events just read for the mapping: only the step's stderr is read."""
        if detail.status != "FAILED":
            return None
        return build_excerpt(self.source, record.dagster_run.run_id, record=record, events=events)

    def follow_updates(
        self, conn: psycopg.Connection, *, score: bool = True, lookback: float = LOOKBACK_SECONDS
    ) -> int:
        """Project every run changed since the watermark; returns how many were written."""
        watermark = self.store.watermark(conn)
        after = (
            datetime.fromtimestamp(watermark, tz=UTC) - timedelta(seconds=lookback)
            if watermark is not None
            else None
        )
        written = 0
        while True:
            records = list(self.source.runs_updated_after(after, BATCH))
            if not records:
                return written
            known = self.store.versions(conn, [r.dagster_run.run_id for r in records])
            for record in records:
                stored = known.get(record.dagster_run.run_id)
                if stored is not None and stored.dagster_updated >= record.update_timestamp.timestamp():
                    # Already projected; an active run's new step events are `refresh_active`'s job.
                    continue
                written += self._project_safely(conn, record, score=score)
            newest = records[-1].update_timestamp
            self.store.set_watermark(conn, newest.timestamp())
            if len(records) < BATCH:
                return written
            # A full batch: continue just before the newest stamp, so runs sharing it are not skipped.
            next_after = newest - timedelta(microseconds=1)
            if after is not None and next_after <= after:
                next_after = newest
            after = next_after

    def refresh_active(self, conn: psycopg.Connection) -> int:
        """Re-project in-progress runs whose event log grew since their last projection."""
        written = 0
        for run_id, event_id in self.store.active_runs(conn):
            if self.source.last_event_id(run_id) == event_id:
                continue
            record = self.source.run_record(run_id)
            if record is None:
                self.store.delete_run(conn, run_id)  # deleted from Dagster
                continue
            written += self._project_safely(conn, record)
        return written

    def catch_up(self, conn: psycopg.Connection, budget_seconds: float = CATCH_UP_SECONDS) -> int:
        """Re-project runs stored by an older mapping, newest first, until the budget is spent."""
        deadline = time.monotonic() + budget_seconds
        written = 0
        for run_id in self.store.stale_runs(conn, self.catch_up_batch):
            record = self.source.run_record(run_id)
            if record is None:
                self.store.delete_run(conn, run_id)  # deleted from Dagster
            elif self._project_safely(conn, record):
                written += 1
            else:  # logged by _project_safely; it keeps its last projection, and is not retried
                self.store.mark_mapped(conn, run_id)
            if time.monotonic() >= deadline:
                break
        return written

    def _project_safely(self, conn: psycopg.Connection, record: RunRecord, *, score: bool = True) -> bool:
        # One run Dagster stores in an unexpected shape must not stall every other run.
        try:
            return self.project(conn, record, score=score)
        except (ReadModelUnavailable, psycopg.OperationalError):
            raise
        except Exception:
            log.exception(
                "read model: cannot project run %s; it stays as last projected", record.dagster_run.run_id
            )
            return False

    def tick(self) -> int:
        """One projection pass; 0 when another process holds the projector lock."""
        with self.store.projector_lock() as conn:
            if conn is None:
                return 0
            return self.follow_updates(conn) + self.refresh_active(conn) + self.catch_up(conn)

    def reindex(self) -> int:
        """Rebuild everything from Dagster: map every run, then score anomalies oldest first.

        Runs are read in pages of `BATCH` by update time and each page is written
        with COPY (`ReadModel.insert_new`); anomalies are scored in one pass at
        the end, then the tables are vacuumed and analyzed (`ReadModel.vacuum`).
        The watermark is then the newest update seen, so the projectors of running
        API processes continue from there.
        """
        with self.store.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK))
            try:
                self.store.truncate(conn)
                seen: set[str] = set()
                after: datetime | None = None
                newest: datetime | None = None
                while True:
                    records = [
                        r
                        for r in self.source.runs_updated_after(after, BATCH)
                        if r.dagster_run.run_id not in seen
                    ]
                    if not records:
                        break
                    projected = []
                    for record in records:
                        seen.add(record.dagster_run.run_id)
                        mapped = self._map_safely(record)
                        if mapped is not None:
                            projected.append(mapped)
                    self.store.insert_new(conn, projected)
                    newest = records[-1].update_timestamp
                    # Continue just before the newest stamp: runs sharing it are not skipped (`seen`
                    # drops the ones already written).
                    after = newest - timedelta(microseconds=1)
                if newest is not None:
                    self.store.set_watermark(conn, newest.timestamp())
                self.store.rescore_all(conn)
                self.store.vacuum(conn)
                return len(seen)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, PROJECTOR_LOCK))

    def _map_safely(self, record: RunRecord) -> Projected | None:
        run_id = record.dagster_run.run_id
        try:
            events = self.source.events(run_id)
            detail = map_run_detail(record, events.entries)
            return Projected(
                detail,
                dagster_updated=record.update_timestamp.timestamp(),
                event_id=events.last_id,
                excerpt=self._excerpt(record, detail, events),
            )
        except (ReadModelUnavailable, psycopg.OperationalError):
            raise
        except Exception:
            log.exception("read model: cannot project run %s; it is left out of the reindex", run_id)
            return None

    # --- background thread --------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="finops-admin-projector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.leadership is not None and not self.leadership.is_leader:
                self._stop.wait(self.interval)
                continue
            try:
                self.tick()
                self.last_error = None
            except ReadModelUnavailable as exc:
                self._report(f"read model unavailable: {exc}")
            except Exception as exc:  # keep following: one bad tick must not stop the projector
                self._report(f"{type(exc).__name__}: {exc}", exc_info=True)
            self._stop.wait(self.interval)

    def _report(self, message: str, exc_info: bool = False) -> None:
        if message != self.last_error:
            log.warning("read model projector: %s", message, exc_info=exc_info)
        self.last_error = message
