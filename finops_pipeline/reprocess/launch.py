"""One tick of the reprocess sensor: pending requests -> RunRequests, and their bookkeeping.

A sensor cannot know the id of the run a RunRequest becomes, so the state of a
request is settled on the next tick, from Dagster's own records: a run tagged
`finops/reprocess_request_id=<id>` means the request was launched (this also
covers a crash between run creation and bookkeeping). Rules, in order, for each
PENDING request (oldest first):

1. a run carries its id -> LAUNCHED with that run id (the earliest, if several);
2. its stored periods/domains/reason break the request rules -> REJECTED;
3. the job cannot take it (missing job, run config refused) -> FAILED;
4. RunRequests were already emitted for it on `max_attempts` ticks and no run
   exists -> FAILED (the daemon failed to create the run each time; its tick
   history says why). Attempts are only counted on ticks, so a daemon that is
   down for a while fails nothing: requests wait PENDING and launch when it is back;
5. otherwise a RunRequest with run key `reprocess:<id>`: the same request always
   gives the same key, and Dagster creates at most one run per key and sensor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    JobDefinition,
    RunRecord,
    RunRequest,
    RunsFilter,
    SensorResult,
    SkipReason,
    validate_run_config,
)

from finops_pipeline.contract import (
    JOB_NAME,
    TAG_REPROCESS_REQUEST_ID,
    TRIGGER_MANUAL,
    batch_run_config,
    batch_tags,
)
from finops_pipeline.reprocess.queue import ReprocessQueue, ReprocessRequest
from finops_pipeline.reprocess.rules import (
    CheckedRequest,
    RequestInvalid,
    check_domains,
    check_periods,
    check_reason,
)

__all__ = ["TickReport", "evaluate_queue", "reprocess_run_key", "reprocess_run_request"]

log = logging.getLogger(__name__)


def reprocess_run_key(request_id: str) -> str:
    return f"reprocess:{request_id}"


def reprocess_run_config(checked: CheckedRequest) -> dict[str, Any]:
    return batch_run_config(checked.periods, checked.domains)


def reprocess_run_request(request: ReprocessRequest, checked: CheckedRequest) -> RunRequest:
    return RunRequest(
        run_key=reprocess_run_key(request.request_id),
        run_config=reprocess_run_config(checked),
        tags=batch_tags(
            trigger=TRIGGER_MANUAL,
            periods=checked.periods,
            domains=checked.domains,
            requested_by=request.requested_by,
            reprocess_request_id=request.request_id,
            reason=checked.reason,
        ),
    )


@dataclass
class TickReport:
    run_requests: list[RunRequest] = field(default_factory=list)
    launched: dict[str, str] = field(default_factory=dict)  # request id -> run id
    failed: dict[str, str] = field(default_factory=dict)  # request id -> message
    rejected: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [
            f"{len(self.run_requests)} run(s) requested",
            f"{len(self.launched)} marked LAUNCHED",
            f"{len(self.failed)} FAILED",
            f"{len(self.rejected)} REJECTED",
        ]
        return ", ".join(parts)


def _runs_by_request(instance: DagsterInstance, request_ids: Sequence[str]) -> dict[str, RunRecord]:
    records = instance.get_run_records(filters=RunsFilter(tags={TAG_REPROCESS_REQUEST_ID: list(request_ids)}))
    found: dict[str, RunRecord] = {}
    for record in records:
        request_id = record.dagster_run.tags.get(TAG_REPROCESS_REQUEST_ID)
        if request_id is None:
            continue
        known = found.get(request_id)
        if known is None or record.create_timestamp < known.create_timestamp:
            found[request_id] = record
    return found


def _stored_request_problem(
    request: ReprocessRequest, now: datetime
) -> tuple[CheckedRequest | None, str | None]:
    # Re-checked: the table may have been written by another version, or by hand.
    try:
        checked = CheckedRequest(
            periods=check_periods(request.periods, now),
            domains=check_domains(request.domains),
            reason=check_reason(request.reason),
        )
    except RequestInvalid as exc:
        return None, f"the stored request is not valid ({exc}); file a new request"
    return checked, None


def _job_problem(job: JobDefinition | None, job_error: str | None, run_config: dict[str, Any]) -> str | None:
    if job_error is not None:
        return job_error
    if job is None:
        return None
    try:
        validate_run_config(job, run_config)
    except DagsterInvalidConfigError as exc:
        return f"job {job.name} refuses the run config of this request: {exc}"
    except Exception as exc:  # a broken definition can fail in many ways; each one ends the request
        return f"job {job.name} cannot take this request: {type(exc).__name__}: {exc}"
    return None


def evaluate_queue(
    *,
    instance: DagsterInstance,
    store: ReprocessQueue,
    job: JobDefinition | None,
    job_error: str | None = None,
    max_requests: int = 20,
    max_attempts: int = 5,
    now: datetime | None = None,
    logger: logging.Logger | Any = log,
) -> TickReport:
    """Apply the rules of this module to the oldest `max_requests` pending requests.

    `job` is the job the run requests target, as the code location resolves it
    (used to validate run config); `job_error` says why it could not be resolved.
    """
    now = now or datetime.now(UTC)
    report = TickReport()
    pending = store.pending(max_requests)
    if not pending:
        return report
    runs = _runs_by_request(instance, [r.request_id for r in pending])
    for request in pending:
        run = runs.get(request.request_id)
        if run is not None:
            run_id = run.dagster_run.run_id
            launched_at = run.create_timestamp
            if store.mark_launched(request.request_id, run_id, launched_at):
                report.launched[request.request_id] = run_id
                logger.info(f"reprocess request {request.request_id}: LAUNCHED as run {run_id}")
            continue
        checked, problem = _stored_request_problem(request, now)
        if checked is None:
            assert problem is not None
            if store.mark_ended(request.request_id, "REJECTED", problem):
                report.rejected[request.request_id] = problem
                logger.warning(f"reprocess request {request.request_id}: REJECTED: {problem}")
            continue
        problem = _job_problem(job, job_error, reprocess_run_config(checked))
        if problem is None and request.launch_attempts >= max_attempts:
            problem = (
                f"no run was created for run key {reprocess_run_key(request.request_id)} after "
                f"{request.launch_attempts} sensor ticks asked for one; the tick history of the sensor in "
                "the Dagster UI shows why. File a new request once that is fixed"
            )
        if problem is not None:
            if store.mark_ended(request.request_id, "FAILED", problem):
                report.failed[request.request_id] = problem
                logger.error(f"reprocess request {request.request_id}: FAILED: {problem}")
            continue
        store.note_attempt(request.request_id)
        report.run_requests.append(reprocess_run_request(request, checked))
    return report


def tick_result(report: TickReport) -> SensorResult | SkipReason:
    if report.run_requests:
        return SensorResult(run_requests=report.run_requests)
    return SkipReason(f"no reprocess request to launch ({report.summary()})")


def resolve_job(repository_def: Any) -> tuple[JobDefinition | None, str | None]:
    """The code location's `finops_batch`, or why there is none (None, None without a repository)."""
    if repository_def is None:
        return None, None
    try:
        return repository_def.get_job(JOB_NAME), None
    except Exception as exc:  # a missing or broken job: the requests say so instead of the tick failing
        return None, f"the code location cannot provide job {JOB_NAME}: {type(exc).__name__}: {exc}"
