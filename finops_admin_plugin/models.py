"""Response models of the admin API (camelCase JSON, documented in the OpenAPI schema).

The mapping (`finops_admin_plugin.mapping`) builds these from Dagster records;
the read model stores their JSON; the routers return them. Links depend on
the deployment (Dagster UI URL, log template), so the mapping leaves them
`None` and the API fills them in when it answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "Aggregates",
    "Anomaly",
    "ApiModel",
    "BlockError",
    "BlockLinks",
    "BlockPeriod",
    "BlockResponse",
    "BlockStatus",
    "BlockVolumes",
    "CoverageCell",
    "CoverageLoad",
    "CoverageResponse",
    "ErrorSummary",
    "LoadQuality",
    "LogExcerpt",
    "LogsSection",
    "MvRefreshResponse",
    "PageInfo",
    "PeriodResponse",
    "QualityGate",
    "QualityRejected",
    "QualitySample",
    "QualityWarning",
    "RunCollectionResponse",
    "RunDetailResponse",
    "RunLinks",
    "RunResponse",
    "RunStatus",
    "RunVolumes",
    "Trigger",
]

RunStatus = Literal["QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCELED", "UNKNOWN"]
BlockStatus = Literal["NOT_SELECTED", "PENDING", "RUNNING", "SUCCESS", "FAILED", "SKIPPED"]
Trigger = Literal["CRON", "MANUAL"]
QualityGate = Literal["empty", "all_rejected", "rejected_ratio", "shrink", "unreadable_file"]
PeriodRole = Literal["CURRENT", "PREVIOUS", "OTHER"]
AnomalyMetric = Literal["durationSeconds", "relevesInserted", "billedCost"]


class ApiModel(BaseModel):
    # A field with a default is always sent: required in the response schema, so generated
    # clients do not type it optional.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, json_schema_serialization_defaults_required=True
    )


class RunVolumes(ApiModel):
    rows_read: int = 0
    releves_inserted: int = 0
    releves_deleted: int = 0
    releves_rejected: int = 0
    billed_cost: float = 0.0
    mvs_refreshed: int = 0


class ErrorSummary(ApiModel):
    count: int = 0
    message: str | None = Field(
        default=None, description="the first failure's cause, on one line (no stack trace)"
    )


class Anomaly(ApiModel):
    metric: AnomalyMetric
    scope: str = Field(description="`run`, or the domain of a block")
    value: float
    baseline: float = Field(description="median of the comparable runs, or the previous one's value")
    score: float = Field(
        description="modified z-score (method `modified_z`, flagged above 3.5 in absolute value) or "
        "relative change to the baseline (method `relative`, flagged above 0.5): used with fewer than 4 "
        "comparable runs (baseline: the previous one) or when their values are all equal (baseline: "
        "the median)"
    )
    method: Literal["modified_z", "relative"]


class RunLinks(ApiModel):
    self: str
    logs: str
    dagster: str
    external: str | None = None


class _RunFields(ApiModel):
    run_id: str
    status: RunStatus
    dagster_status: str = Field(description="Dagster's own run status, as Dagster names it")
    trigger: Trigger
    launched_by: str | None = Field(
        default=None,
        description="who launched it: `schedule:<name>`, `sensor:<name>`, or a Backstage entity ref such "
        "as `user:default/jdoe` (for a reprocess: who asked for it); null when Dagster does not say",
    )
    reprocess_request_id: str | None = Field(
        default=None, description="set when launched by a reprocess request"
    )
    reason: str | None = Field(default=None, description="the reason given with a manual launch or reprocess")
    domains: list[str] = Field(description="selected domains, in canonical order")
    domain_statuses: dict[str, BlockStatus] = Field(description="block status of every domain")
    created_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_seconds: float | None = None
    volumes: RunVolumes
    errors: ErrorSummary
    anomalies: list[Anomaly] = Field(default_factory=list)
    version: str | None = Field(default=None, description="finops_pipeline version that ran it")


class RunResponse(_RunFields):
    """A run in the list."""

    periods: list[str] = Field(description="months processed, newest first")
    links: RunLinks | None = None


class PeriodResponse(ApiModel):
    period: str
    role: PeriodRole


class BlockVolumes(ApiModel):
    rows_read: int | None = None
    releves_inserted: int | None = None
    releves_deleted: int | None = None
    releves_rejected: int | None = None
    billed_cost: float | None = None
    rejected_by_reason: dict[str, int] | None = None


class BlockPeriod(ApiModel):
    """What one month of a domain loaded, or the quality gate that kept its previous rows."""

    period: str
    rows_read: int | None = None
    releves_inserted: int | None = None
    releves_deleted: int | None = None
    releves_rejected: int | None = None
    billed_cost: float | None = None
    gate: str | None = Field(default=None, description="set when a quality gate failed this month")


class BlockError(ApiModel):
    message: str
    kind: Literal["FAILURE", "EXCEPTION", "FRAMEWORK", "INTERRUPTED", "UPSTREAM"] = Field(
        description="FAILURE: the op reported a data problem; EXCEPTION: unexpected error in the op; "
        "FRAMEWORK: Dagster itself; INTERRUPTED: the run ended while the step ran; "
        "UPSTREAM: never ran because an earlier step failed"
    )


class BlockLinks(ApiModel):
    logs: str
    external: str | None = None


class QualitySample(ApiModel):
    """Where a rejected row was (admins only): file relative to the landing root, line, column, value."""

    file: str
    line: int | None = None
    column: str | None = None
    value: str | None = None


class QualityRejected(ApiModel):
    reason: str
    count: int
    samples: list[QualitySample] = Field(default_factory=list)


class QualityWarning(ApiModel):
    rule: str = Field(description="the FOCUS rule broken by rows that were still loaded")
    count: int


class LoadQuality(ApiModel):
    """What a domain's load of one period saw."""

    period: str
    focus_versions: list[str] = Field(default_factory=list)
    files: int = 0
    rows_read: int | None = None
    rows_loaded: int | None = None
    rejected: list[QualityRejected] = Field(default_factory=list)
    warnings: list[QualityWarning] = Field(default_factory=list)
    unassigned_cost: float | None = None
    unassigned_rows: int | None = None
    gate: QualityGate | None = Field(
        default=None, description="the quality gate that failed the period (its previous rows were kept)"
    )


