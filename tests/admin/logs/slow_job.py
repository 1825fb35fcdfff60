"""A slow stand-in for the FinOps batch, to follow its logs while it runs.

Named like the batch (`finops_batch`, step `load_open`) so the admin API serves it as a FinOps
run; its one step prints a numbered line every `interval` seconds. `start_slow_run` launches it
in a process of its own (as the Dagster daemon would), with the multiprocess executor: the step
runs in a child process whose stdout the compute log manager captures.

    python -m tests.admin.logs.slow_job DAGSTER_HOME MARK LINES INTERVAL
"""

# No `from __future__ import annotations`: Dagster reads the op's `context` annotation as a type.
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, OpExecutionContext, RunsFilter, execute_job, job, op, reconstructable

from finops_pipeline.contract import JOB_NAME

__all__ = ["LINE", "MARK_TAG", "SlowRun", "slow_batch", "slow_run_config", "start_slow_run"]

MARK_TAG = "finops-test/follow-mark"
LINE = "slow line {i:03d} of {lines}"
_ROOT = Path(__file__).resolve().parents[3]


@op(name="load_open", config_schema={"lines": int, "interval": float})
def slow_load(context: OpExecutionContext) -> None:
    lines, interval = context.op_config["lines"], context.op_config["interval"]
    for i in range(lines):
        # flush: a step's stdout is a file, block-buffered otherwise (the line would wait for 8 KiB)
        print(LINE.format(i=i, lines=lines), flush=True)
        time.sleep(interval)


@job(name=JOB_NAME)
def slow_batch() -> None:
    slow_load()


def slow_run_config(lines: int, interval: float) -> dict[str, Any]:
    return {"ops": {"load_open": {"config": {"lines": lines, "interval": interval}}}}


class SlowRun:
    """A slow run being executed by its own process."""

    def __init__(self, process: subprocess.Popen[Any], run_id: str) -> None:
        self.process = process
        self.run_id = run_id

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)


def start_slow_run(
    instance: DagsterInstance, home: Path, mark: str, *, lines: int = 12, interval: float = 0.3
) -> SlowRun:
    """Launch the slow run; returns once Dagster has its record (its id known)."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.admin.logs.slow_job", str(home), mark, str(lines), str(interval)],
        cwd=_ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=RunsFilter(tags={MARK_TAG: mark}), limit=1)
        if runs:
            return SlowRun(process, runs[0].run_id)
        assert process.poll() is None, f"the slow run's process exited with {process.returncode}"
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the slow run was not created within 60 s")


def _main(home: str, mark: str, lines: str, interval: str) -> int:
    instance = DagsterInstance.from_config(home)
    result = execute_job(
        reconstructable(slow_batch),
        instance=instance,
        run_config=slow_run_config(int(lines), float(interval)),
        tags={MARK_TAG: mark},
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:5]))
