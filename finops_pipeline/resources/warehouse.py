"""The PostgreSQL warehouse as a Dagster resource."""

from collections.abc import Callable
from typing import Any

import psycopg
from dagster import ConfigurableResource
from pydantic import Field

from finops_pipeline.constants import DEFAULT_APPLICATION_TAG_KEYS
from finops_pipeline.landing.focus import ReadRules
from finops_pipeline.landing.sources import MAX_ROW_GROUP_BYTES
from finops_pipeline.landing.store import LandingStore
from finops_pipeline.warehouse import loads, mviews, schema
from finops_pipeline.warehouse.gates import GatePolicy


class WarehouseResource(ConfigurableResource):  # type: ignore[misc]
    """finops.releves, the reference data and the dashboard MVs."""

    database_url: str = Field(description="PostgreSQL URL (FINOPS_DATABASE_URL)")
    lock_timeout_seconds: float = Field(
        default=60.0,
        description="how long a load waits for another run holding the same (period, domain)",
    )
    period_basis: str = Field(
        default="billing",
        description="billing or charge: which FOCUS period puts a row in a landing month "
        "(FINOPS_PERIOD_BASIS)",
    )
    application_tag_keys: list[str] = Field(
        default_factory=lambda: list(DEFAULT_APPLICATION_TAG_KEYS),
        description="ordered, case-insensitive tag keys naming the application (FINOPS_APPLICATION_TAG_KEYS)",
    )
    max_rejected_ratio: float = Field(
        default=0.01, description="quality gate: largest rejected share (FINOPS_MAX_REJECTED_RATIO)"
    )
    max_shrink_ratio: float = Field(
        default=0.5,
        description="quality gate: largest share of rows a month may lose (FINOPS_MAX_SHRINK_RATIO)",
    )

    max_row_group_bytes: int = Field(
        default=MAX_ROW_GROUP_BYTES,
        description="largest Parquet row group (uncompressed) a load reads; a larger one fails "
        "its month with unreadable_file (FINOPS_MAX_ROW_GROUP_BYTES)",
    )

    def read_rules(self) -> ReadRules:
        return ReadRules(
            period_basis=self.period_basis,
            application_tag_keys=tuple(self.application_tag_keys),
            max_row_group_bytes=self.max_row_group_bytes,
        )

    def ensure_schema(self) -> list[int]:
        return schema.ensure_schema(self.database_url)

    def load_period(
        self,
        store: LandingStore,
        domain: str,
        period: str,
        run_id: str,
        *,
        allow_shrink: bool = False,
        before_commit: Callable[[], None] | None = None,
        in_transaction: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> loads.PeriodLoad:
        return loads.load_period(
            self.database_url,
            store,
            domain,
            period,
            run_id,
            lock_timeout_seconds=self.lock_timeout_seconds,
            rules=self.read_rules(),
            policy=GatePolicy(
                max_rejected_ratio=self.max_rejected_ratio,
                max_shrink_ratio=self.max_shrink_ratio,
                allow_shrink=allow_shrink,
            ),
            before_commit=before_commit,
            in_transaction=in_transaction,
        )

    def refresh_view(self, name: str, run_id: str) -> mviews.MvRefresh:
        return mviews.refresh_view(
            self.database_url, name, application_name=f"finops-batch {run_id[:8]} {name}"[:63]
        )

    def upsert_applications(self, rows: list[dict[str, Any]]) -> int:
        """Insert or update the application -> family reference."""
        if not rows:
            return 0
        with psycopg.connect(self.database_url) as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                """
                    INSERT INTO finops.applications (application, family, label)
                    VALUES (%(application)s, %(family)s, %(label)s)
                    ON CONFLICT (application) DO UPDATE
                    SET family = EXCLUDED.family, label = EXCLUDED.label
                    """,
                rows,
            )
        return len(rows)
