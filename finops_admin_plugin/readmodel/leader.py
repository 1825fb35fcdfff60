"""One leader among the API replicas, for work that must happen once (the read-model projector).

The leader is the process holding a session-level PostgreSQL advisory lock on a
connection of its own, outside the pool. Every replica serves reads; each one
that is not the leader tries to take the lock every `interval` seconds. When the
leader dies its session ends, PostgreSQL releases the lock, and the next try of
another replica takes over: no operator involved. A leader whose connection
breaks (database restart, network) stops leading at once and tries again.

A session lock needs a session: a pooler in transaction mode (PgBouncer
`pool_mode=transaction`) must not sit between the API and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Final

import psycopg

__all__ = ["LEADER_LOCK", "Leadership"]

log = logging.getLogger(__name__)

LEADER_LOCK: Final = 3  # in the read model's advisory lock class (readmodel.schema.LOCK_CLASS)


class Leadership:
    """Holds or waits for the leader lock in a background thread; `is_leader` says which."""

    def __init__(
        self, database_url: str, lock_class: int, *, interval: float = 1.0, name: str = "finops-admin"
    ) -> None:
        self.database_url = database_url
        self.lock_class = lock_class
        self.interval = interval
        self.name = name
        self._conn: psycopg.Connection | None = None
        self._leader = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def wait_until_leader(self, timeout: float) -> bool:
        return self._leader.wait(timeout)

    def check(self) -> bool:
        """One step: keep the lock (the session still answers) or try to take it; returns is_leader."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    self.database_url,
                    autocommit=True,
                    connect_timeout=3,
                    # The pid tells operators (and tests) which process leads, from pg_stat_activity.
                    application_name=f"{self.name} leader {os.getpid()}"[:63],
                    # A dead peer (or network) is noticed within about 15 s on an idle session.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                )
            if self.is_leader:
                self._conn.execute("SELECT 1")
                return True
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (self.lock_class, LEADER_LOCK)
            ).fetchone()
            if row and row[0]:
                self._leader.set()
                log.info("this process now leads (projector and other once-only work)")
            return self.is_leader
        except psycopg.Error as exc:
            if self.is_leader:
                log.warning("leadership lost: its database session failed (%s)", type(exc).__name__)
            self._leader.clear()
            self._close()
            return False

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._leader.clear()
        self._close()  # ends the session: another replica takes over on its next try

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.interval)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail; it is gone
                conn.close()
