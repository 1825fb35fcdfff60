"""A step never outlives its run.

Two guards, both used by the load ops:

- `die_with_parent()`: a step process of the multiprocess executor asks Linux to kill it when
  the run worker that spawned it dies (PR_SET_PDEATHSIG), so a killed or OOM-killed worker
  takes its steps with it instead of leaving them to commit on their own.
- `ensure_run_alive()`: checked inside the load transaction, right before its commit. A run
  that is no longer STARTED in Dagster storage (failed by run monitoring, canceled) or whose
  status cannot be read (storage unreachable) never commits rows.

`process_alive()` is the process check behind the run launcher's worker health check.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import DagsterInstance

__all__ = ["RunNotAlive", "die_with_parent", "ensure_run_alive", "process_alive", "process_start_time"]

_PR_SET_PDEATHSIG = 1


class RunNotAlive(RuntimeError):
    """The run this step belongs to is not STARTED any more (or its status cannot be read)."""


def _prctl_pdeathsig(sig: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """In a process spawned by `multiprocessing` (a multiprocess-executor step), be killed with
    `sig` when the parent dies. Does nothing in a run worker or an in-process run, whose parent
    is a code server, a test runner or a shell. True when the guard is in place."""
    parent = multiprocessing.parent_process()
    if parent is None or not _prctl_pdeathsig(sig):
        return False
    # The parent may have died before prctl: then we were re-parented already.
    if parent.pid is not None and os.getppid() != parent.pid:
        os.kill(os.getpid(), sig)
    return True


def ensure_run_alive(instance: DagsterInstance, run_id: str) -> None:
    """Raise RunNotAlive unless the run is STARTED in Dagster storage right now."""
    from dagster import DagsterRunStatus

    try:
        run = instance.get_run_by_id(run_id)
    except Exception as exc:  # storage unreachable: the run's state is unknown, never commit
        raise RunNotAlive(
            f"run {run_id}: Dagster storage does not answer ({type(exc).__name__}); "
            "the load is rolled back, its previous rows are kept"
        ) from None
    status = run.status if run is not None else None
    if status != DagsterRunStatus.STARTED:
        shown = status.value if status is not None else "missing"
        raise RunNotAlive(
            f"run {run_id} is {shown} in Dagster, not STARTED: the load is rolled back, "
            "its previous rows are kept"
        )


def _clock_ticks() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def _boot_time() -> float | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return text[text.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> float | None:
    """The process's start as a Unix time (Linux), None when unknown."""
    fields = _proc_stat(pid)
    boot = _boot_time()
    if fields is None or boot is None:
        return None
    return boot + int(fields[19]) / _clock_ticks()


def process_alive(pid: int, *, started_before: float | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, when `started_before` is given, started before
    that time (so a recycled pid is not taken for the original process)."""
    if pid <= 0:
        return False
    if os.path.isdir("/proc"):
        fields = _proc_stat(pid)
        if fields is None or fields[0] in ("Z", "X", "x"):
            return False
        if started_before is not None:
            start = process_start_time(pid)
            if start is not None and start > started_before:
                return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` has exited; True if it did within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return not process_alive(pid)
