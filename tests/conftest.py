"""Fixtures: an embedded PostgreSQL 16 (pgserver), fresh databases, Dagster instances, S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from tests.support import create_database, free_port, make_instance, require

TEST_PERIODS = ["2026-11", "2026-10"]

# The reprocess world (a warehouse, landing, Dagster instance and admin API shared per module),
# used by the reprocess tests of the pipeline and of the API.
pytest_plugins = ["tests.reprocess_world"]


@pytest.fixture(scope="session")
def pg_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server for the whole session (the `postgres` database)."""
    try:
        import pgserver
    except ImportError:  # pragma: no cover - the install step provides it
        require(False, "pgserver is not installed")
        raise
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()


@pytest.fixture
def database_url(pg_base_url: str) -> str:
    """A new, empty database for one test."""
    return create_database(pg_base_url, "wh")


@pytest.fixture
def warehouse_url(database_url: str) -> str:
    """A new database with the finops schema bootstrapped."""
    from finops_pipeline.warehouse.schema import ensure_schema

    ensure_schema(database_url)
    return database_url


@pytest.fixture
def dagster_instance(pg_base_url: str, tmp_path: Path) -> Iterator[DagsterInstance]:
    """A Postgres-backed Dagster instance of its own for one test."""
    instance = make_instance(pg_base_url, tmp_path / "dagster_home")
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """Demo landing files for TEST_PERIODS; native 2026-09 is absent."""
    from datetime import UTC, datetime

    from finops_pipeline.demo_data import write_demo_landing

    root = tmp_path / "landing"
    write_demo_landing(str(root), months=2, now=datetime(2026, 11, 15, tzinfo=UTC), scale=0.25)
    return root


@pytest.fixture
def finops_env(
    monkeypatch: pytest.MonkeyPatch, warehouse_url: str, landing: Path, tmp_path: Path
) -> dict[str, Any]:
    """Environment a batch run reads: warehouse and landing."""
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.setenv("FINOPS_LANDING_URI", str(landing))
    return {"database_url": warehouse_url, "landing": landing}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API server (moto, server mode) on loopback."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:  # pragma: no cover
        require(False, "moto[server] is not installed")
        raise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:
    """AWS_* variables pointing boto3 (and dagster-aws) at the S3 server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_endpoint


__all__ = ["TEST_PERIODS", "create_database"]


@pytest.fixture(scope="module")
def finops_history(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One realistic history of FinOps runs per test module (see tests/history.py)."""
    from tests.history import build_history

    with pytest.MonkeyPatch.context() as monkeypatch:
        history = build_history(pg_base_url, tmp_path_factory.mktemp("history"), monkeypatch)
        try:
            yield history
        finally:
            history.close()
