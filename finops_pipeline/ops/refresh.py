"""Refresh the dashboard MVs once every selected domain has loaded."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dagster import AssetKey, AssetMaterialization, In, OpExecutionContext, Out, Output, op

from finops_pipeline.contract import ASSET_KEY_PREFIX, MATERIALIZED_VIEWS, REFRESH_STEP, MvMeta
from finops_pipeline.resources import WarehouseResource
from finops_pipeline.warehouse.mviews import MvRefresh

__all__ = ["mv_materialization", "mv_metadata", "refresh_all", "refresh_materialized_views"]

MAX_PARALLEL_REFRESHES = 3


def refresh_all(warehouse: WarehouseResource, names: list[str], run_id: str) -> list[MvRefresh]:
    """Refresh views concurrently, each on its own connection."""
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_REFRESHES) as pool:
        return list(pool.map(lambda name: warehouse.refresh_view(name, run_id), names))


def mv_metadata(refresh: MvRefresh) -> dict[str, Any]:
    """What an MV refresh reports, whether run by the job or by the asset."""
    return {MvMeta.ROW_COUNT: refresh.row_count, MvMeta.REFRESH_SECONDS: round(refresh.refresh_seconds, 4)}


def mv_materialization(refresh: MvRefresh) -> AssetMaterialization:
    return AssetMaterialization(
        asset_key=AssetKey([ASSET_KEY_PREFIX, refresh.name]),
        description=f"REFRESH MATERIALIZED VIEW CONCURRENTLY finops.{refresh.name}",
        metadata=mv_metadata(refresh),
    )


@op(
    name=REFRESH_STEP,
    ins={"loads": In(list[dict])},
    out=Out(dict),
    description="Refresh every dashboard materialized view concurrently (readers are never "
    "blocked). Runs only when all selected domain loads succeeded.",
)
def refresh_materialized_views(
    context: OpExecutionContext, loads: list[dict[str, Any]], warehouse: WarehouseResource
) -> Any:
    domains = sorted(item["domain"] for item in loads)
    context.log.info(f"refreshing {len(MATERIALIZED_VIEWS)} MVs after loads of {', '.join(domains)}")
    refreshed = refresh_all(warehouse, list(MATERIALIZED_VIEWS), context.run_id)
    for item in refreshed:
        yield mv_materialization(item)
    yield Output({"refreshed": [r.name for r in refreshed]})
