"""`finops dev` stops its PostgreSQL however often it was restarted (`pg_ctl restart`).

pgserver stops at exit only the postmaster it started: after a restart the server runs under
another process, which the stack must still stop, by its data dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from finops_cli.devstack import DevStack
from finops_pipeline.liveness import process_alive
from tests.support import free_port, require


def _postmaster(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def _serving(pgdata: Path) -> list[int]:
    """Every process whose command line names the data dir (a postmaster started with -D)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        if str(pgdata).encode() in argv:
            found.append(int(entry.name))
    return found


def _pg_ctl(pgdata: Path, *args: str) -> None:
    import pgserver

    # As root, pgserver runs PostgreSQL as its own unprivileged user; pg_ctl must too.
    kwargs = {"user": "pgserver"} if os.geteuid() == 0 else {}
    pgserver.pg_ctl(list(args), pgdata=pgdata, **kwargs)  # type: ignore[attr-defined]


def test_dev_stack_stops_its_postgres_after_two_restarts(tmp_path: Path) -> None:
    try:
        import pgserver  # noqa: F401
    except ImportError:  # pragma: no cover
        require(False, "pgserver is not installed")
    stack = DevStack(str(tmp_path / "state"), api_port=free_port(), dagster_port=free_port(), seed=False)
    stack.home.mkdir(parents=True)
    pgdata = stack.home / "pgdata"
    stack._start_postgres()
    first = _postmaster(pgdata)
    try:
        for _ in range(2):
            _pg_ctl(pgdata, "-w", "-m", "fast", "restart")
        postmaster = _postmaster(pgdata)
        assert postmaster is not None and postmaster != first and process_alive(postmaster)

        stack._stop_children()  # what `finops dev` runs on Ctrl-C, SIGTERM or a failed start

        assert not process_alive(postmaster), "PostgreSQL still runs after finops dev stopped"
        assert _postmaster(pgdata) is None
        assert _serving(pgdata) == []
    finally:
        left = _postmaster(pgdata)
        if left is not None and process_alive(left):  # a failed test must not leave it running
            _pg_ctl(pgdata, "-w", "-m", "immediate", "stop")


def test_dev_stack_stop_is_quiet_when_postgres_was_never_started(tmp_path: Path) -> None:
    stack = DevStack(str(tmp_path / "state"), api_port=free_port(), dagster_port=free_port(), seed=False)
    stack._stop_children()  # nothing started: nothing to stop, no error
    assert _postmaster(stack.home / "pgdata") is None
