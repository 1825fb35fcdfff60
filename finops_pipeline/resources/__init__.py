"""Dagster resources: every external system the batch talks to."""

from finops_pipeline.resources.landing import LandingResource
from finops_pipeline.resources.reprocess_queue import ReprocessQueueResource
from finops_pipeline.resources.sources import SourcesResource
from finops_pipeline.resources.warehouse import WarehouseResource

__all__ = ["LandingResource", "ReprocessQueueResource", "SourcesResource", "WarehouseResource"]
