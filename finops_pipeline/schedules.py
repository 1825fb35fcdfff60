"""The daily CRON schedule: current month and N-1, every domain."""

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from finops_pipeline.contract import DOMAINS, SCHEDULE_NAME, TRIGGER_CRON, batch_run_config, batch_tags
from finops_pipeline.jobs import finops_batch
from finops_pipeline.periods import default_periods

__all__ = ["build_schedule", "scheduled_run_request"]


def scheduled_run_request(context: ScheduleEvaluationContext) -> RunRequest:
    """Deterministic: the same tick always gives the same run key and config."""
    when = context.scheduled_execution_time
    periods = default_periods(when)
    domains = list(DOMAINS)
    return RunRequest(
        run_key=f"{SCHEDULE_NAME}:{when.isoformat()}",
        run_config=batch_run_config(periods, domains),
        tags=batch_tags(
            trigger=TRIGGER_CRON,
            periods=periods,
            domains=domains,
            requested_by=f"schedule:{SCHEDULE_NAME}",
        ),
    )


def build_schedule(
    cron: str, timezone: str, enabled: bool, job: JobDefinition = finops_batch
) -> ScheduleDefinition:
    @schedule(
        name=SCHEDULE_NAME,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.RUNNING if enabled else DefaultScheduleStatus.STOPPED,
        description=f"Daily FinOps batch ({cron}, {timezone}): current month and N-1, all domains",
    )
    def _schedule(context: ScheduleEvaluationContext) -> RunRequest:
        return scheduled_run_request(context)

    return _schedule
