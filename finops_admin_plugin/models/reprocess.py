"""Reprocess: the request body, the filed request, its page, and the dry run's impact."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from finops_admin_plugin.models.common import ApiModel, DomainName, Money, PageInfo, Period
from finops_pipeline.contract import DOMAINS
from finops_pipeline.reprocess.queue import State
from finops_pipeline.reprocess.rules import MAX_PERIODS, REASON_MAX, REASON_MIN

__all__ = [
    "DryRunDelivery",
    "DryRunFile",
    "DryRunLanding",
    "DryRunLoaded",
    "DryRunLoadedRun",
    "DryRunPair",
    "DryRunResponse",
    "DryRunTotals",
    "ReprocessBody",
    "ReprocessCollectionResponse",
    "ReprocessLinks",
    "ReprocessRequestResponse",
    "ReprocessState",
]

ReprocessState = State  # the queue's states (finops_pipeline.reprocess.queue)


class ReprocessBody(BaseModel):
    """POST /runs/reprocess. Strict: no extra field, no type coercion ("true" is not a boolean)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=False,
        json_schema_extra={
            "example": {
                "periods": ["2026-10", "2026-09"],
                "domains": ["open", "public"],
                "reason": "Open and Public exports of September and October were re-issued by the provider",
                "dryRun": False,
            }
        },
    )

    periods: list[Period] = Field(
        min_length=1,
        max_length=100,
        description=f"months to reload, YYYY-MM, none in the future; at most {MAX_PERIODS} distinct",
    )
    domains: list[DomainName] | None = Field(
        default=None, max_length=16, description=f"any of {', '.join(DOMAINS)}; omitted means all four"
    )
    # The raw text may carry surrounding blanks (up to 4x the bound); the schema publishes the
    # bounds `check_request` applies once it is trimmed.
    reason: str = Field(
        max_length=4 * REASON_MAX,
        description=f"why; {REASON_MIN} to {REASON_MAX} characters once trimmed",
        json_schema_extra={"minLength": REASON_MIN, "maxLength": REASON_MAX},
    )
    dry_run: bool = Field(default=False, description="answer the impact without filing anything")


class ReprocessLinks(ApiModel):
    self_: str = Field(alias="self", description="this request")
    run: str | None = Field(default=None, description="the run it launched, once LAUNCHED")


class ReprocessRequestResponse(ApiModel):
    request_id: str
    state: ReprocessState
    periods: list[Period]
    domains: list[DomainName]
    reason: str
    requested_by: str = Field(description="entity ref of the caller who filed it")
    created_at: datetime
    updated_at: datetime
    launched_at: datetime | None = None
    run_id: str | None = None
    message: str | None = Field(default=None, description="why it FAILED or was REJECTED")
    links: ReprocessLinks


class ReprocessCollectionResponse(ApiModel):
    items: list[ReprocessRequestResponse]
    page_info: PageInfo
    total_items: int


class DryRunLoadedRun(ApiModel):
    run_id: str
    rows: int


class DryRunLoaded(ApiModel):
    rows: int = Field(description="rows of this (period, domain) now in finops.releves")
    runs: list[DryRunLoadedRun] = Field(description="the runs that loaded them, most rows first")


class DryRunFile(ApiModel):
    name: str
    size_bytes: int
    rows_read: int
    rows_to_load: int
    rows_rejected: int


class DryRunLanding(ApiModel):
    folder: str
    files: list[DryRunFile]
    rows_read: int
    rows_to_load: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    billed_cost: Money = Field(description="what the landing files would load, per billing currency")
    error: str | None = Field(default=None, description="why the load of this pair would fail")


class DryRunDelivery(ApiModel):
    source: str = Field(description="a source of the pair's domain (sources file)")
    delivery_id: str | None = Field(description="the delivery the load would take; null: none")
    delivered_at: datetime | None = Field(description="when the provider completed that delivery")
    files: int
    bytes: int
    note: str | None = Field(
        default=None, description="why this source gives nothing (no complete delivery, cannot be listed)"
    )


class DryRunPair(ApiModel):
    period: Period
    domain: DomainName
    outcome: Literal["REPLACE", "FAIL"] = Field(
        description="REPLACE: its rows would be deleted and the landing rows loaded; FAIL: it keeps its rows"
    )
    rows_to_delete: int
    rows_to_insert: int
    loaded: DryRunLoaded
    landing: DryRunLanding
    deliveries: list[DryRunDelivery] = Field(
        description="with a sources file: per source of the domain, the delivery the load would take "
        "(the latest complete one); empty for the landing layout"
    )


class DryRunTotals(ApiModel):
    rows_to_delete: int
    rows_to_insert: int
    rows_rejected: int
    failing_pairs: int


class DryRunResponse(ApiModel):
    dry_run: Literal[True] = True
    periods: list[Period]
    domains: list[DomainName]
    reason: str
    pairs: list[DryRunPair]
    materialized_views: list[str] = Field(
        description="the MVs the run would refresh: all of them, or none when a pair would fail"
    )
    totals: DryRunTotals
    message: str
