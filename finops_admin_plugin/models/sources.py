"""Sources: each configured source of cost data and, per month, its deliveries and their state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal, get_args

from pydantic import Field, WithJsonSchema

from finops_admin_plugin.models.common import ApiModel, DomainName, GateName, Period
from finops_pipeline.sources.config import SOURCE_KINDS

__all__ = [
    "SOURCE_STATES",
    "SourceCollectionResponse",
    "SourceDelivery",
    "SourceFailure",
    "SourceIncomplete",
    "SourceKindName",
    "SourceLoad",
    "SourceMonth",
    "SourceResponse",
    "SourceScanInfo",
    "SourceState",
]

SourceState = Literal["LOADED", "PENDING", "INCOMPLETE", "FAILED", "MISSING"]
SOURCE_STATES: Final[tuple[str, ...]] = get_args(SourceState)
# The pipeline's list of kinds is the one definition, published here as the schema's enum.
SourceKindName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(SOURCE_KINDS)})]


class SourceDelivery(ApiModel):
    """A complete delivery: the files a provider wrote for the month, as the last scan saw them."""

    delivery_id: str = Field(description="manifest ETag, or a digest of the file list with sizes and ETags")
    delivered_at: datetime = Field(description="when the provider completed it")
    files: int
    bytes: int


class SourceLoad(ApiModel):
    """The delivery the month's rows come from, and the run that loaded it."""

    delivery_id: str
    run_id: str
    loaded_at: datetime


class SourceIncomplete(ApiModel):
    """Data of the month without a complete delivery at the last scan."""

    since: datetime = Field(description="time of its oldest file: how long it has been waiting")
    files: int
    age_seconds: float = Field(description="seconds between `since` and this answer")
    reason: str | None = Field(default=None, description="why the scan does not count it as complete")


class SourceFailure(ApiModel):
    """The load that failed on the month's latest delivery (state FAILED)."""

    run_id: str
    delivery_id: str
    failed_at: datetime
    gate: GateName | None = Field(default=None, description="the quality gate that failed the load, if any")
    message: str | None = None


class SourceMonth(ApiModel):
    period: Period
    state: SourceState = Field(
        description="LOADED: its latest complete delivery is loaded; PENDING: complete, not yet "
        "loaded; INCOMPLETE: data without a complete delivery (no manifest, still settling); "
        "FAILED: the load of its latest delivery failed (`loaded` is the previous one); MISSING: "
        "no delivery after the source's expected day of the next month"
    )
    latest: SourceDelivery | None = None
    loaded: SourceLoad | None = None
    incomplete: SourceIncomplete | None = None
    failure: SourceFailure | None = Field(default=None, description="set when state is FAILED")
    expected_by: datetime | None = Field(
        default=None,
        description="the deadline of a delivery (expected_day of the next month, 00:00 UTC); "
        "null when the source has no expected_day",
    )


class SourceScanInfo(ApiModel):
    scanned_at: datetime
    error: str | None = Field(default=None, description="why the last listing failed; null when it worked")


class SourceResponse(ApiModel):
    name: str
    domain: DomainName
    kind: SourceKindName
    location: str | None = Field(
        description="the uri with credentials and query string removed; null when the API does "
        "not know it (no sources file and FINOPS_LANDING_URI not set in the API's environment)"
    )
    expected_day: int | None = Field(
        default=None, description="a month with no delivery by this day of the next month is MISSING"
    )
    last_scan: SourceScanInfo | None = Field(
        default=None, description="the delivery sensor's last listing of it; null before the first"
    )
    months: list[SourceMonth] = Field(description="newest first, at most `limit`")


class SourceCollectionResponse(ApiModel):
    items: list[SourceResponse]
    sources_file: bool = Field(
        description="true when FINOPS_SOURCES names a sources file; false: one `landing` source per "
        "domain (FINOPS_LANDING_URI)"
    )
