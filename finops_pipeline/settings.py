"""Settings of the code location: schedule timing, executor, and the load rules handed to the
warehouse resource."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops_pipeline.constants import DEFAULT_APPLICATION_TAG_KEYS
from finops_pipeline.landing.sources import MAX_ROW_GROUP_BYTES

# How finops_batch runs its steps (finops_pipeline/executors.py builds the executor).
ExecutorName = Literal["multiprocess", "k8s"]


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINOPS_", extra="ignore")

    batch_cron: str = Field(default="0 6 * * *", description="CRON string of the daily batch")
    batch_timezone: str = Field(default="UTC", description="time zone the CRON string is read in")
    schedule_enabled: bool = Field(default=True, description="start the schedule RUNNING")
    reprocess_sensor_interval_seconds: int = Field(
        default=30, ge=1, le=3600, description="how often the reprocess sensor looks for pending requests"
    )
    executor: ExecutorName = Field(
        default="multiprocess",
        description="how finops_batch runs its steps: `multiprocess` (one machine) or `k8s` "
        "(each step in its own Kubernetes Job, dagster-k8s)",
    )
    landing_uri: str | None = Field(
        default=None, description="landing root (FINOPS_LANDING_URI): a local folder or s3://bucket/prefix"
    )
    sources: str | None = Field(
        default=None,
        description="YAML file listing each domain's sources of cost data (FINOPS_SOURCES); unset: one "
        "`landing` source per domain under FINOPS_LANDING_URI",
    )
    delivery_sensor_interval_seconds: int = Field(
        default=60, ge=10, le=86400, description="how often the delivery sensor lists every source"
    )
    delivery_lookback_months: int | None = Field(
        default=None,
        ge=1,
        le=240,
        description="how many months back (the current one included) the delivery sensor and the loads "
        "look for deliveries; unset: every period a source holds",
    )
    delivery_settle_seconds: int = Field(
        default=900,
        ge=0,
        le=86400,
        description="how long a file without a manifest (OCI reports, landing folders) must stay unchanged "
        "before it counts as delivered",
    )
    max_runtime_seconds: int = Field(
        default=14400,
        ge=60,
        description="run monitoring fails a finops_batch run still in progress after this many seconds "
        "(job tag dagster/max_runtime)",
    )

    @field_validator("executor", mode="before")
    @classmethod
    def _executor(cls, value: object) -> object:
        # Checked here so the message names the variable and the choices, not pydantic's field.
        choices = get_args(ExecutorName)
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError(
            f"FINOPS_EXECUTOR must be one of {', '.join(choices)} ('multiprocess': steps in processes on "
            f"this machine; 'k8s': each step in its own Kubernetes Job), got {value!r}"
        )

    period_basis: Literal["billing", "charge"] = Field(
        default="billing",
        description="which FOCUS period puts a row in a landing month: BillingPeriodStart (billing) "
        "or ChargePeriodStart (charge)",
    )
    application_tag_keys: str = Field(
        default=",".join(DEFAULT_APPLICATION_TAG_KEYS),
        description="comma-separated tag keys naming a record's application, first found wins, "
        "compared case-insensitively",
    )
    max_rejected_ratio: float = Field(
        default=0.01, ge=0, le=1, description="largest share of rejected rows a (period, domain) load accepts"
    )
    max_shrink_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="largest share of its rows a loaded (period, domain) may lose to a new load",
    )

    max_row_group_bytes: int = Field(
        default=MAX_ROW_GROUP_BYTES,
        ge=1 << 20,
        description="largest Parquet row group, uncompressed, a load reads (bytes); a file with a "
        "larger one fails its month with the unreadable_file gate",
    )

    @field_validator("application_tag_keys")
    @classmethod
    def _keys_not_empty(cls, value: str) -> str:
        if not [k for k in value.split(",") if k.strip()]:
            raise ValueError("FINOPS_APPLICATION_TAG_KEYS names no tag key; e.g. application,app,project")
        return value

    @property
    def tag_keys(self) -> list[str]:
        return [k.strip() for k in self.application_tag_keys.split(",") if k.strip()]


@lru_cache
def get_pipeline_settings() -> PipelineSettings:
    return PipelineSettings()
