"""A run launcher whose run workers are health-checked: a dead worker fails its run at once.

Dagster's `DefaultRunLauncher` starts each run worker as a process of the code server, but
does no health check, so run monitoring can only apply the maximum runtime (hours) to a run
whose worker was killed. `FinopsRunLauncher` launches exactly like it and adds the check: the
daemon's run monitoring calls `check_run_worker_health` for every STARTED run each poll
interval, and fails the run when the worker's process is gone.

The worker is found from the run itself:
- a run launched through the instance (daemon, webserver, sensor, schedule, `finops batch`):
  the worker's "Started process for run (pid: N)" engine event, checked when its code server
  runs on this host (a daemon-managed code server, or one on loopback);
- a run executed by a process of its own (`finops batch --local`): the tags `WORKER_PID_TAG`
  and `WORKER_HOST_TAG` it sets.
A worker on another host cannot be checked from here and counts as running (the maximum
runtime still applies).
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Mapping
from typing import Any, Self

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._serdes.config_class import ConfigurableClassData

from finops_pipeline.liveness import process_alive

__all__ = ["WORKER_HOST_TAG", "WORKER_PID_TAG", "FinopsRunLauncher", "worker_tags"]

log = logging.getLogger(__name__)

WORKER_PID_TAG = "finops/worker_pid"
WORKER_HOST_TAG = "finops/worker_host"
_GRPC_INFO_TAG = "dagster/grpc_info"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}
_WORKER_STARTED = ("Started process for run", "Started process for resuming job")
# A process that started after the run did (plus this margin) is a recycled pid.
_START_MARGIN_SECONDS = 5.0


def worker_tags(pid: int) -> dict[str, str]:
    """Tags of a run executed by process `pid` of this host (`finops batch --local`)."""
    return {WORKER_PID_TAG: str(pid), WORKER_HOST_TAG: socket.gethostname()}


class FinopsRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher plus a run-worker health check by process id."""

    def __init__(self, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> Self:
        return cls(inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        try:
            found = self._worker(run)
        except Exception as exc:  # storage hiccup: decide on the next poll
            log.warning("run %s: worker not checked (%s)", run.run_id, type(exc).__name__)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not checked", transient=True)
        if found is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker not checkable from this host")
        pid, what = found
        started = self._run_start(run)
        limit = started + _START_MARGIN_SECONDS if started is not None else None
        if process_alive(pid, started_before=limit):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"{what} (pid {pid} on {socket.gethostname()}) is gone: it exited without ending the "
            "run (killed, out of memory, or cut off from its database). Its steps were stopped "
            "with it and committed nothing; launch the run again.",
            run_worker_id=str(pid),
        )

    def _run_start(self, run: DagsterRun) -> float | None:
        record = self._instance.get_run_record_by_id(run.run_id)
        if record is None:
            return None
        return record.start_time or record.create_timestamp.timestamp()

    def _worker(self, run: DagsterRun) -> tuple[int, str] | None:
        tags = run.tags
        if WORKER_PID_TAG in tags:
            if tags.get(WORKER_HOST_TAG) != socket.gethostname():
                return None
            return int(tags[WORKER_PID_TAG]), "the process executing the run"
        grpc = json.loads(tags.get(_GRPC_INFO_TAG) or "{}")
        if not grpc or str(grpc.get("host", "")) not in _LOCAL_HOSTS:
            return None
        entries = self._instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        for entry in reversed(entries):
            if entry.message.startswith(_WORKER_STARTED) and entry.dagster_event is not None:
                data = entry.dagster_event.engine_event_data
                pid = data.metadata.get("pid") if data is not None else None
                if pid is not None:
                    return int(str(getattr(pid, "value", pid))), "the run worker"
        return None
