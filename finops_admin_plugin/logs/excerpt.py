"""The excerpt of a failed run: its failing step, the end of that step's stderr, the error message.

Shown in the run detail (`logs.excerpt`), so the cause is readable without a
download. Never raises: when the logs are gone or the storage fails, the
excerpt keeps the error message from Dagster's event log and says why the
output is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Final

from dagster import DagsterEventType, DagsterRunStatus, EventLogEntry, RunRecord

from finops_admin_plugin.dagster_reader import DagsterReader, DagsterUnavailable, RunEvents
from finops_admin_plugin.mapping.captures import captures_from_entries
from finops_admin_plugin.models import LogExcerpt

__all__ = ["EXCERPT_LINES", "build_excerpt", "excerpt_lines", "failing_step", "failure_message_lines"]

log = logging.getLogger(__name__)

EXCERPT_LINES: Final = 40
LINE_WIDTH: Final = 500
_ERROR_RULE: Final = "-- error --"


def failure_message_lines(entry: EventLogEntry) -> list[str]:
    """The error of a failure event without its stack: its message, then each cause's."""
    event = entry.dagster_event
    error = getattr(event.event_specific_data, "error", None) if event is not None else None
    lines: list[str] = []
    depth = 0
    while error is not None and depth < 10:
        depth += 1
        message = str(getattr(error, "message", "") or "").strip()
        if message:
            lines.extend(message.splitlines() if not lines else ["caused by: " + message.splitlines()[0]])
        error = getattr(error, "cause", None)
    return lines or [(entry.user_message or "").strip() or "failed (Dagster recorded no message)"]


def excerpt_lines(
    tail: Sequence[str] | None,
    message: Sequence[str],
    *,
    note: str | None = None,
    limit: int = EXCERPT_LINES,
) -> list[str]:
    """The tail of the step's stderr, then the error message unless the tail already shows it."""
    lines = [line[:LINE_WIDTH] for line in (tail or [])][-limit:]
    if note:
        lines.append(note)
    first = message[0].strip() if message else ""
    if not first or not any(first[:200] in line for line in lines):
        lines.append(_ERROR_RULE)
        lines.extend(line[:LINE_WIDTH] for line in message[:limit])
    return lines


# The events that tell which step failed (all of them among the mapping's: `PROJECTED_EVENT_TYPES`).
_STEP_OUTCOMES: Final = frozenset(
    {
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
        DagsterEventType.STEP_SKIPPED,
        DagsterEventType.RUN_FAILURE,
    }
)


def failing_step(entries: Iterable[EventLogEntry]) -> tuple[str, EventLogEntry] | None:
    """The first step that failed; else a step that started and never ended (with the run failure).

    `entries`: the run's events in order; any other event types among them are skipped.
    """
    first_failure: EventLogEntry | None = None
    started: dict[str, None] = {}
    run_failure: EventLogEntry | None = None
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.RUN_FAILURE:
            run_failure = entry
        elif kind == DagsterEventType.STEP_START and event.step_key:
            started[event.step_key] = None
        elif kind in _STEP_OUTCOMES and event.step_key:
            started.pop(event.step_key, None)
        if kind == DagsterEventType.STEP_FAILURE and first_failure is None:
            first_failure = entry
    if first_failure is not None:
        event = first_failure.dagster_event
        step = first_failure.step_key or (event.step_key if event else None)
        if step:
            return step, first_failure
    if started and run_failure is not None:
        return list(started)[-1], run_failure
    return None


def build_excerpt(
    source: DagsterReader,
    run_id: str,
    *,
    max_lines: int = EXCERPT_LINES,
    record: RunRecord | None = None,
    events: RunEvents | None = None,
) -> LogExcerpt | None:
    """The failing step and its last lines for a FAILED run; None otherwise (or when none is to blame).

    `record` and `events` (`DagsterReader.events`): what the caller has just read of the run (the
    projector), else read here. With both, only the compute log storage is read: reading the
    failures and the captures again cost a FAILED run more than its whole projection.
    """
    try:
        if record is None:
            record = source.run_record(run_id)
        if record is None or record.dagster_run.status != DagsterRunStatus.FAILURE:
            return None
        entries = (
            events.entries if events is not None else source.iter_events(run_id, of_type=set(_STEP_OUTCOMES))
        )
        found = failing_step(entries)
        if found is None:
            return None
        step_key, failure = found
        message = failure_message_lines(failure)
        recorded = captures_from_entries(events.captured) if events is not None else source.captures(run_id)
        captures = [c for c in recorded if step_key in c.step_keys]
    except DagsterUnavailable as exc:
        log.warning("no log excerpt for run %s: %s", run_id, exc.message)
        return None
    tail: list[str] | None = None
    note: str | None = None
    if not captures:
        note = f"(no compute logs were captured for {step_key})"
    else:
        try:
            # The latest capture of the step: a retried step's last attempt is the one that failed.
            tail = source.tail(run_id, captures[-1], "stderr", max_lines)
            if tail is None:
                note = f"(the stderr of {step_key} is no longer in the compute log storage)"
        except DagsterUnavailable as exc:
            note = f"(the stderr of {step_key} could not be read: {exc.message})"
    return LogExcerpt(step_key=step_key, lines=excerpt_lines(tail, message, note=note, limit=max_lines))
