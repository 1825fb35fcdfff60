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

from finops_pipeline.constants import ASSET_KEY_PREFIX, DOMAIN_LABELS, DOMAINS, load_step_key
from finops_pipeline.landing.focus import add_exact, plain_decimal
from finops_pipeline.resources import LandingResource, WarehouseResource
from finops_pipeline.warehouse.loads import LoadConflict, PeriodLoad, QualityGateFailed

__all__ = ["LOAD_OPS", "build_load_op", "load_metadata"]


def load_metadata(loaded: list[PeriodLoad]) -> dict[str, Any]:
    """The output metadata of a domain load (names fixed by the admin contract).

    `loaded` holds every period the op attempted, failed ones included (their
    `quality.gate` says why; they inserted and deleted nothing). `billed_cost` is
    the exact decimal sum of the committed rows' BilledCost, as text.
    """
    rejected: Counter[str] = Counter()
    for item in loaded:
        rejected.update(item.rejected)
    per_period = {
        item.period: {
            "rows_read": item.rows_read,
            "releves_inserted": item.inserted,
            "releves_deleted": item.deleted,
            "releves_rejected": item.rejected_total,
            "billed_cost": plain_decimal(item.billed_cost),
            "rejected_by_reason": dict(sorted(item.rejected.items())),
            "files": len(item.files),
            "seconds": round(item.seconds, 3),
            "quality": item.quality.as_metadata(),
        }
        for item in loaded
    }
    return {
        "rows_read": MetadataValue.int(sum(i.rows_read for i in loaded)),
        "releves_inserted": MetadataValue.int(sum(i.inserted for i in loaded)),
        "releves_deleted": MetadataValue.int(sum(i.deleted for i in loaded)),
        "releves_rejected": MetadataValue.int(sum(i.rejected_total for i in loaded)),
        "billed_cost": MetadataValue.text(plain_decimal(add_exact(*(i.billed_cost for i in loaded)))),
        "periods": MetadataValue.json(per_period),
        "rejected_by_reason": MetadataValue.json(dict(sorted(rejected.items()))),
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
        store = landing.store()
        loaded: list[PeriodLoad] = []
        failures: list[str] = []
        for period in plan["periods"]:
            try:
                result = warehouse.load_period(
                    store, domain, period, context.run_id, allow_shrink=bool(plan.get("allow_shrink"))
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
                asset_key=AssetKey([ASSET_KEY_PREFIX, "releves"]),
                description=f"{label} {period} replaced",
                metadata={
                    "domain": domain,
                    "period": period,
                    "releves_inserted": result.inserted,
                    "releves_deleted": result.deleted,
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
