"""Coverage: months x domains, the last successful load of each and whether it is stale."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from finops_admin_plugin.models.common import ApiModel, DomainName, Period

__all__ = ["CoverageCell", "CoverageLoad", "CoverageResponse"]


class CoverageLoad(ApiModel):
    run_id: str
    time: datetime
    releves_inserted: int | None = None
    rows_read: int | None = None


class CoverageCell(ApiModel):
    period: Period
    domain: DomainName
    last_load: CoverageLoad | None = None
    age_seconds: float | None = None
    stale: bool = Field(
        description="never loaded, or CURRENT/PREVIOUS month (still recomputed daily) whose last "
        "load is older than the staleness threshold"
    )


class CoverageResponse(ApiModel):
    periods: list[Period]
    domains: list[DomainName]
    stale_after_seconds: float
    items: list[CoverageCell]
