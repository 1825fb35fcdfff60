"""The code location: assembles jobs, assets, schedule, sensors and resources."""

from __future__ import annotations

from dagster import Definitions, EnvVar, JobDefinition, definitions
from dagster_aws.s3 import S3Resource

from finops_pipeline.assets import finops_mvs, releves_spec
from finops_pipeline.contract import JOB_NAME
from finops_pipeline.executors import build_batch_job
from finops_pipeline.resources import (
    LandingResource,
    ReprocessQueueResource,
    SourcesResource,
    WarehouseResource,
)
from finops_pipeline.schedules import build_schedule
from finops_pipeline.sensors import build_delivery_sensor, build_reprocess_sensor
from finops_pipeline.settings import get_pipeline_settings
from finops_pipeline.sources.config import load_sources_file

__all__ = ["build_definitions", "defs", "finops_batch_job"]


def build_definitions() -> Definitions:
    settings = get_pipeline_settings()
    if settings.sources:
        # A bad sources file stops the code location here, its message naming the line.
        load_sources_file(settings.sources)
    batch = build_batch_job(settings)
    return Definitions(
        assets=[releves_spec, finops_mvs],
        jobs=[batch],
        schedules=[
            build_schedule(settings.batch_cron, settings.batch_timezone, settings.schedule_enabled, batch)
        ],
        sensors=[
            build_reprocess_sensor(settings.reprocess_sensor_interval_seconds, batch),
            build_delivery_sensor(settings.delivery_sensor_interval_seconds, batch),
        ],
        resources={
            "warehouse": WarehouseResource(
                database_url=EnvVar("FINOPS_DATABASE_URL"),
                period_basis=settings.period_basis,
                application_tag_keys=settings.tag_keys,
                max_rejected_ratio=settings.max_rejected_ratio,
                max_shrink_ratio=settings.max_shrink_ratio,
                max_row_group_bytes=settings.max_row_group_bytes,
            ),
            # S3 endpoint, region and credentials come from the standard AWS_* variables.
            # With a sources file the landing root is optional (it then only holds reference data).
            "landing": LandingResource(
                uri=EnvVar("FINOPS_LANDING_URI") if settings.landing_uri or not settings.sources else "",
                s3=S3Resource(),
            ),
            "sources": SourcesResource(
                sources_file=settings.sources,
                database_url=EnvVar("FINOPS_DATABASE_URL"),
                settle_seconds=settings.delivery_settle_seconds,
                lookback_months=settings.delivery_lookback_months,
            ),
            "reprocess_queue": ReprocessQueueResource(database_url=EnvVar("FINOPS_DATABASE_URL")),
        },
    )


@definitions
def defs() -> Definitions:
    return build_definitions()


def finops_batch_job() -> JobDefinition:
    """The job with its resources, for `reconstructable` (CLI and tests)."""
    return build_definitions().resolve_job_def(JOB_NAME)
