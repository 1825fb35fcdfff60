"""One load op per domain: each selected period in its own transaction."""

import json
from collections import Counter
from typing import Any

from dagster import (
    AssetKey,
    AssetMaterialization,
    Failure,
    In,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    op,
)

from finops_pipeline.contract import (
    ASSET_KEY_PREFIX,
    DOMAIN_LABELS,
    DOMAINS,
    RELEVES_ASSET,
    LoadMeta,
    load_step_key,
    money_metadata,
)
from finops_pipeline.liveness import die_with_parent, ensure_run_alive
from finops_pipeline.money import add_by_currency
from finops_pipeline.resources import LandingResource, WarehouseResource
from finops_pipeline.warehouse.loads import LoadConflict, PeriodLoad, QualityGateFailed

__all__ = ["LOAD_OPS", "build_load_op", "load_metadata"]


def load_metadata(loaded: list[PeriodLoad]) -> dict[str, Any]:
    """The output metadata of a domain load (names fixed by the admin contract).

    `loaded` holds every period the op attempted, failed ones included (their
    `quality.gate` says why; they inserted and deleted nothing). `billed_cost` is
    the exact sum of the committed rows' BilledCost per BillingCurrency, as
    {currency: decimal text} (`contract.money_metadata`).
    """
    rejected: Counter[str] = Counter()
    for item in loaded:
        rejected.update(item.rejected)
    per_period = {
        item.period: {
            LoadMeta.ROWS_READ: item.rows_read,
            LoadMeta.RELEVES_INSERTED: item.inserted,
            LoadMeta.RELEVES_DELETED: item.deleted,
            LoadMeta.RELEVES_REJECTED: item.rejected_total,
            LoadMeta.BILLED_COST: money_metadata(item.billed_cost),
            LoadMeta.REJECTED_BY_REASON: dict(sorted(item.rejected.items())),
            LoadMeta.FILES: len(item.files),
            LoadMeta.SECONDS: round(item.seconds, 3),
            LoadMeta.QUALITY: item.quality.as_metadata(),
        }
        for item in loaded
    }
    return {
        LoadMeta.ROWS_READ: MetadataValue.int(sum(i.rows_read for i in loaded)),
        LoadMeta.RELEVES_INSERTED: MetadataValue.int(sum(i.inserted for i in loaded)),
        LoadMeta.RELEVES_DELETED: MetadataValue.int(sum(i.deleted for i in loaded)),
        LoadMeta.RELEVES_REJECTED: MetadataValue.int(sum(i.rejected_total for i in loaded)),
        LoadMeta.BILLED_COST: MetadataValue.json(
            money_metadata(add_by_currency(*(i.billed_cost for i in loaded)))
        ),
        LoadMeta.PERIODS: MetadataValue.json(per_period),
        LoadMeta.REJECTED_BY_REASON: MetadataValue.json(dict(sorted(rejected.items()))),
    }


def build_load_op(domain: str) -> OpDefinition:
    label = DOMAIN_LABELS[domain]

    @op(
        name=load_step_key(domain),
        ins={"plan": In(dict)},
        out=Out(dict, description=f"what was loaded for {label}"),
        tags={"finops/domain": domain},
        description=f"Load the {label} domain's FOCUS landing files into finops.releves, one "
        "transaction per period (advisory lock, delete, COPY, commit).",
    )
    def _load(
        context: OpExecutionContext,
        plan: dict[str, Any],
        warehouse: WarehouseResource,
        landing: LandingResource,
    ) -> Any:
        # A step never outlives its run: killed with its run worker, and no commit unless the
        # run is still STARTED.
        die_with_parent()
        store = landing.store()
        loaded: list[PeriodLoad] = []
        failures: list[str] = []
        for period in plan["periods"]:
            try:
                result = warehouse.load_period(
                    store,
                    domain,
                    period,
                    context.run_id,
                    allow_shrink=bool(plan.get("allow_shrink")),
                    before_commit=lambda: ensure_run_alive(context.instance, context.run_id),
                )
            except QualityGateFailed as exc:
                context.log.error(f"{label} {period}: quality gate {exc.gate}: {exc}")
                failures.append(f"{period}: quality gate {exc.gate}: {exc}")
                loaded.append(exc.load)
                continue
            except LoadConflict as exc:
                context.log.error(f"{label} {period}: {exc}")
                failures.append(f"{period}: {exc}")
                continue
            loaded.append(result)
            context.log.info(
                f"{label} {period}: {result.rows_read} rows read, {result.inserted} inserted, "
                f"{result.deleted} deleted, {result.rejected_total} rejected "
                f"{json.dumps(dict(result.rejected)) if result.rejected else ''} "
                f"in {result.seconds:.2f}s"
            )
            # The same summary on stdout as one key=value line, for log shippers (Loki,
            # Elasticsearch) and readers of the step's compute log.
            print(
                f"finops.load domain={domain} period={period} rows_read={result.rows_read} "
                f"inserted={result.inserted} deleted={result.deleted} "
                f"rejected={result.rejected_total} warnings={result.quality.warnings.total()} "
                f"seconds={result.seconds:.3f}",
                flush=True,
            )
            yield AssetMaterialization(
                asset_key=AssetKey([ASSET_KEY_PREFIX, RELEVES_ASSET]),
                description=f"{label} {period} replaced",
                metadata={
                    LoadMeta.DOMAIN: domain,
                    LoadMeta.PERIOD: period,
                    LoadMeta.RELEVES_INSERTED: result.inserted,
                    LoadMeta.RELEVES_DELETED: result.deleted,
                },
            )
        if failures:
            # Periods loaded before the failure stay committed (each has its own
            # transaction); the failed ones keep their previous rows.
            succeeded = [
                f"{r.period}: {r.inserted} rows loaded ({r.deleted} replaced)"
                for r in loaded
                if r.quality.gate is None
            ]
            raise Failure(
                description=f"{label}: {len(failures)} of {len(plan['periods'])} period(s) failed, "
                "keeping their previous rows. " + " | ".join(failures + succeeded),
                metadata=load_metadata(loaded),
            )
        yield Output(
            {"domain": domain, "periods": [r.period for r in loaded]},
            metadata=load_metadata(loaded),
        )

    return _load


LOAD_OPS: dict[str, OpDefinition] = {domain: build_load_op(domain) for domain in DOMAINS}
