"""Settings of the code location that are not Dagster resources (schedule timing)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINOPS_", extra="ignore")

    batch_cron: str = Field(default="0 6 * * *", description="CRON string of the daily batch")
    batch_timezone: str = Field(default="UTC", description="time zone the CRON string is read in")
    schedule_enabled: bool = Field(default=True, description="start the schedule RUNNING")
    reprocess_sensor_interval_seconds: int = Field(
        default=30, ge=1, le=3600, description="how often the reprocess sensor looks for pending requests"
    )


@lru_cache
def get_pipeline_settings() -> PipelineSettings:
    return PipelineSettings()
