"""Reading a run's logs through Dagster's public APIs: its event records and its compute log manager.

The only module of the logs package with I/O. Keys come only from Dagster's
records (LOGS_CAPTURED events and the run's execution plan), never from a
request. Compute logs are read with `ComputeLogManager.get_log_data_for_type`
at an offset and a byte limit, so memory stays flat whatever the log size; it
is the one read method every manager implements (`LocalComputeLogManager`,
dagster-aws `S3ComputeLogManager` and the other cloud managers, which fetch
the object into their local folder, then read it the same way).
`read_log_lines_for_log_key_prefix` is not used: it loads whole files.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Final, Literal

import sqlalchemy.exc
from dagster import DagsterEventType, DagsterInstance, DagsterRun, EventLogEntry
from dagster._core.storage.compute_log_manager import ComputeIOType

from finops_admin_plugin.logs.captures import Capture, captures_from_entries

__all__ = ["CHUNK_BYTES", "LogStorageUnavailable", "RunLogSource"]

log = logging.getLogger(__name__)

CHUNK_BYTES: Final = 1024 * 1024
EVENT_PAGE: Final = 1000
_IO_TYPES: Final = {"stdout": ComputeIOType.STDOUT, "stderr": ComputeIOType.STDERR}
_TAIL_BLOCK: Final = 64 * 1024
_TAIL_MAX_BYTES: Final = 1024 * 1024


class LogStorageUnavailable(Exception):
    """Dagster's storage or the compute log storage failed: the caller should answer 503."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


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


class RunLogSource:
    """A run's records and compute logs on one Dagster instance."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance

    # --- Dagster's run and event storage ---------------------------------------------------------

    def run(self, run_id: str) -> DagsterRun | None:
        try:
            return self.instance.get_run_by_id(run_id)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise LogStorageUnavailable(f"Dagster's run storage does not answer ({_describe(exc)})") from exc

    def events(self, run_id: str, *, of_type: set[DagsterEventType] | None = None) -> Iterator[EventLogEntry]:
        """The run's events in order, a page at a time (a long run's log is never held whole)."""
        cursor: str | None = None
        while True:
            try:
                page = self.instance.get_records_for_run(
                    run_id, cursor=cursor, of_type=of_type, limit=EVENT_PAGE
                )
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise LogStorageUnavailable(
                    f"Dagster's event storage does not answer ({_describe(exc)})"
                ) from exc
            for record in page.records:
                yield record.event_log_entry
            if not page.has_more or not page.records:
                return
            cursor = page.cursor

    def captures(self, run_id: str) -> list[Capture]:
        return captures_from_entries(self.events(run_id, of_type={DagsterEventType.LOGS_CAPTURED}))

    def step_keys(self, run: DagsterRun) -> list[str]:
        """The steps of the run's execution plan (every step it could run), in plan order."""
        keys: list[str] = []
        snapshot_id = run.execution_plan_snapshot_id
        if snapshot_id:
            try:
                keys = _plan_order(self.instance.get_execution_plan_snapshot(snapshot_id).steps)
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise LogStorageUnavailable(
                    f"Dagster's run storage does not answer ({_describe(exc)})"
                ) from exc
            except Exception:  # an unreadable snapshot degrades to the steps seen in events
                log.warning("execution plan snapshot %s of run %s unreadable", snapshot_id, run.run_id)
        if not keys:
            for entry in self.events(run.run_id):
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
        io_type = _IO_TYPES[stream]
        # Cloud managers (S3, GCS, Azure) copy an object into a local folder before reading it;
        # a copy that failed half-way would later pass for the whole log, so it is removed.
        fetching = hasattr(manager, "has_local_file") and not manager.has_local_file(log_key, io_type)
        try:
            data, _ = manager.get_log_data_for_type(log_key, io_type, offset, size)
        except Exception as exc:
            if fetching:
                self._drop_local_copy(manager, log_key)
            raise LogStorageUnavailable(
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
        return list(self.events(run_id, of_type={DagsterEventType.STEP_FAILURE}))
