"""The reprocess sensor: launches finops_batch once for each request filed through the admin API."""

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from finops_pipeline.contract import REPROCESS_SENSOR_NAME
from finops_pipeline.jobs import finops_batch
from finops_pipeline.reprocess.launch import evaluate_queue, resolve_job, tick_result
from finops_pipeline.resources.reprocess_queue import ReprocessQueueResource

__all__ = ["build_reprocess_sensor"]


def build_reprocess_sensor(interval_seconds: int = 30, job: JobDefinition = finops_batch) -> SensorDefinition:
    @sensor(
        name=REPROCESS_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches finops_batch for each PENDING reprocess request, oldest first, once "
        "(run key reprocess:<request id>), and records LAUNCHED with the run id, or FAILED/REJECTED "
        "with the reason.",
    )
    def finops_reprocess_sensor(
        context: SensorEvaluationContext, reprocess_queue: ReprocessQueueResource
    ) -> SensorResult | SkipReason:
        resolved, job_error = resolve_job(context.repository_def)
        report = evaluate_queue(
            instance=context.instance,
            store=reprocess_queue.store(),
            job=resolved,
            job_error=job_error,
            max_requests=reprocess_queue.max_requests_per_tick,
            max_attempts=reprocess_queue.max_launch_attempts,
            logger=context.log,
        )
        return tick_result(report)

    return finops_reprocess_sensor
