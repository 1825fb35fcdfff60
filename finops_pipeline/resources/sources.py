"""The sources of cost data (FINOPS_SOURCES) and their recorded deliveries, as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import psycopg
from dagster import ConfigurableResource
from pydantic import Field

from finops_pipeline.deliveries.resolve import ScanOutcome, scan_sources
from finops_pipeline.periods import add_months, format_period
from finops_pipeline.sources.config import Source, load_sources_file
from finops_pipeline.sources.state import ensure_schema, record_scan

__all__ = ["SourcesResource"]


class SourcesResource(ConfigurableResource):  # type: ignore[misc]
    """Where each domain's deliveries are (the sources file), and where their state is kept."""

    sources_file: str | None = Field(
        default=None,
        description="the sources file (FINOPS_SOURCES); unset: the landing layout of FINOPS_LANDING_URI, "
        "read by the landing resource as before",
    )
    database_url: str = Field(description="PostgreSQL holding schema finops_sources (FINOPS_DATABASE_URL)")
    settle_seconds: int = Field(
        default=900,
        description="age a file without a manifest needs to count (FINOPS_DELIVERY_SETTLE_SECONDS)",
    )
    lookback_months: int | None = Field(
        default=None, description="months back deliveries are looked for (FINOPS_DELIVERY_LOOKBACK_MONTHS)"
    )

    @property
    def configured(self) -> bool:
        return bool(self.sources_file)

    def sources(self, domains: Iterable[str] | None = None) -> list[Source]:
        """The sources of the given domains (all when None); [] without a sources file."""
        if not self.sources_file:
            return []
        wanted = None if domains is None else set(domains)
        return [s for s in load_sources_file(self.sources_file) if wanted is None or s.domain in wanted]

    def since_period(self, now: datetime) -> str | None:
        if self.lookback_months is None:
            return None
        return format_period(add_months(date(now.year, now.month, 1), -(self.lookback_months - 1)))

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection with schema finops_sources in place."""
        conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
        try:
            ensure_schema(conn)
            yield conn
        finally:
            conn.close()

    def scan_and_record(
        self, conn: psycopg.Connection[Any], sources: Iterable[Source], now: datetime
    ) -> list[ScanOutcome]:
        """Scan the sources and record each scan (its error too), as the delivery sensor does."""
        outcomes = scan_sources(
            sources, now=now, settle_seconds=self.settle_seconds, since_period=self.since_period(now)
        )
        for outcome in outcomes:
            record_scan(conn, outcome.scan, error=outcome.error)
        return outcomes
