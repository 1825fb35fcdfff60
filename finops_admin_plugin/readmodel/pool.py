"""The read model's connection pool, and `ReadModelUnavailable`, what every read and write raises
when its PostgreSQL database does not answer."""

from __future__ import annotations

import logging
import select
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

__all__ = ["CONNECT_TIMEOUT", "Pool", "ReadModelUnavailable"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 5.0  # seconds a request waits for a connection before it is told to retry


class ReadModelUnavailable(RuntimeError):
    """The read model's database does not answer."""


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


def _check(conn: psycopg.Connection) -> None:
    """Checked on checkout, without a round trip while nothing says it is needed.

    An idle connection in autocommit has nothing to read: when its socket is readable, the
    server has written to it (PostgreSQL says "terminating connection" to every client when it
    stops or restarts) or closed it, and only then is the connection checked with an empty
    query (`check_connection`), which fails on a dead one so the pool replaces it. A connection
    whose server vanished without a word fails in the request (a 503 asking to retry), as it
    would have failed the empty query.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


class Pool:
    """Autocommit connections to the read model's database; opened on first use, thread-safe."""

    def __init__(self, database_url: str, *, max_connections: int) -> None:
        self._pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "application_name": "finops-admin"},
            configure=_configure,
            # A pooled connection may have outlived its server (PostgreSQL restarted, a proxy
            # dropped it): checked on checkout, a dead one is replaced before the request sees
            # it, so the first request after a restart answers instead of a 503 (`_check`).
            check=_check,
            open=False,
            name="finops-admin-readmodel",
        )
        self._opened = False

    def open(self) -> None:
        # Without waiting: a database that is down at start is reported by the first request.
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        self.open()
        try:
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            log.warning("read model database: %s: %s", type(exc).__name__, exc)
            raise ReadModelUnavailable(
                "the admin read model's database (PostgreSQL) does not answer; try again in a moment"
            ) from exc
