"""`python -m finops_cli.reaper PGDATA`: stops the embedded PostgreSQL when `finops dev` dies.

PostgreSQL runs detached from `finops dev` (pg_ctl starts it), so the kernel's parent-death
signal cannot reach it. `finops dev` starts this small process with that signal set instead:
when `finops dev` is killed outright, the kernel sends it SIGTERM and it stops the server.
On a normal stop `finops dev` kills it with SIGKILL and stops PostgreSQL itself.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def stop_postgres(pgdata: str) -> None:
    import pgserver

    # As root, pgserver runs PostgreSQL as its own unprivileged user; pg_ctl must too.
    options: dict[str, Any] = {"user": "pgserver"} if os.geteuid() == 0 else {}
    try:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, **options)  # type: ignore[attr-defined]
    except Exception as exc:  # already stopped, or never started
        print(f"[finops dev] PostgreSQL in {pgdata} not stopped: {exc}", file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    pgdata = argv[0]

    def on_term(_signum: int, _frame: Any) -> None:
        stop_postgres(pgdata)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
