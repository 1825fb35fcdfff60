"""Fixtures of the sources' tests: one storage backend per parameter, each a real server of its API
(moto for S3, Azurite for Azure Blob, fake-gcs-server for GCS) or a local folder; and a warehouse,
a Dagster instance and a sources file of local export folders for the loading and sensor tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from finops_pipeline.settings import get_pipeline_settings
from finops_pipeline.sources.config import Source
from finops_pipeline.sources.exports import Sink
from finops_pipeline.sources.storage import open_storage
from tests.pipeline.sources.layouts import write_sources_file
from tests.servers import AZURITE_KEY, AzuriteServer, GcsServer, start_azurite, start_gcs

BACKENDS = ["local", "s3", "azure", "gcs"]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    server = start_gcs(tmp_path_factory.mktemp("gcs"))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Backend:
    """Where a test's sources live: `source(kind, folder)` makes a source whose export folder
    is `folder`, and the sink that writes into it."""

    name: str
    source: Callable[[str, str], tuple[Source, Sink]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "local":

        def make(kind: str, folder: str) -> tuple[Source, Sink]:
            uri = str(tmp_path / "exports" / folder)
            return Source("src", "public", kind, uri), open_storage(uri)  # type: ignore[arg-type]

        return Backend("local", make)
    if request.param == "s3":
        import boto3

        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"b-{uuid.uuid4().hex[:10]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="t",
            aws_secret_access_key="t",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        monkeypatch.setenv("TEST_S3_SECRET", "t")
        options = {
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "access_key_id": "t",
            "secret_access_key_env": "TEST_S3_SECRET",
        }

        def make_s3(kind: str, folder: str) -> tuple[Source, Sink]:
            source = Source("src", "public", kind, f"s3://{bucket}/cur/{folder}", options)  # type: ignore[arg-type]
            return source, open_storage(source.uri, source.storage_options())

        return Backend("s3", make_s3)
    if request.param == "azure":
        server: AzuriteServer = request.getfixturevalue("azurite")
        container = f"c{uuid.uuid4().hex[:10]}"
        server.create_container(container)
        monkeypatch.setenv("TEST_AZURE_KEY", AZURITE_KEY)

        def make_az(kind: str, folder: str) -> tuple[Source, Sink]:
            source = Source(
                "src",
                "public",
                kind,
                f"az://{container}/focus/{folder}",
                server.options("TEST_AZURE_KEY"),  # type: ignore[arg-type]
            )
            return source, open_storage(source.uri, source.storage_options())

        return Backend("azure", make_az)
    gcs: GcsServer = request.getfixturevalue("gcs_server")
    bucket = f"g-{uuid.uuid4().hex[:10]}"
    gcs.create_bucket(bucket)
    monkeypatch.setenv("TEST_GCS_KEY", gcs.service_account_key())

    def make_gs(kind: str, folder: str) -> tuple[Source, Sink]:
        source = Source(
            "src",
            "public",
            kind,
            f"gs://{bucket}/exports/{folder}",
            {"service_account_key_env": "TEST_GCS_KEY"},  # type: ignore[arg-type]
        )
        return source, gcs.sink(bucket, f"exports/{folder}")

    return Backend("gcs", make_gs)


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, Path]:
    """Empty export folders: an AWS export `payer`, an Azure export `ea`, a landing folder."""
    folders = {
        "aws": tmp_path / "cur" / "payer",
        "azure": tmp_path / "focus" / "ea",
        "landing": tmp_path / "open",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    return folders


@pytest.fixture
def sources_env(
    monkeypatch: pytest.MonkeyPatch, warehouse_url: str, exports: dict[str, Path], tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """FINOPS_SOURCES naming the export folders: public from AWS and Azure, open from a
    landing folder; no FINOPS_LANDING_URI."""
    path = write_sources_file(
        tmp_path / "sources.yaml",
        [
            {"name": "aws-payer", "domain": "public", "kind": "aws-data-exports", "uri": str(exports["aws"])},
            {
                "name": "azure-ea",
                "domain": "public",
                "kind": "azure-cost-exports",
                "uri": str(exports["azure"]),
            },
            {"name": "open-landing", "domain": "open", "kind": "landing", "uri": str(exports["landing"])},
        ],
    )
    monkeypatch.setenv("FINOPS_DATABASE_URL", warehouse_url)
    monkeypatch.delenv("FINOPS_LANDING_URI", raising=False)
    monkeypatch.setenv("FINOPS_SOURCES", str(path))
    monkeypatch.setenv("FINOPS_DELIVERY_SETTLE_SECONDS", "0")
    get_pipeline_settings.cache_clear()
    try:
        yield {"database_url": warehouse_url, "sources_file": path, **exports}
    finally:
        get_pipeline_settings.cache_clear()
