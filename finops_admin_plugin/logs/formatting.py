"""Text of the log attachment: the structured event log and the section headers (pure).

An event is one line, `time level step type message`, continued by indented
lines for a multi-line message or an error (with its stack and causes):

    2026-11-24T02:50:05.580Z DEBUG    load_open                  STEP_START            Started execution ...
    2026-11-24T02:50:05.678Z INFO     load_open                  -                     Open 2026-11: 1500 ...
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from dagster import EventLogEntry

__all__ = [
    "SECTION_RULE",
    "attachment_preamble",
    "error_lines",
    "format_event",
    "format_time",
    "section_header",
]

SECTION_RULE: Final = "====="
_STEP_WIDTH: Final = 26  # refresh_materialized_views, the longest step key of the batch
_INDENT: Final = "    "


def format_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _level_name(level: Any) -> str:
    if isinstance(level, int):
        name = logging.getLevelName(level)
        return name if isinstance(name, str) and not name.startswith("Level ") else str(level)
    return str(level).upper()


def error_lines(error: Any) -> list[str]:
    """A Dagster `SerializableErrorInfo` as lines: message, stack, then each cause and context."""
    lines: list[str] = []
    seen = 0
    while error is not None and seen < 10:  # a cause chain is short; guard against a cycle anyway
        seen += 1
        message = str(getattr(error, "message", "") or "").rstrip()
        lines.extend(message.splitlines() or [str(getattr(error, "cls_name", "") or "error")])
        stack = getattr(error, "stack", None) or []
        if stack:
            lines.append("Stack Trace:")
            for frame in stack:
                lines.extend(str(frame).rstrip("\n").splitlines())
        error = getattr(error, "cause", None) or getattr(error, "context", None)
        if error is not None:
            lines.append("The above exception was caused by:")
    return lines


def _event_error(entry: EventLogEntry) -> Any:
    event = entry.dagster_event
    if event is None:
        return None
    return getattr(event.event_specific_data, "error", None)


def format_event(entry: EventLogEntry) -> str:
    """One event (with its continuation lines), newline-terminated."""
    event = entry.dagster_event
    kind = event.event_type_value if event is not None else "-"
    step = entry.step_key or (event.step_key if event is not None else None) or "-"
    message_lines = (entry.user_message or "").splitlines() or [""]
    head = (
        f"{format_time(entry.timestamp)} {_level_name(entry.level):<8} {step:<{_STEP_WIDTH}} "
        f"{kind:<21} {message_lines[0]}"
    ).rstrip()
    rest = [*message_lines[1:]]
    error = _event_error(entry)
    if error is not None:
        rest.extend(error_lines(error))
    return "\n".join([head, *(_INDENT + line if line else "" for line in rest)]) + "\n"


def section_header(title: str, detail: str | None = None) -> str:
    """A line that opens a section; the blank line before it keeps sections apart."""
    suffix = f" ({detail})" if detail else ""
    return f"\n{SECTION_RULE} {title}{suffix} {SECTION_RULE}\n"


def attachment_preamble(
    run_id: str,
    job_name: str,
    status: str,
    *,
    step: str | None,
    stream: str,
    notes: Sequence[str] = (),
) -> str:
    lines = [
        f"# FinOps batch run {run_id} (Dagster job {job_name}, status {status})",
        f"# selection: step={step or 'all'} stream={stream}",
        f"# generated {format_time(datetime.now(UTC).timestamp())}",
        "# sections: the event log, then the stdout and stderr of each step process, in start order",
        *(f"# {note}" for note in notes),
    ]
    return "\n".join(lines) + "\n"
