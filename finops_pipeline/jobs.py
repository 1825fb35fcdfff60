"""finops_batch: plan -> per-domain loads (in parallel) -> MV refresh."""

from __future__ import annotations

from dagster import job, multi_or_in_process_executor

from finops_pipeline.contract import DOMAINS, JOB_NAME
from finops_pipeline.ops import LOAD_OPS, plan_batch, refresh_materialized_views

__all__ = ["finops_batch"]


@job(
    name=JOB_NAME,
    description="FinOps batch: load the selected domains' FOCUS records for the selected "
    "months into PostgreSQL, then refresh the dashboard materialized views.",
    executor_def=multi_or_in_process_executor,
)
def finops_batch() -> None:
    plan = plan_batch()
    loads = [LOAD_OPS[domain](getattr(plan, domain)) for domain in DOMAINS]
    refresh_materialized_views(loads)