class BlockResponse(ApiModel):
    domain: str
    label: str
    status: BlockStatus
    step_key: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration_seconds: float | None = None
    attempts: int = 0
    volumes: BlockVolumes
    periods: list[BlockPeriod] = Field(default_factory=list)
    errors: list[BlockError] = Field(default_factory=list)
    anomalies: list[Anomaly] = Field(default_factory=list)
    quality: list[LoadQuality] = Field(default_factory=list, description="per period, newest first")
    links: BlockLinks | None = None


class MvRefreshResponse(ApiModel):
    name: str
    status: Literal["PENDING", "RUNNING", "SUCCESS", "FAILED", "SKIPPED"]
    refreshed_at: datetime | None = None
    duration_seconds: float | None = None
    row_count: int | None = None


class Aggregates(ApiModel):
    releves_inserted: int = 0
    releves_deleted: int = 0
    releves_rejected: int = 0
    billed_cost: float = 0.0
    mvs: list[MvRefreshResponse] = Field(default_factory=list)


class LogExcerpt(ApiModel):
    step_key: str
    lines: list[str]


class LogsSection(ApiModel):
    download_url: str
    dagster_url: str
    external_url: str | None = None
    excerpt: LogExcerpt | None = None


class RunDetailResponse(_RunFields):
    """A run with its periods, blocks, aggregates and log links."""

    periods: list[PeriodResponse]
    blocks: list[BlockResponse]
    aggregates: Aggregates
    links: RunLinks | None = None
    logs: LogsSection | None = None


class PageInfo(ApiModel):
    next_cursor: str | None = None


class RunCollectionResponse(ApiModel):
    items: list[RunResponse]
    page_info: PageInfo
    total_items: int


class CoverageLoad(ApiModel):
    run_id: str
    time: datetime
    releves_inserted: int | None = None
    rows_read: int | None = None


class CoverageCell(ApiModel):
    period: str
    domain: str
    last_load: CoverageLoad | None = None
    age_seconds: float | None = None
    stale: bool = Field(
        description="never loaded, or CURRENT/PREVIOUS month (still recomputed daily) whose last "
        "load is older than the staleness threshold"
    )


class CoverageResponse(ApiModel):
    periods: list[str]
    domains: list[str]
    stale_after_seconds: float
    items: list[CoverageCell]
