"""Which executor runs finops_batch's steps, and the job built with it.

On one machine the steps run in processes (`multiprocess`, domains in parallel). On
Kubernetes (`FINOPS_EXECUTOR=k8s`) each step runs in its own Kubernetes Job
(`dagster_k8s.k8s_job_executor`), so each domain loads in its own pod; the pods take
their image, env and secrets from the `K8sRunLauncher` of the Dagster instance.

Either way the job carries `dagster/max_runtime`, so the daemon's run monitoring fails
a run that is still in progress after `FINOPS_MAX_RUNTIME_SECONDS` (a worker that hangs
never leaves a run RUNNING forever).
"""

from __future__ import annotations

import importlib.util

from dagster import ExecutorDefinition, JobDefinition, multi_or_in_process_executor

from finops_pipeline.jobs import finops_batch
from finops_pipeline.settings import ExecutorName, PipelineSettings

__all__ = ["MAX_RUNTIME_TAG", "batch_executor", "build_batch_job"]

# Read by Dagster's run monitoring (seconds, as a string).
MAX_RUNTIME_TAG = "dagster/max_runtime"


def batch_executor(name: ExecutorName) -> ExecutorDefinition:
    if name == "k8s":
        # Imported here: the Kubernetes client is only needed where the steps run in Jobs
        # (the [k8s] extra; the image has it).
        if importlib.util.find_spec("dagster_k8s") is None:
            raise ValueError(
                "FINOPS_EXECUTOR=k8s needs dagster-k8s, which is not installed: "
                "pip install 'finops-batch-admin[k8s]', or set FINOPS_EXECUTOR=multiprocess"
            )
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if name == "multiprocess":
        return multi_or_in_process_executor
    raise ValueError(f"unknown executor {name!r}: set FINOPS_EXECUTOR to 'multiprocess' or 'k8s'")


def build_batch_job(settings: PipelineSettings) -> JobDefinition:
    """finops_batch with the configured executor and its maximum runtime tag."""
    return finops_batch.graph.to_job(
        name=finops_batch.name,
        description=finops_batch.description,
        executor_def=batch_executor(settings.executor),
        tags={**finops_batch.tags, MAX_RUNTIME_TAG: str(settings.max_runtime_seconds)},
    )
