"""Which part of a run's logs a download asks for: `step` and `stream` (pure).

`step` is a domain (`open`, any case) or one of the run's step keys; anything
else is refused with the list of the run's steps. The result only ever names
steps taken from Dagster's records of the run, so nothing from the request
reaches a file or object key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from finops_admin_plugin.http.errors import shown
from finops_pipeline.contract import DOMAINS, load_step_key

__all__ = [
    "STREAMS",
    "LogSelection",
    "StepNotInRun",
    "Stream",
    "attachment_filename",
    "select_logs",
]

Stream = Literal["all", "events", "stdout", "stderr"]
STREAMS: Final[tuple[Stream, ...]] = ("all", "events", "stdout", "stderr")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class StepNotInRun(ValueError):
    """`step` names no step of the run."""

    def __init__(self, step: str, run_id: str, run_steps: Sequence[str]) -> None:
        listed = ", ".join(run_steps) if run_steps else "none recorded yet"
        domains = ", ".join(DOMAINS)
        super().__init__(
            f"step {shown(step, 60)} is not a step of run {run_id}; use a domain ({domains}) or one of its "
            f"steps: {listed}"
        )
        self.step = step
        self.run_steps = list(run_steps)


@dataclass(frozen=True)
class LogSelection:
    """The steps (None: the whole run) and streams a download covers."""

    stream: Stream = "all"
    step_key: str | None = None
    domain: str | None = None

    @property
    def events(self) -> bool:
        return self.stream in ("all", "events")

    @property
    def io_streams(self) -> tuple[Literal["stdout", "stderr"], ...]:
        if self.stream == "all":
            return ("stdout", "stderr")
        if self.stream in ("stdout", "stderr"):
            return (self.stream,)  # type: ignore[return-value]
        return ()

    def covers(self, step_keys: Sequence[str]) -> bool:
        """Whether a record about `step_keys` belongs to the selection."""
        return self.step_key is None or self.step_key in step_keys

    @property
    def label(self) -> str | None:
        """The step as the caller named it (domain or step key), for the file name."""
        return self.domain or self.step_key


def select_logs(step: str | None, stream: str, run_id: str, run_steps: Sequence[str]) -> LogSelection:
    """Resolve `step` against the run's steps (raises StepNotInRun) and check `stream`."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}; got {stream!r}")
    chosen: Stream = stream  # type: ignore[assignment]
    if step is None or step == "":
        return LogSelection(stream=chosen)
    domain = step.lower()
    if domain in DOMAINS and load_step_key(domain) in run_steps:
        return LogSelection(stream=chosen, step_key=load_step_key(domain), domain=domain)
    if step in run_steps:
        return LogSelection(stream=chosen, step_key=step)
    raise StepNotInRun(step, run_id, run_steps)


def attachment_filename(run_id: str, selection: LogSelection) -> str:
    """`finops-run-<id>[-<step>].log`, reduced to characters every browser and shell accept."""
    parts = ["finops-run", run_id]
    if selection.label:
        parts.append(selection.label)
    name = "-".join(_UNSAFE_FILENAME.sub("_", part).strip("._") or "_" for part in parts)
    return f"{name[:150]}.log"
