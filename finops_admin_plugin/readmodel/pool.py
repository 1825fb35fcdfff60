"""The read model's connection pool, and `ReadModelUnavailable`, what every read and write raises
when its PostgreSQL database does not answer."""

from __future__ import annotations

import logging
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
            # it, so the first request after a restart answers instead of a 503. The check is
            # one empty round trip (~0.1 ms on a local socket).
            check=ConnectionPool.check_connection,
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
