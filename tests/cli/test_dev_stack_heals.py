"""`finops dev` heals and leaves nothing behind.

Started the way a script starts a background job (SIGINT ignored), the stack restarts a
killed API and a killed daemon (saying so), then stops on SIGINT. Started again, it stops on
SIGTERM; and killed with SIGKILL, its servers (API, Dagster webserver and daemon, the
embedded PostgreSQL) die with it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from finops_pipeline.liveness import process_alive
from tests.support import free_port

pytestmark = pytest.mark.timeout(600)


class Dev:
    """`finops dev --no-seed` started by `sh -c '... & wait'`: SIGINT ignored, like a script's job."""

    def __init__(self, home: Path) -> None:
        self.api_port, self.dagster_port = free_port(), free_port()
        command = (
            f"exec {sys.executable} -m finops_cli dev --home {home} --api-port {self.api_port} "
            f"--dagster-port {self.dagster_port} --no-seed"
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name in ("FINOPS_DATABASE_URL", "FINOPS_LANDING_URI", "DAGSTER_HOME", "FINOPS_AUTH_MODE"):
            env.pop(name, None)
        # A non-interactive shell starts `&` jobs with SIGINT and SIGQUIT ignored.
        self.shell = subprocess.Popen(
            ["sh", "-c", f"{command} & echo $! ; wait"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.shell.stdout is not None
        self.pid = int(self.shell.stdout.readline())
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.shell.stdout is not None
        for line in self.shell.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.2)
        pytest.fail(f"no line matching {pattern!r}:\n" + "\n".join(self.lines[-40:]))

    def child_pids(self) -> dict[str, int]:
        pids: dict[str, int] = {}
        for line in self.lines:
            if found := re.search(r"started (\S+) \(pid (\d+)\)", line):
                pids[found[1]] = int(found[2])
        return pids

    def healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.api_port}/finops/admin/healthz"
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.status == 200
        except OSError:
            return False

    def close(self) -> None:
        if process_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.shell.wait(30)


def _sigint_ignored(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(re.search(r"SigIgn:\s*([0-9a-f]+)", status)[1], 16)  # type: ignore[index]
    return bool(ignored & (1 << (signal.SIGINT - 1)))


def test_a_script_starts_background_jobs_with_sigint_ignored() -> None:
    """The condition `finops dev` must handle: what `sh -c 'finops dev & wait'` gives it."""
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; wait"], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    assert shell.stdout is not None
    job = int(shell.stdout.readline())
    try:
        deadline = time.monotonic() + 5  # the job sets its dispositions right after the fork
        while not _sigint_ignored(job) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sigint_ignored(job)
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(10)


def _gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if process_alive(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return [p for p in pids if process_alive(p)]


def _described(pids: list[int]) -> list[str]:
    """Each pid with its command line, so that a failure names what survived."""
    described = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = "?"
        described.append(f"{pid} {command.strip()[:200]}")
    return described


def _postmaster(home: Path) -> int | None:
    pid_file = home / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"
    postmaster = _postmaster(tmp_path / "state")
    if postmaster and process_alive(postmaster):  # a failed test must not leave PostgreSQL running
        os.kill(postmaster, signal.SIGTERM)


def test_dev_stack_restarts_crashed_children_and_stops_on_sigint(home: Path) -> None:
    dev = Dev(home)
    try:
        dev.wait_for("Ctrl-C stops everything", 300)
        for name in ("finops-api", "dagster-daemon"):
            old = dev.child_pids()[name]
            mark = len(dev.lines)
            os.kill(old, signal.SIGKILL)
            dev.wait_for(rf"{name} \(pid {old}\) exited with code -9; restarting it", 30, mark)
            found = dev.wait_for(rf"started {name} \(pid (\d+)\)", 30, mark)
            assert int(found[1]) != old and process_alive(int(found[1]))
        deadline = time.monotonic() + 60
        while not dev.healthy() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert dev.healthy(), "the restarted API does not answer"
        children = list(dev.child_pids().values())
        os.kill(dev.pid, signal.SIGINT)
        assert dev.shell.wait(60) == 0
        assert not _gone([dev.pid, *children], 30)
        assert any("SIGINT: stopping" in line for line in dev.lines), dev.lines[-10:]
    finally:
        dev.close()


def test_dev_stack_stops_on_sigterm_and_its_servers_die_when_it_is_killed(home: Path) -> None:
    dev = Dev(home)
    try:
        dev.wait_for("Ctrl-C stops everything", 300)
        children = list(dev.child_pids().values())
        os.kill(dev.pid, signal.SIGTERM)
        assert dev.shell.wait(60) == 0
        assert not _gone(children, 30)
        assert any("SIGTERM: stopping" in line for line in dev.lines)
    finally:
        dev.close()

    dev = Dev(home)
    try:
        dev.wait_for("Ctrl-C stops everything", 300)
        children = list(dev.child_pids().values())
        postmaster = _postmaster(home)
        assert postmaster and process_alive(postmaster)
        assert len(children) == 4, dev.child_pids()  # API, webserver, daemon, PostgreSQL's reaper
        os.kill(dev.pid, signal.SIGKILL)
        dev.shell.wait(30)
        left = _gone([*children, postmaster], 45)
        assert not left, f"still running after finops dev was killed: {_described(left)}"
        assert not dev.healthy()
    finally:
        dev.close()
