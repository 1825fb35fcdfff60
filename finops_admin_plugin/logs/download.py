"""The log attachment of a run: checked before the first byte is sent, then streamed.

`prepare_download` does every check that decides the HTTP status (the step
exists, the logs were captured and are still in storage, the storage answers)
so a client never receives a 200 that stops half-way for a reason known up
front. `LogDownload.chunks()` then yields the attachment: a short preamble,
the structured event log, and each captured stdout/stderr in the order the
processes started, byte for byte as Dagster stored it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

import sqlalchemy.exc
from dagster import DagsterEventType, DagsterRun

from finops_admin_plugin.dagster_reader import CHUNK_BYTES, DagsterReader, DagsterUnavailable
from finops_admin_plugin.logs.formatting import attachment_preamble, format_event, section_header
from finops_admin_plugin.logs.selection import LogSelection, attachment_filename, select_logs
from finops_admin_plugin.mapping.captures import Capture

__all__ = ["LogDownload", "LogsNotAvailable", "RunNotFound", "prepare_download"]

log = logging.getLogger(__name__)

_BUFFER_BYTES: Final = 64 * 1024
_STALE_RETRIES: Final = 3  # one per Dagster storage pool: runs, events, schedules


class RunNotFound(LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with runId {run_id!r} in Dagster")


class LogsNotAvailable(LookupError):
    """The selected compute logs were never captured, or are no longer in storage."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Part:
    capture: Capture
    stream: Literal["stdout", "stderr"]
    present: bool


@dataclass
class LogDownload:
    source: DagsterReader
    run: DagsterRun
    selection: LogSelection
    parts: list[_Part] = field(default_factory=list)
    chunk_bytes: int = CHUNK_BYTES

    @property
    def filename(self) -> str:
        return attachment_filename(self.run.run_id, self.selection)

    def _preamble(self) -> str:
        notes = []
        if any(p.capture.shared for p in self.parts):
            notes.append(
                "steps that ran in one process share its stdout/stderr: those sections are not split by step"
            )
        if any(not p.present for p in self.parts):
            notes.append("a section marked 'not in storage' was captured but has expired or was deleted")
        return attachment_preamble(
            self.run.run_id,
            self.run.job_name,
            str(getattr(self.run.status, "value", self.run.status)),
            step=self.selection.label,
            stream=self.selection.stream,
            notes=notes,
        )

    def _event_lines(self) -> Iterator[bytes]:
        run_id = self.run.run_id
        shown = {p.capture.file_key for p in self.parts}
        buffer: list[str] = []
        size = 0
        for entry in self.source.iter_events(run_id):
            event = entry.dagster_event
            step_keys: tuple[str, ...] = (entry.step_key,) if entry.step_key else ()
            if event is not None and event.event_type == DagsterEventType.LOGS_CAPTURED and not step_keys:
                # A capture's own event belongs to the steps it covers.
                if self.selection.step_key is not None and event.logs_captured_data.file_key not in shown:
                    continue
                step_keys = tuple(event.logs_captured_data.step_keys or ())
            if self.selection.step_key is not None and not self.selection.covers(step_keys):
                continue
            line = format_event(entry)
            buffer.append(line)
            size += len(line)
            if size >= _BUFFER_BYTES:
                yield "".join(buffer).encode("utf-8", errors="replace")
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer).encode("utf-8", errors="replace")

    def chunks(self) -> Iterator[bytes]:
        """The attachment's bytes. A storage failure after the first byte ends the stream with a
        line saying so, then an error, so the client sees an incomplete transfer."""
        yield self._preamble().encode("utf-8")
        try:
            if self.selection.events:
                yield section_header("event log").encode("utf-8")
                yield from self._event_lines()
            for part in self.parts:
                detail = f"file key {part.capture.file_key}"
                if not part.present:
                    yield section_header(
                        f"{part.capture.title} | {part.stream}", detail + ", not in storage"
                    ).encode()
                    continue
                yield section_header(f"{part.capture.title} | {part.stream}", detail).encode("utf-8")
                last = b"\n"
                for data in self.source.chunks(self.run.run_id, part.capture, part.stream, self.chunk_bytes):
                    last = data
                    yield data
                if not last.endswith(b"\n"):
                    yield b"\n"  # the next header starts on its own line
        except DagsterUnavailable as exc:
            log.error("log download of run %s interrupted: %s", self.run.run_id, exc.message)
            yield f"\n!!!!! download interrupted: {exc.message}\n".encode()
            raise
        except Exception:
            log.exception("log download of run %s interrupted", self.run.run_id)
            yield b"\n!!!!! download interrupted: internal error; the server log has the details\n"
            raise


