"""The only code that reads Dagster: runs, events and compute logs, through public APIs.

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
  types the mapping reads are fetched (`MAPPED_EVENT_TYPES`), with the run's
  LOGS_CAPTURED events (about one a run) in the same query, for the failure excerpt
  (`PROJECTED_EVENT_TYPES`): a query of its own cost more than the mapping's;
- compute logs are read with `ComputeLogManager.get_log_data_for_type` at an offset
  and a byte limit, so memory stays flat whatever the log size: it is the one read
  method every manager implements (local, dagster-aws S3 and the other cloud
  managers, which fetch the object into their local folder, then read it the same
  way). `read_log_lines_for_log_key_prefix` is not used: it loads whole files.
  Keys come only from Dagster's records (LOGS_CAPTURED events, the execution plan),
  never from a request.
"""

from __future__ import annotations

import logging
import typing
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import sqlalchemy.exc
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    EventLogEntry,
    EventLogRecord,
    RunRecord,
    RunsFilter,
)

from finops_admin_plugin.mapping.captures import Capture, captures_from_entries
from finops_admin_plugin.mapping.runs import MAPPED_EVENT_TYPES
from finops_pipeline.contract import JOB_NAME

__all__ = [
    "CHUNK_BYTES",
    "EVENT_PAGE",
    "PROJECTED_EVENT_TYPES",
    "DagsterReader",
    "DagsterUnavailable",
    "RunEvents",
]

log = logging.getLogger(__name__)

# What dagster-webserver uses by default: a held connection per storage, 15 s per statement.
STATEMENT_TIMEOUT_MS = 15_000
POOL_RECYCLE_SECONDS = 3600
POOL_MAX_OVERFLOW = 10


CHUNK_BYTES: Final = 1024 * 1024
# Events per storage call: every read pages the same way, so a long run's log is never held whole.
EVENT_PAGE: Final = 1000
_TAIL_BLOCK: Final = 64 * 1024
_TAIL_MAX_BYTES: Final = 1024 * 1024
# What a run's projection reads: the mapping's events, and the compute log captures the failure
# excerpt of a FAILED run looks up.
PROJECTED_EVENT_TYPES: Final = MAPPED_EVENT_TYPES | {DagsterEventType.LOGS_CAPTURED}


