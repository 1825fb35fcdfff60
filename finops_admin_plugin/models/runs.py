"""Run models: the list item, the detail (periods, blocks, quality, aggregates, logs), the page.

The mapping (`finops_admin_plugin.mapping`) builds these from Dagster records;
the read model stores their JSON; the routes return them. Links depend on
the deployment (Dagster UI URL, log template), so the mapping leaves them
`None` and the API fills them in when it answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import Field

from finops_admin_plugin.models.common import (
    ApiModel,
    BlockStatus,
    DomainName,
    GateName,
    Money,
    PageInfo,
    Period,
    QualityGate,
    RunStatus,
    Trigger,
)

__all__ = [
    "Aggregates",
    "Anomaly",
    "AnomalyMetric",
    "BlockError",
    "BlockLinks",
    "BlockPeriod",
    "BlockResponse",
    "BlockVolumes",
    "ErrorSummary",
    "LoadQuality",
    "LogExcerpt",
    "LogsSection",
    "MvRefreshResponse",
    "PeriodResponse",
    "PeriodRole",
    "QualityDelivery",
    "QualityRejected",
    "QualitySample",
    "QualityWarning",
    "RunCollectionResponse",
    "RunDetailResponse",
    "RunLinks",
    "RunResponse",
    "RunVolumes",
]

PeriodRole = Literal["CURRENT", "PREVIOUS", "OTHER"]
AnomalyMetric = Literal["durationSeconds", "relevesInserted", "billedCost"]

_OLDER_RUN: Final = (
    "; empty for a run recorded before costs were kept per currency (its one figure over every "
    "currency cannot be split truthfully)"
)
_RUN_COST: Final = "BilledCost of the rows its blocks loaded, per currency" + _OLDER_RUN
_BLOCK_COST: Final = "BilledCost of the rows the block loaded, per currency" + _OLDER_RUN
_PERIOD_COST: Final = "BilledCost of the rows loaded for the month, per currency" + _OLDER_RUN
_UNASSIGNED_COST: Final = "BilledCost of the loaded rows without an application, per currency" + _OLDER_RUN


class RunVolumes(ApiModel):
    rows_read: int = 0
    releves_inserted: int = 0
    releves_deleted: int = 0
    releves_rejected: int = 0
    billed_cost: Money = Field(default_factory=list, description=_RUN_COST)
    mvs_refreshed: int = 0


class ErrorSummary(ApiModel):
    count: int = 0
    message: str | None = Field(
        default=None, description="the first failure's cause, on one line (no stack trace)"
    )
    signature: str | None = Field(
        default=None,
        description="a FAILED run's cause as `GET /failures` groups it (the first failure's signature); "
        "null for other runs, and for a FAILED run until the read model has stored it",
    )
    seen_in_runs: int | None = Field(
        default=None, description="how many stored runs failed with this signature (this one included)"
    )
    first_seen: datetime | None = Field(
        default=None, description="when a run first failed with this signature"
    )


class Anomaly(ApiModel):
    metric: AnomalyMetric
    scope: str = Field(description="`run`, or the domain of a block")
    value: float | Money = Field(
        description="a number, or for `billedCost` the cost in one currency (a one-item list): each "
        "currency is scored apart, against the same currency's cost in the comparable runs"
    )
    baseline: float | Money = Field(
        description="median of the compared runs' values (`billedCost`: in the same currency as `value`)"
    )
    score: float = Field(
        description="method `robust_log_z`: (ln(value + floor) - median of ln(compared + floor)) / "
        "(1.4826 * MAD), the MAD-based standard deviation being at least 0.05; flagged beyond `threshold` "
        "in absolute value when the value is also at least 1.4 times (durations: 3 times) the baseline, "
        "or at most its 1/1.4 (1/3). "
        "Floors: 1 second, 100 rows, 1 currency unit. Older methods (until `finops reindex`): "
        "`modified_z` (0.6745 * (value - median) / MAD, flagged beyond 3.5) and `relative` "
        "(relative change, flagged beyond 0.5)"
    )
    method: Literal["robust_log_z", "modified_z", "relative"]
    threshold: float | None = Field(default=None, description="|score| beyond which a value is flagged")
    compared_runs: int | None = Field(
        default=None,
        description="how many comparable runs (same domains, trigger, number and roles of periods; for "
        "`billedCost`, those that billed in the currency) the value was compared with",
    )
    compared_run_ids: list[str] = Field(
        default_factory=list, description="the most recent of those runs (at most 5), most recent first"
    )
    compared_from: datetime | None = Field(default=None, description="start of the oldest compared run")
    compared_to: datetime | None = Field(default=None, description="start of the most recent compared run")


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
    domains: list[DomainName] = Field(description="selected domains, in canonical order")
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

    periods: list[Period] = Field(description="months processed, newest first")
    links: RunLinks | None = None


class PeriodResponse(ApiModel):
    period: Period
    role: PeriodRole


class BlockVolumes(ApiModel):
    rows_read: int | None = None
    releves_inserted: int | None = None
    releves_deleted: int | None = None
    releves_rejected: int | None = None
    billed_cost: Money = Field(default_factory=list, description=_BLOCK_COST)
    rejected_by_reason: dict[str, int] | None = None


class BlockPeriod(ApiModel):
    """What one month of a domain loaded, or the quality gate that kept its previous rows."""

    period: Period
    rows_read: int | None = None
    releves_inserted: int | None = None
    releves_deleted: int | None = None
    releves_rejected: int | None = None
    billed_cost: Money = Field(default_factory=list, description=_PERIOD_COST)
    gate: GateName | None = Field(default=None, description="set when a quality gate failed this month")


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


class QualityDelivery(ApiModel):
    """The delivery of one source that a load of one period took."""

    source: str = Field(description="the source's name (FINOPS_SOURCES)")
    delivery_id: str
    files: int
    bytes: int


class LoadQuality(ApiModel):
    """What a domain's load of one period saw."""

    period: Period
    focus_versions: list[str] = Field(default_factory=list)
    files: int = 0
    rows_read: int | None = None
    rows_loaded: int | None = None
    rejected: list[QualityRejected] = Field(default_factory=list)
    warnings: list[QualityWarning] = Field(default_factory=list)
    unassigned_cost: Money = Field(default_factory=list, description=_UNASSIGNED_COST)
    unassigned_rows: int | None = None
    gate: QualityGate | None = Field(
        default=None, description="the quality gate that failed the period (its previous rows were kept)"
    )
    deliveries: list[QualityDelivery] = Field(
        default_factory=list,
        description="one per source whose delivery was loaded; empty for the landing layout "
        "(FINOPS_LANDING_URI) and for runs of older versions",
    )


class BlockResponse(ApiModel):
    domain: DomainName
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
    billed_cost: Money = Field(default_factory=list, description=_RUN_COST)
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


class RunCollectionResponse(ApiModel):
    items: list[RunResponse]
    page_info: PageInfo
    total_items: int