# What the driver says of a connection the server closed under it (a failure to connect, when
# the database is down, says "connection to server ... failed" instead).
_DROPPED: Final = (
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "connection already closed",
)


def _stale_connection(exc: DagsterUnavailable) -> bool:
    """Whether `exc` came from a pooled connection the database dropped (it restarted)."""
    cause = exc.__cause__
    if not isinstance(cause, sqlalchemy.exc.DBAPIError):
        return False
    # SQLAlchemy marks an error on an open connection that the server closed as invalidated;
    # a failure to connect (the database is down) is not. A query it runs for Dagster while
    # reflecting a table raised the driver's error unmarked once (CI, first log download after a
    # restart): the driver's own words are checked as well.
    return cause.connection_invalidated or any(text in str(cause.orig) for text in _DROPPED)


def prepare_download(
    source: DagsterReader,
    run_id: str,
    *,
    step: str | None = None,
    stream: str = "all",
    events_url: str | None = None,
) -> LogDownload:
    """Check everything a download needs; raises RunNotFound, StepNotInRun, LogsNotAvailable
    (404: never captured or expired) or DagsterUnavailable (503).

    The checks only read, so a failure on a connection the database dropped (it restarted)
    is tried again: SQLAlchemy then discards the connections of before the restart of that
    storage's pool, and the next try opens fresh ones. Dagster's run, event and schedule
    storages each have their own pool, so a download may meet one stale pool after another
    (measured: the run storage, then the event storage, on 2 of 3 API processes): at most one
    more try per storage. A database still down fails with a connection error, not a stale
    one, and is not tried again.
    """
    for attempt in range(_STALE_RETRIES + 1):
        try:
            return _prepare(source, run_id, step=step, stream=stream, events_url=events_url)
        except DagsterUnavailable as exc:
            if attempt == _STALE_RETRIES or not _stale_connection(exc):
                raise
            log.info("log download of run %s: stale storage connection, trying again", run_id)
    raise AssertionError("unreachable")


def _prepare(
    source: DagsterReader,
    run_id: str,
    *,
    step: str | None,
    stream: str,
    events_url: str | None,
) -> LogDownload:
    record = source.run_record(run_id)
    if record is None:
        raise RunNotFound(run_id)
    run = record.dagster_run
    selection = select_logs(step, stream, run_id, source.step_keys(run))
    download = LogDownload(source, run, selection)
    if not selection.io_streams:
        return download
    captures = [c for c in source.captures(run_id) if selection.covers(c.step_keys)]
    where = f"step {selection.step_key}" if selection.step_key else "this run"
    still = f"its event log is still available: {events_url or 'stream=events'}"
    if not captures:
        raise LogsNotAvailable(
            f"no compute logs were captured for {where} of run {run_id} (Dagster recorded no "
            f"LOGS_CAPTURED event: {'it never ran, or ran without capture' if run.is_finished else 'not yet'}"
            f"); {still}"
        )
    for capture in captures:
        for io_stream in selection.io_streams:
            # One-byte reads: a storage that fails answers 503 here, before any byte is sent.
            download.parts.append(_Part(capture, io_stream, source.exists(run_id, capture, io_stream)))
    if not any(part.present for part in download.parts):
        raise LogsNotAvailable(
            f"the compute logs of {where} of run {run_id} ({', '.join(c.file_key for c in captures)}) "
            f"are no longer in the compute log storage: expired or deleted; {still}"
        )
    return download
