"""The queue of reprocess requests (PostgreSQL) as a Dagster resource, for the reprocess sensor."""

from dagster import ConfigurableResource
from pydantic import Field

from finops_pipeline.reprocess.queue import ReprocessQueue


class ReprocessQueueResource(ConfigurableResource):  # type: ignore[misc]
    """Where the admin API files reprocess requests, and how many the sensor handles per tick."""

    database_url: str = Field(
        description="PostgreSQL URL holding finops_reprocess.reprocess_requests (FINOPS_DATABASE_URL)"
    )
    max_requests_per_tick: int = Field(
        default=20, ge=1, le=200, description="pending requests handled per tick, oldest first; the rest wait"
    )
    max_launch_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="ticks that may ask for a request's run before it ends FAILED when no run appears",
    )

    def store(self) -> ReprocessQueue:
        return ReprocessQueue(self.database_url)
