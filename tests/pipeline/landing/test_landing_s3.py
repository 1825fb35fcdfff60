"""The S3 landing path, end to end, against a real S3 API server (moto in server mode)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from finops_pipeline.contract import DOMAINS, load_step_key
from finops_pipeline.demo_data import write_demo_landing
from tests.conftest import TEST_PERIODS
from tests.support import (
    counts_by_pair,
    expected_from_frames,
    query,
    read_landing_frame,
    run_batch,
    run_events,
    run_ids_by_pair,
)

PREFIX = "finops/landing"


def _client() -> Any:
    import boto3

    # No endpoint given: boto3 reads AWS_ENDPOINT_URL, as dagster-aws's S3Resource() must.
    return boto3.client("s3")


@pytest.fixture
def s3_landing(s3_env: str, finops_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Demo landing files in a fresh bucket; FINOPS_LANDING_URI points at them."""
    bucket = f"landing-{uuid.uuid4().hex[:10]}"
    _client().create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/{PREFIX}"
    summary = write_demo_landing(
        uri, months=2, now=datetime(2026, 11, 15, tzinfo=UTC), scale=0.1, s3_client_factory=_client
    )
    assert summary["periods"] == TEST_PERIODS
    monkeypatch.setenv("FINOPS_LANDING_URI", uri)
    return {"bucket": bucket, "uri": uri, "database_url": finops_env["database_url"]}


def _expected_from_bucket(bucket: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Read the landing objects back with boto3 and pandas, apart from the pipeline's store."""
    client = _client()
    frames: dict[tuple[str, str], list[Any]] = {}
    for domain in DOMAINS:
        for period in TEST_PERIODS:
            listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{domain}/{period}/")
            keys = sorted(obj["Key"] for obj in listing.get("Contents", []))
            frames[(domain, period)] = [
                read_landing_frame(client.get_object(Bucket=bucket, Key=key)["Body"].read(), key)
                for key in keys
            ]
    return expected_from_frames(frames)


def test_a_batch_loads_the_s3_landing(dagster_instance: DagsterInstance, s3_landing: dict[str, Any]) -> None:
    url, bucket = s3_landing["database_url"], s3_landing["bucket"]
    expected = _expected_from_bucket(bucket)
    assert all(item["rows_read"] > 0 for item in expected.values())

    result = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS))
    assert result.success
    assert counts_by_pair(url) == {pair: len(item["valid"]) for pair, item in expected.items()}
    sources = [s for (s,) in query(url, "SELECT DISTINCT source_file FROM finops.releves")]
    assert len(sources) == 2 * (3 * 2 + 1)  # CSV domains in two files, native in one Parquet file
    assert all(s.startswith(f"{s3_landing['uri']}/") for s in sources)
    # The application reference came from the bucket too.
    assert query(url, "SELECT count(*) FROM finops.applications") == [(300,)]

    outputs = {
        e.step_key: e.event_specific_data.metadata
        for e in run_events(dagster_instance, result.run_id)
        if e.event_type == DagsterEventType.STEP_OUTPUT and e.step_key.startswith("load_")
    }
    for domain in DOMAINS:
        meta = outputs[load_step_key(domain)]
        assert meta["rows_read"].value == sum(expected[(domain, p)]["rows_read"] for p in TEST_PERIODS)
        assert meta["releves_rejected"].value == sum(
            expected[(domain, p)]["rejected"].total() for p in TEST_PERIODS
        )


def test_a_missing_s3_folder_fails_its_block_naming_the_uri(
    dagster_instance: DagsterInstance, s3_landing: dict[str, Any]
) -> None:
    url, bucket = s3_landing["database_url"], s3_landing["bucket"]
    client = _client()
    folder = f"{PREFIX}/private/{TEST_PERIODS[0]}/"
    listing = client.list_objects_v2(Bucket=bucket, Prefix=folder)
    for obj in listing["Contents"]:
        client.delete_object(Bucket=bucket, Key=obj["Key"])

    result = run_batch(dagster_instance, periods=TEST_PERIODS, domains=list(DOMAINS))
    assert not result.success
    run = dagster_instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    failures = {
        e.step_key: e.event_specific_data.error.message
        for e in run_events(dagster_instance, result.run_id)
        if e.event_type == DagsterEventType.STEP_FAILURE
    }
    assert set(failures) == {load_step_key("private")}
    assert f"s3://{bucket}/{folder}" in failures[load_step_key("private")]
    # The other blocks loaded from S3; the missing pair has nothing, its other month loaded.
    ids = run_ids_by_pair(url)
    assert ("private", TEST_PERIODS[0]) not in ids
    assert ids[("private", TEST_PERIODS[1])] == {result.run_id}
    assert {pair for pair in ids if pair[0] != "private"} == {
        (d, p) for d in DOMAINS if d != "private" for p in TEST_PERIODS
    }
