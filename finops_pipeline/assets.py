"""Dagster assets: finops.releves (loaded by finops_batch) and the dashboard MVs."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetSpec, MaterializeResult, multi_asset

from finops_pipeline.contract import ASSET_KEY_PREFIX, MATERIALIZED_VIEWS, RELEVES_ASSET
from finops_pipeline.ops.refresh import mv_metadata, refresh_all
from finops_pipeline.resources import WarehouseResource
from finops_pipeline.warehouse.mviews import MV_DEFINITIONS

__all__ = ["RELEVES_KEY", "finops_mvs", "releves_spec"]

RELEVES_KEY = AssetKey([ASSET_KEY_PREFIX, RELEVES_ASSET])

releves_spec = AssetSpec(
    RELEVES_KEY,
    description="finops.releves: FOCUS cost records, replaced per (period, domain) by finops_batch",
    group_name="finops",
    kinds={"postgres"},
)


@multi_asset(
    name="refresh_finops_mvs",
    specs=[
        AssetSpec(
            AssetKey([ASSET_KEY_PREFIX, name]),
            deps=[RELEVES_KEY],
            description=MV_DEFINITIONS[name].description,
            group_name="finops",
            kinds={"postgres"},
            skippable=True,
        )
        for name in MATERIALIZED_VIEWS
    ],
    can_subset=True,
)
def finops_mvs(context: AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[Any]:
    """Refresh the selected MVs on their own (finops_batch refreshes them after each load)."""
    names = [key.path[-1] for key in sorted(context.selected_asset_keys, key=str)]
    for refresh in refresh_all(warehouse, names, context.run_id):
        yield MaterializeResult(
            asset_key=AssetKey([ASSET_KEY_PREFIX, refresh.name]),
            metadata=mv_metadata(refresh),
        )
