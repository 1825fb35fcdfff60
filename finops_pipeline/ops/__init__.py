"""The ops of finops_batch: plan, one load per domain, MV refresh."""

from finops_pipeline.ops.loads import LOAD_OPS
from finops_pipeline.ops.plan import BatchConfig, plan_batch
from finops_pipeline.ops.refresh import refresh_materialized_views

__all__ = ["LOAD_OPS", "BatchConfig", "plan_batch", "refresh_materialized_views"]
