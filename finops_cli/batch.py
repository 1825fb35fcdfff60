"""`finops batch`: submit a manual run to the Dagster instance and follow it.

The run is submitted through the instance's run coordinator (`dagster job launch`), so the
daemon launches it in a run worker of its own: closing the terminal, Ctrl-C or killing this
command stops only the following, never the run. `--local` executes the run in this process
instead (no daemon needed); the run then carries this process's id, so run monitoring fails
it if the process dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from finops_pipeline.contract import JOB_NAME

__all__ = ["execute_here", "follow_run", "submit_run", "workspace_file"]

LOCATION_NAME = "finops"
_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
_QUEUED_NOTICE_SECONDS = 20.0


def workspace_file() -> Path:
    """$DAGSTER_HOME/workspace.yaml when present (`finops dev` writes it), else the packaged one."""
    home = os.environ.get("DAGSTER_HOME")
    if home and (Path(home) / "workspace.yaml").is_file():
        return Path(home) / "workspace.yaml"
    return Path(str(resources.files("finops_cli") / "templates" / "workspace.yaml"))


def submit_run(run_config: dict[str, Any], tags: dict[str, str], *, workspace: Path | None = None) -> str:
    """Submit a finops_batch run to the instance's run coordinator; its run id."""
    run_id = str(uuid.uuid4())
    dagster = Path(sys.executable).parent / "dagster"
    argv = [
        str(dagster) if dagster.exists() else "dagster",
        "job", "launch", "-w", str(workspace or workspace_file()), "-l", LOCATION_NAME, "-j", JOB_NAME,
        "--config-json", json.dumps(run_config), "--tags", json.dumps(tags), "--run-id", run_id,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise RuntimeError(
            f"Dagster did not accept the run (dagster job launch exited {done.returncode}):\n{tail}"
        )
    return run_id


def _say(message: str) -> None:
    with contextlib.suppress(OSError):  # the terminal is gone: keep following silently
        print(message, flush=True)


def follow_run(run_id: str, *, poll_seconds: float = 1.0, out: Callable[[str], None] = _say) -> str:
    """Print the run's status changes and step outcomes until it ends; its final Dagster status."""
    from dagster import DagsterEventType, DagsterInstance

    step_events = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}
    shown_status = None
    cursor = None
    queued_since = time.monotonic()
    with DagsterInstance.get() as instance:
        while True:
            try:
                run = instance.get_run_by_id(run_id)
            except Exception as exc:  # storage briefly unreachable: the run is not ours to judge
                out(f"  Dagster storage does not answer ({type(exc).__name__}); retrying")
                time.sleep(max(poll_seconds, 5.0))
                continue
            if run is None:
                raise RuntimeError(f"run {run_id} is not in Dagster storage")
            status = run.status.value
            if status != shown_status:
                out(f"run {run_id}: {status}")
                shown_status = status
            if status == "QUEUED" and time.monotonic() - queued_since > _QUEUED_NOTICE_SECONDS:
                out("  still queued: the Dagster daemon launches queued runs (is `dagster-daemon run` up?)")
                queued_since = float("inf")
            try:
                records = instance.get_records_for_run(run_id, cursor=cursor, of_type=step_events, limit=100)
            except Exception:
                records = None
            if records is not None:
                cursor = records.cursor
                for record in records.records:
                    event = record.event_log_entry.dagster_event
                    if event is not None:
                        what = event.event_type_value.replace("STEP_", "").lower()
                        out(f"  {event.step_key}: {what}")
            if status in _FINISHED:
                return status
            time.sleep(poll_seconds)


def execute_here(run_config: dict[str, Any], tags: dict[str, str]) -> tuple[str, bool]:
    """Execute the run in this process (`--local`); its id and whether it succeeded."""
    from dagster import DagsterInstance, execute_job, reconstructable

    from finops_pipeline.definitions import finops_batch_job
    from finops_pipeline.launcher import worker_tags

    # A terminal closing sends SIGHUP: the run goes on, its output is lost.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with DagsterInstance.get() as instance:
        result = execute_job(
            reconstructable(finops_batch_job),
            instance=instance,
            run_config=run_config,
            tags={**tags, **worker_tags(os.getpid())},
        )
        return result.run_id, result.success
