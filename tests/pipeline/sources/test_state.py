"""Schema finops_sources: scans kept as history, incomplete data replaced per scan, loads per run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from finops_pipeline.sources import state
from finops_pipeline.sources.model import Delivery, DeliveryFile, IncompleteDelivery, SourceScan, digest_id

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def delivery(period: str, etag: str, at: datetime) -> Delivery:
    files = (DeliveryFile(f"s3://b/payer/data/{period}/a.parquet", f"data/{period}/a.parquet", 100, etag),)
    return Delivery("aws-payer", period, digest_id("aws-payer", files), at, files, f"metadata/{period}.json")


def test_months_show_latest_delivery_last_load_and_incomplete_data(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        state.ensure_schema(conn)
        first = delivery("2026-11", "e1", T0)
        state.record_scan(
            conn,
            SourceScan(
                "aws-payer",
                T0,
                {"2026-11": first},
                [IncompleteDelivery("aws-payer", "2026-12", T0 - timedelta(hours=2), 3, "no manifest")],
            ),
        )
        with conn.transaction():
            state.record_load(conn, first, "run-1", "LOADED")
        restated = delivery("2026-11", "e2", T0 + timedelta(days=1))
        assert restated.delivery_id != first.delivery_id  # an ETag change is a new delivery
        # The next scan: the restatement, and December's data now complete elsewhere.
        state.record_scan(conn, SourceScan("aws-payer", T0 + timedelta(days=1), {"2026-11": restated}, []))
        state.record_load(conn, restated, "run-2", "FAILED", "incomplete_delivery", "data/a.parquet missing")
        conn.commit()

        assert state.loaded_deliveries(conn, ["aws-payer"]) == {("aws-payer", "2026-11"): first.delivery_id}
        november = {m.period: m for m in state.source_months(conn, ["aws-payer"])}["2026-11"]
        assert november.latest is not None and november.latest.delivery_id == restated.delivery_id
        assert november.loaded is not None and november.loaded.run_id == "run-1"
        assert november.last_attempt is not None
        assert (november.last_attempt.status, november.last_attempt.gate) == ("FAILED", "incomplete_delivery")
        # December's incomplete data was replaced by the later scan, which saw none.
        assert [m.period for m in state.source_months(conn, ["aws-payer"])] == ["2026-11"]
        count = conn.execute("SELECT count(*) FROM finops_sources.deliveries").fetchone()
        assert count == (2,)  # both deliveries kept as history


def test_a_failed_scan_keeps_what_the_previous_one_saw(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        state.ensure_schema(conn)
        inc = IncompleteDelivery("aws-payer", "2026-12", T0, 1, "no manifest")
        state.record_scan(conn, SourceScan("aws-payer", T0, {}, [inc]))
        state.record_scan(conn, SourceScan("aws-payer", T0 + timedelta(minutes=1)), error="AccessDenied")
        row = conn.execute("SELECT scanned_at, error FROM finops_sources.scans").fetchone()
        assert row == (T0 + timedelta(minutes=1), "AccessDenied")
        months = state.source_months(conn, ["aws-payer"], limit=5)
        assert [(m.period, m.incomplete_files) for m in months] == [("2026-12", 1)]


def test_limit_is_per_source(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        state.ensure_schema(conn)
        periods = ["2026-08", "2026-09", "2026-10", "2026-11"]
        state.record_scan(conn, SourceScan("aws-payer", T0, {p: delivery(p, p, T0) for p in periods}, []))
        assert [m.period for m in state.source_months(conn, ["aws-payer"], limit=2)] == ["2026-11", "2026-10"]
        assert state.source_months(conn, ["other"]) == []