class DagsterUnavailable(Exception):
    """Dagster's run or event storage, or the compute log storage, failed: the caller answers 503.

    The one error every read raises; the message names the storage and the error's kind, never
    the driver's text (the server log has it).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(exc: BaseException) -> str:
    # Driver text names hosts and socket paths: the server log has it, the caller gets the kind.
    text = " ".join(str(exc).split())
    if text:
        log.warning("%s: %s", type(exc).__name__, text[:1000])
    return type(exc).__name__


def _plan_order(steps: Sequence[Any]) -> list[str]:
    """Step keys of an execution plan snapshot, upstream steps first (the snapshot sorts by name)."""
    upstream = {
        step.key: {
            handle.step_key for step_input in step.inputs for handle in step_input.upstream_output_handles
        }
        for step in steps
    }
    depth: dict[str, int] = {}

    def depth_of(key: str, seen: frozenset[str] = frozenset()) -> int:
        if key not in depth:
            parents = [p for p in upstream.get(key, ()) if p in upstream and p not in seen]
            depth[key] = 1 + max((depth_of(p, seen | {key}) for p in parents), default=-1)
        return depth[key]

    return sorted(upstream, key=lambda key: (depth_of(key), key))


# Resolving the hints evaluates the module's annotations: about 0.5 ms, so once per manager class
# rather than once per read (a tail reads a log about twenty times).
_IO_TYPE_ENUMS: dict[Any, Any] = {}


def _io_type(manager: Any, stream: Literal["stdout", "stderr"]) -> Any:
    """The `io_type` value for `stream` that `get_log_data_for_type` takes.

    Dagster exports no name for that enum, so it is taken from the public method's own
    signature rather than imported from a private module.
    """
    try:
        kind = type(manager)
        enum = _IO_TYPE_ENUMS.get(kind)
        if enum is None:
            enum = _IO_TYPE_ENUMS[kind] = typing.get_type_hints(kind.get_log_data_for_type)["io_type"]
        return enum.STDOUT if stream == "stdout" else enum.STDERR
    except Exception as exc:
        raise DagsterUnavailable(
            f"the compute log manager {type(manager).__name__} does not read logs by stream: {_describe(exc)}"
        ) from exc


class RunEvents:
    """A run's events of the types the mapping reads (`entries`), its LOGS_CAPTURED events
    (`captured`), and the storage id of the last of them (the projection version)."""

    __slots__ = ("captured", "entries", "last_id")

    def __init__(
        self, entries: list[EventLogEntry], last_id: int, captured: list[EventLogEntry] | None = None
    ) -> None:
        self.entries = entries
        self.last_id = last_id
        self.captured = captured or []


class DagsterReader:
    """One Dagster instance, read: run records, events, execution plans, compute logs."""

    def __init__(self, instance: DagsterInstance, *, owns_instance: bool = False) -> None:
        self.instance = instance
        self._owns_instance = owns_instance

    @classmethod
    def from_home(cls, dagster_home: str) -> DagsterReader:
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
        try:
            return self.instance.get_run_record_by_id(run_id)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DagsterUnavailable(f"Dagster's run storage does not answer ({_describe(exc)})") from exc

    def _records(self, run_id: str, of_type: set[DagsterEventType] | None) -> Iterator[EventLogRecord]:
        """The run's event records in order, `EVENT_PAGE` per storage call: the one pager."""
        cursor: str | None = None
        while True:
            try:
                page = self.instance.get_records_for_run(
                    run_id, cursor=cursor, of_type=of_type, limit=EVENT_PAGE
                )
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise DagsterUnavailable(
                    f"Dagster's event storage does not answer ({_describe(exc)})"
                ) from exc
            yield from page.records
            if not page.has_more or not page.records:
                return
            cursor = page.cursor

    def events(self, run_id: str) -> RunEvents:
        """The run's events a projection reads, in one pass; `last_id` versions that projection."""
        entries: list[EventLogEntry] = []
        captured: list[EventLogEntry] = []
        last_id = 0
        for record in self._records(run_id, set(PROJECTED_EVENT_TYPES)):
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is not None and event.event_type == DagsterEventType.LOGS_CAPTURED:
                captured.append(entry)
            else:
                entries.append(entry)
            last_id = max(last_id, record.storage_id)
        return RunEvents(entries, last_id, captured)

    def last_event_id(self, run_id: str) -> int:
        """Storage id of the run's newest projected event (0 when none): cheap change detection.

        Same event types as `events`, so a run whose new events cannot change its view
        (log lines, engine events) is not projected again.
        """
        page = self.instance.get_records_for_run(
            run_id, of_type=set(PROJECTED_EVENT_TYPES), limit=1, ascending=False
        )
        return page.records[0].storage_id if page.records else 0

    def newest_update(self) -> datetime | None:
        """When a FinOps run record last changed (what the read model must catch up with)."""
        records = self.instance.get_run_records(
            filters=RunsFilter(job_name=JOB_NAME), limit=1, order_by="update_timestamp", ascending=False
        )
        return records[0].update_timestamp if records else None

    def latest_materializations(self, keys: Sequence[AssetKey]) -> dict[AssetKey, EventLogEntry]:
        """The newest materialization event of each asset that has one."""
        found = self.instance.get_latest_materialization_events(keys)
        return {key: entry for key, entry in found.items() if entry is not None}

    def daemon_heartbeats(self) -> dict[str, float]:
        """Each Dagster daemon's last heartbeat (epoch seconds), by daemon type."""
        return {name: beat.timestamp for name, beat in self.instance.get_daemon_heartbeats().items()}

    def check(self) -> str:
        """'ok' when the run storage answers (for /healthz)."""
        try:
            self.instance.get_run_records(limit=1)
        except Exception as exc:  # any failure is reported as unavailable, never raised
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    # --- Dagster's run and event storage ---------------------------------------------------------

    def iter_events(
        self, run_id: str, *, of_type: set[DagsterEventType] | None = None
    ) -> Iterator[EventLogEntry]:
        """The run's events in order, a page at a time (a long run's log is never held whole)."""
        for record in self._records(run_id, of_type):
            yield record.event_log_entry

    def captures(self, run_id: str) -> list[Capture]:
        return captures_from_entries(self.iter_events(run_id, of_type={DagsterEventType.LOGS_CAPTURED}))

    def step_keys(self, run: DagsterRun) -> list[str]:
        """The steps of the run's execution plan (every step it could run), in plan order."""
        keys: list[str] = []
        snapshot_id = run.execution_plan_snapshot_id
        if snapshot_id:
            try:
                keys = _plan_order(self.instance.get_execution_plan_snapshot(snapshot_id).steps)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise DagsterUnavailable(f"Dagster's run storage does not answer ({_describe(exc)})") from exc
            except Exception:  # an unreadable snapshot degrades to the steps seen in events
                log.warning("execution plan snapshot %s of run %s unreadable", snapshot_id, run.run_id)
        if not keys:
            for entry in self.iter_events(run.run_id):
                step = entry.step_key
                if step and step not in keys:
                    keys.append(step)
        return keys

    # --- compute logs ----------------------------------------------------------------------------

    def log_key(self, run_id: str, capture: Capture) -> list[str]:
        return list(self.instance.compute_log_manager.build_log_key_for_run(run_id, capture.file_key))

    def _read(
        self, run_id: str, capture: Capture, stream: Literal["stdout", "stderr"], offset: int, size: int
    ) -> bytes | None:
        """`size` bytes at `offset`; None when the storage has no such log (never written, or expired)."""
        manager: Any = self.instance.compute_log_manager
        log_key = self.log_key(run_id, capture)
        io_type = _io_type(manager, stream)
        # Cloud managers (S3, GCS, Azure) copy an object into a local folder before reading it;
        # a copy that failed half-way would later pass for the whole log, so it is removed.
        fetching = hasattr(manager, "has_local_file") and not manager.has_local_file(log_key, io_type)
        try:
            data, _ = manager.get_log_data_for_type(log_key, io_type, offset, size)
        except Exception as exc:
            if fetching:
                self._drop_local_copy(manager, log_key)
            raise DagsterUnavailable(
                f"the compute log storage failed reading the {stream} of {capture.title} "
                f"(file key {capture.file_key}): {_describe(exc)}"
            ) from exc
        return data

    @staticmethod
    def _drop_local_copy(manager: Any, log_key: list[str]) -> None:
        local = getattr(manager, "local_manager", None)
        if local is None:
            return
        try:
            local.delete_logs(log_key=log_key)
        except Exception:
            log.warning("could not remove the partial local copy of compute log %s", "/".join(log_key))

    def exists(self, run_id: str, capture: Capture, stream: Literal["stdout", "stderr"]) -> bool:
        """Whether the storage holds this stream (reads one byte: a failing storage raises here)."""
        return self._read(run_id, capture, stream, 0, 1) is not None

    def chunks(
        self,
        run_id: str,
        capture: Capture,
        stream: Literal["stdout", "stderr"],
        chunk_bytes: int = CHUNK_BYTES,
    ) -> Iterator[bytes]:
        """The stream's bytes, `chunk_bytes` at a time."""
        offset = 0
        while True:
            data = self._read(run_id, capture, stream, offset, chunk_bytes)
            if not data:
                return
            offset += len(data)
            yield data

    def _size(self, run_id: str, capture: Capture, stream: Literal["stdout", "stderr"]) -> int:
        """The stream's length, found with one-byte reads (galloping, then bisection): the read
        API has no size, and reading a large log forward only to keep its end would be slow."""
        if not self._read(run_id, capture, stream, 0, 1):
            return 0
        low, high = 0, _TAIL_BLOCK  # a byte exists at `low`; `high` is probed next
        while self._read(run_id, capture, stream, high, 1):
            low, high = high, high * 4
        while high - low > 1:  # invariant: byte at `low` exists, none at `high`
            middle = (low + high) // 2
            if self._read(run_id, capture, stream, middle, 1):
                low = middle
            else:
                high = middle
        return high

    def tail(
        self, run_id: str, capture: Capture, stream: Literal["stdout", "stderr"], max_lines: int
    ) -> list[str] | None:
        """The last `max_lines` lines of a stream (None when it is not in storage)."""
        if self._read(run_id, capture, stream, 0, 1) is None:
            return None
        end = self._size(run_id, capture, stream)
        start = end
        data = b""
        while start > 0 and data.count(b"\n") <= max_lines and end - start < _TAIL_MAX_BYTES:
            start = max(0, start - _TAIL_BLOCK)
            data = self._read(run_id, capture, stream, start, end - start) or b""
        lines = data.decode("utf-8", errors="replace").splitlines()
        if start > 0 and lines:
            lines = lines[1:]  # the first line was cut by the block boundary
        return list(deque(lines, maxlen=max_lines))

    def failures(self, run_id: str) -> Sequence[EventLogEntry]:
        return list(self.iter_events(run_id, of_type={DagsterEventType.STEP_FAILURE}))

    # --- following a run while it runs (`?follow=true`) --------------------------------------------

    def event_records_after(
        self, run_id: str, cursor: str | None, limit: int = EVENT_PAGE
    ) -> tuple[list[EventLogRecord], str | None, bool]:
        """The run's event records after `cursor` (None: from its first), at most `limit`; the
        cursor past them (the same one when none is new) and whether more are already stored."""
        try:
            page = self.instance.get_records_for_run(run_id, cursor=cursor, limit=limit)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise DagsterUnavailable(f"Dagster's event storage does not answer ({_describe(exc)})") from exc
        if not page.records:
            return [], cursor, False
        return list(page.records), page.cursor, page.has_more

    def read(
        self, run_id: str, capture: Capture, stream: Literal["stdout", "stderr"], offset: int, size: int
    ) -> bytes | None:
        """`size` bytes of a stream at `offset` (fewer at its current end); None when the storage
        holds none of it yet, or no longer."""
        return self._read(run_id, capture, stream, offset, size)

    def capture_complete(self, run_id: str, capture: Capture) -> bool:
        """Whether the process has stopped writing this capture (its stdout and stderr are final)."""
        manager: Any = self.instance.compute_log_manager
        try:
            return bool(manager.is_capture_complete(self.log_key(run_id, capture)))
        except Exception as exc:
            raise DagsterUnavailable(
                f"the compute log storage failed saying whether {capture.title} (file key "
                f"{capture.file_key}) is complete: {_describe(exc)}"
            ) from exc
