"""A log download tries again on a storage connection PostgreSQL dropped (it restarted), not on
a database that is down: told apart from the driver's error, marked by SQLAlchemy or not."""

from __future__ import annotations

import psycopg2
import pytest
import sqlalchemy.exc

from finops_admin_plugin.dagster_reader import DagsterUnavailable
from finops_admin_plugin.logs.download import _stale_connection


def _unavailable(message: str, *, invalidated: bool) -> DagsterUnavailable:
    cause = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, psycopg2.OperationalError(message), connection_invalidated=invalidated
    )
    try:
        raise DagsterUnavailable("Dagster's run storage does not answer") from cause
    except DagsterUnavailable as exc:
        return exc


@pytest.mark.parametrize(
    ("message", "invalidated", "stale"),
    [
        ("server closed the connection unexpectedly\n\tThis probably means...", True, True),
        # Seen unmarked on a reflection query Dagster ran right after a restart.
        ("server closed the connection unexpectedly\n\tThis probably means...", False, True),
        ("terminating connection due to administrator command", False, True),
        ('connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such file', False, False),
        ('connection to server at "127.0.0.1", port 5432 failed: Connection refused', False, False),
    ],
)
def test_a_dropped_connection_is_stale_a_database_down_is_not(
    message: str, invalidated: bool, stale: bool
) -> None:
    assert _stale_connection(_unavailable(message, invalidated=invalidated)) is stale


def test_an_error_that_is_not_the_drivers_is_not_stale() -> None:
    try:
        raise DagsterUnavailable("no") from ValueError("server closed the connection unexpectedly")
    except DagsterUnavailable as exc:
        assert _stale_connection(exc) is False
