"""The sensors: the reprocess sensor launches finops_batch once for each request filed through
the admin API; the delivery sensor launches it for each new provider delivery."""

from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from finops_pipeline.contract import DELIVERY_SENSOR_NAME, REPROCESS_SENSOR_NAME
from finops_pipeline.deliveries.requests import delivery_run_requests
from finops_pipeline.jobs import finops_batch
from finops_pipeline.reprocess.launch import evaluate_queue, resolve_job, tick_result
from finops_pipeline.resources.reprocess_queue import ReprocessQueueResource
from finops_pipeline.resources.sources import SourcesResource

__all__ = ["build_delivery_sensor", "build_reprocess_sensor"]


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


def build_delivery_sensor(interval_seconds: int = 60, job: JobDefinition = finops_batch) -> SensorDefinition:
    @sensor(
        name=DELIVERY_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Lists every source of FINOPS_SOURCES, records what it holds, and launches "
        "finops_batch for the (period, domain) pairs whose latest complete delivery is not loaded yet: "
        "one run per domain, run key made from the delivery ids (a delivery is never loaded twice).",
    )
    def finops_delivery_sensor(
        context: SensorEvaluationContext, sources: SourcesResource
    ) -> SensorResult | SkipReason:
        if not sources.configured:
            return SkipReason(
                "no sources file (FINOPS_SOURCES): the landing layout is loaded by the schedule"
            )
        with sources.connect() as conn:
            outcomes = sources.scan_and_record(conn, sources.sources(), datetime.now(UTC))
            for outcome in outcomes:
                if outcome.error is not None:
                    context.log.warning(f"source {outcome.source.name} cannot be listed: {outcome.error}")
            wanted = delivery_run_requests(conn, outcomes)
        if not wanted:
            found = sum(len(o.scan.deliveries) for o in outcomes)
            return SkipReason(f"{found} complete delivery(ies) in {len(outcomes)} source(s), all loaded")
        for item in wanted:
            changed = ", ".join(f"{r.source} {r.period} {r.delivery_id}" for r in item.changed)
            context.log.info(f"{item.domain} {','.join(item.periods)}: new delivery(ies) {changed}")
        return SensorResult(
            run_requests=[
                RunRequest(run_key=item.run_key, run_config=item.run_config(), tags=item.tags())
                for item in wanted
            ]
        )

    return finops_delivery_sensor
