"""`python -m finops_cli.reaper PGDATA`: stops the embedded PostgreSQL when `finops dev` dies.

PostgreSQL runs detached from `finops dev` (pg_ctl starts it), so the kernel's parent-death
signal cannot reach it. `finops dev` starts this small process with that signal set instead:
when `finops dev` is killed outright, the kernel sends it SIGTERM and it stops the server.
On a normal stop `finops dev` kills it with SIGKILL and stops PostgreSQL itself.

Like a normal stop, PostgreSQL is stopped after its clients: the kernel sends SIGTERM to the
API, the Dagster webserver and daemon at the same moment, and a daemon whose database went
away first spends its shutdown retrying connections (about 20 s). `finops dev` keeps their pids
in `CLIENTS_FILE` beside the data dir; this waits for them, at most `CLIENTS_GRACE_SECONDS`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finops_pipeline.liveness import process_alive  # a zombie (exited, not reaped) counts as gone

__all__ = ["CLIENTS_FILE", "CLIENTS_GRACE_SECONDS", "main", "stop_postgres", "wait_for_clients"]

CLIENTS_FILE = "dev-children.pids"
CLIENTS_GRACE_SECONDS = 15.0  # as long as a normal stop gives them


def stop_postgres(pgdata: str) -> None:
    import pgserver

    # As root, pgserver runs PostgreSQL as its own unprivileged user; pg_ctl must too.
    options: dict[str, Any] = {"user": "pgserver"} if os.geteuid() == 0 else {}
    try:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, **options)  # type: ignore[attr-defined]
    except Exception as exc:  # already stopped, or never started
        print(f"[finops dev] PostgreSQL in {pgdata} not stopped: {exc}", file=sys.stderr, flush=True)


def wait_for_clients(pgdata: str, timeout: float = CLIENTS_GRACE_SECONDS) -> None:
    """Wait until the processes listed in `CLIENTS_FILE` (beside `pgdata`) have exited."""
    try:
        pids = [int(p) for p in (Path(pgdata).parent / CLIENTS_FILE).read_text().split()]
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def main(argv: Sequence[str]) -> int:
    pgdata = argv[0]
    # SIGTERM is blocked (by `finops dev` before this program starts, again here when run by
    # hand) and taken with `sigwait`: a SIGTERM that comes early waits instead of killing this
    # process before it can stop PostgreSQL, and nothing runs inside a signal handler (an import
    # there, interrupted, once left pgserver half initialized and PostgreSQL running).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import pgserver  # noqa: F401  # imported before it is needed

    signal.sigwait({signal.SIGTERM})
    wait_for_clients(pgdata)
    stop_postgres(pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
