"""Compute log captures of a run, from its LOGS_CAPTURED events (pure).

Dagster writes one LOGS_CAPTURED event each time a process starts capturing
its stdout/stderr: with the multiprocess executor one per step process (and
one more per retry), in process one for the whole run, covering every step.
The event's `file_key` names the capture; the compute log manager stores it
under the log key `[run_id, "compute_logs", file_key]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagster import DagsterEventType, EventLogEntry

__all__ = ["Capture", "captures_from_entries"]


@dataclass(frozen=True)
class Capture:
    """One process's captured stdout/stderr, as Dagster recorded it."""

    file_key: str
    step_keys: tuple[str, ...]
    timestamp: float
    external_stdout_url: str | None = None
    external_stderr_url: str | None = None

    @property
    def title(self) -> str:
        if len(self.step_keys) == 1:
            return f"step {self.step_keys[0]}"
        if not self.step_keys:
            return "run process"
        return "steps " + ", ".join(self.step_keys)

    @property
    def shared(self) -> bool:
        """Several steps wrote into this capture (in-process execution): it cannot be split by step."""
        return len(self.step_keys) > 1


def captures_from_entries(entries: Iterable[EventLogEntry]) -> list[Capture]:
    """The captures recorded in a run's events, in the order they started (duplicates dropped)."""
    found: dict[str, Capture] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None or event.event_type != DagsterEventType.LOGS_CAPTURED:
            continue
        data = event.logs_captured_data
        file_key = str(getattr(data, "file_key", "") or "")
        if not file_key or file_key in found:
            continue
        steps: Sequence[str] = getattr(data, "step_keys", None) or []
        found[file_key] = Capture(
            file_key=file_key,
            step_keys=tuple(str(s) for s in steps),
            timestamp=entry.timestamp,
            external_stdout_url=getattr(data, "external_stdout_url", None),
            external_stderr_url=getattr(data, "external_stderr_url", None),
        )
    return sorted(found.values(), key=lambda c: c.timestamp)
