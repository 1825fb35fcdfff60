"""Fixtures of the sources' tests: one storage backend per parameter, each a real server of its API
(moto for S3, Azurite for Azure Blob, fake-gcs-server for GCS) or a local folder."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from finops_pipeline.sources.config import Source
from finops_pipeline.sources.exports import Sink
from finops_pipeline.sources.storage import open_storage
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
