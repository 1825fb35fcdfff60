"""Following a run's logs as they are written (`GET /runs/{runId}/logs?follow=true`).

Like `kubectl logs -f`: what the storages hold first, then what is written next, until the run
(or the selected step) ends. `LogFollower.poll` is one look at Dagster (blocking reads, which the
route runs in a worker thread); between looks the route sleeps on the event loop, so an idle
follower holds neither a thread nor a database connection.

The text is the download's (`download.py`): a preamble, event lines, stdout and stderr bytes as
Dagster stored them, under section headers. Sections interleave in the order the run writes
them: each time the text switches between the event log and a process's stdout or stderr, a
header says which. While a process still writes, only whole lines are sent, so a header never
cuts a line (a line longer than a read goes out in pieces).

Where the compute logs are:
- local (`LocalComputeLogManager`): the files grow as the step process writes them;
- S3/MinIO (dagster-aws `S3ComputeLogManager`) and the other cloud managers: the step process
  writes locally and uploads the partial file every `upload_interval` seconds (under a
  `.partial` key) when that option is set, the whole file when the step ends. Reads of a
  capture still being written fetch the latest upload (whole: the manager has no ranged read,
  so a poll costs one download per stream being written); without `upload_interval` a step's
  output appears when it ends.
Either way a capture is final once its manager says it is complete (`is_capture_complete`).

Memory stays flat whatever the log size: reads are `READ_BYTES` at an offset, and one poll sends
about `POLL_BYTES` at most (more is left for the next poll, without waiting).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from dagster import DagsterEventType, DagsterRun, EventLogEntry

from finops_admin_plugin.dagster_reader import CHUNK_BYTES, DagsterReader
from finops_admin_plugin.logs.download import RunNotFound, prepare_download
from finops_admin_plugin.logs.formatting import attachment_preamble, format_event, section_header
from finops_admin_plugin.logs.selection import LogSelection, select_logs
from finops_admin_plugin.mapping.captures import Capture, captures_from_entries

__all__ = [
    "FINISH_GRACE_SECONDS",
    "POLL_BYTES",
    "READ_BYTES",
    "FollowState",
    "LogFollower",
    "prepare_follow",
]

log = logging.getLogger(__name__)

# A cloud manager fetches a partial log whole on each read (dagster-aws downloads the `.partial`
# object, then reads it at the offset): one large read per poll, not many small ones.
READ_BYTES: Final = CHUNK_BYTES
POLL_BYTES: Final = 2 * CHUNK_BYTES
# After the run (or step) ends, how long its captures may take to be marked complete (a cloud
# manager's last upload happens as the step process exits): past it the follow ends anyway.
FINISH_GRACE_SECONDS: Final = 5.0
_STEP_ENDS: Final = frozenset(
    {DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_SKIPPED}
)

FollowState = Literal["more", "wait", "done"]
"""After a poll: `more` is already stored (poll again now), `wait` for the run to write, `done`."""


@dataclass
class _Stream:
    """One stdout or stderr of one capture, and how far it has been sent."""

    capture: Capture
    stream: Literal["stdout", "stderr"]
    offset: int = 0
    done: bool = False
    ends_with_newline: bool = True

    @property
    def title(self) -> str:
        return f"{self.capture.title} | {self.stream}"


@dataclass
class _Output:
    parts: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    @property
    def full(self) -> bool:
        return self.size >= POLL_BYTES


class LogFollower:
    """The state of one follow: how far the events and each stream were sent, and whether the
    run or step has ended. Not thread-safe: one poll at a time (the route awaits each)."""

    def __init__(
        self,
        source: DagsterReader,
        run: DagsterRun,
        selection: LogSelection,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.run = run
        self.selection = selection
        self._clock = clock
        self._cursor: str | None = None
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._section: str | None = None
        self._ended_at: float | None = None
        self._end: str | None = None  # what ended, said in the last line

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def preamble(self) -> bytes:
        return attachment_preamble(
            self.run_id,
            self.run.job_name,
            str(getattr(self.run.status, "value", self.run.status)),
            step=self.selection.label,
            stream=self.selection.stream,
            notes=[
                "following: what is stored, then what the run writes next, until it ends; a header "
                "opens each switch between the event log and a process's stdout or stderr",
            ],
        ).encode("utf-8")

    def _enter(self, out: _Output, title: str, detail: str | None = None) -> None:
        if self._section != title:
            self._section = title
            out.add(section_header(title, detail).encode("utf-8"))

    # --- events ----------------------------------------------------------------------------

    def _belongs(self, entry: EventLogEntry, file_keys: set[str]) -> bool:
        if self.selection.step_key is None:
            return True
        event = entry.dagster_event
        step_keys: tuple[str, ...] = (entry.step_key,) if entry.step_key else ()
        if event is not None and event.event_type == DagsterEventType.LOGS_CAPTURED and not step_keys:
            # A capture's own event belongs to the steps it covers.
            if event.logs_captured_data.file_key not in file_keys:
                return False
            step_keys = tuple(event.logs_captured_data.step_keys or ())
        return self.selection.covers(step_keys)

    def _read_events(self, out: _Output) -> bool:
        """New events: captures to follow, the step's end, event lines. True when more are stored."""
        records, self._cursor, more = self.source.event_records_after(self.run_id, self._cursor)
        entries = [record.event_log_entry for record in records]
        for capture in captures_from_entries(entries):
            if not self.selection.covers(capture.step_keys):
                continue
            for io_stream in self.selection.io_streams:
                self._streams.setdefault((capture.file_key, io_stream), _Stream(capture, io_stream))
        file_keys = {key for key, _ in self._streams}
        lines: list[str] = []
        for entry in entries:
            event = entry.dagster_event
            if (
                self.selection.step_key is not None
                and event is not None
                and event.event_type in _STEP_ENDS
                and event.step_key == self.selection.step_key
                and self._end is None
            ):
                self._end = f"step {event.step_key} ended ({event.event_type_value})"
            if self.selection.events and self._belongs(entry, file_keys):
                lines.append(format_event(entry))
        if lines:
            self._enter(out, "event log")
            out.add("".join(lines).encode("utf-8", errors="replace"))
        return more

    # --- compute logs ----------------------------------------------------------------------

    def _read_stream(self, item: _Stream, out: _Output, *, flush: bool) -> bool:
        """New bytes of one stream; True when the poll's budget ran out before its current end."""
        complete = self.source.capture_complete(self.run_id, item.capture)
        while not out.full:
            data = self.source.read(self.run_id, item.capture, item.stream, item.offset, READ_BYTES)
            if not data:
                if complete:
                    item.done = True
                    if data is None and item.offset == 0:
                        self._enter(out, item.title, f"file key {item.capture.file_key}, not in storage")
                    elif not item.ends_with_newline:
                        out.add(b"\n")  # the next header starts on its own line
                        item.ends_with_newline = True
                return False
            if not (complete or flush):
                cut = data.rfind(b"\n") + 1
                if cut == 0 and len(data) < READ_BYTES:
                    return False  # a line still being written: sent once whole
                data = data[: cut or len(data)]
            self._enter(out, item.title, f"file key {item.capture.file_key}")
            out.add(data)
            item.offset += len(data)
            item.ends_with_newline = data.endswith(b"\n")
            if len(data) < READ_BYTES and not complete:
                return False
        return True

    # --- one look --------------------------------------------------------------------------

    def poll(self) -> tuple[bytes, FollowState]:
        """What was written since the last poll, and whether to poll again now, later, or never.

        The run's status is read first: when it has ended, every event and byte read after is
        final. Raises DagsterUnavailable when a storage fails."""
        out = _Output()
        record = self.source.run_record(self.run_id)
        if record is None:
            self._end = self._end or "the run was deleted from Dagster"
        elif record.dagster_run.is_finished and self._end is None:
            status = record.dagster_run.status
            self._end = f"the run ended ({getattr(status, 'value', status)})"
        if self._end is not None and self._ended_at is None:
            self._ended_at = self._clock()
        more = self._read_events(out) if record is not None else False
        if self._end is not None and self._ended_at is None:  # the step's end was just read
            self._ended_at = self._clock()
        late = self._ended_at is not None and self._clock() - self._ended_at > FINISH_GRACE_SECONDS
        for item in self._streams.values():
            if not item.done and not out.full:
                more = self._read_stream(item, out, flush=late) or more
        more = more or out.full
        if self._end is None or more:
            return b"".join(out.parts), "more" if more else "wait"
        pending = [item.title for item in self._streams.values() if not item.done]
        if pending and not late:
            return b"".join(out.parts), "wait"  # the last uploads may still come
        self._section = None
        detail = self._end
        if pending:
            detail += (
                f"; not marked complete {FINISH_GRACE_SECONDS:g} s later, their end may be missing: "
                + ", ".join(pending)
            )
            log.warning("follow of run %s ended with captures still incomplete: %s", self.run_id, pending)
        self._enter(out, "end of log", detail)
        return b"".join(out.parts), "done"

    def timed_out(self, seconds: float) -> bytes:
        """The last line of a follow that reached its time limit."""
        return section_header(
            "end of follow",
            f"still following after {seconds:g} s, the limit (FINOPS_LOG_FOLLOW_MAX_SECONDS); "
            "follow again for what comes next",
        ).encode("utf-8")

    def interrupted(self, message: str) -> bytes:
        return f"\n!!!!! follow interrupted: {message}\n".encode()


def prepare_follow(
    source: DagsterReader,
    run_id: str,
    *,
    step: str | None = None,
    stream: str = "all",
    events_url: str | None = None,
) -> LogFollower:
    """A follower of the selected logs; raises RunNotFound, StepNotInRun, DagsterUnavailable, and
    for a run that has already ended, LogsNotAvailable like the download (nothing will come)."""
    record = source.run_record(run_id)
    if record is None:
        raise RunNotFound(run_id)
    run = record.dagster_run
    if run.is_finished:
        prepare_download(source, run_id, step=step, stream=stream, events_url=events_url)
    return LogFollower(source, run, select_logs(step, stream, run_id, source.step_keys(run)))
