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
from finops_pipeline.deliveries.resolve import PairDeliveries
from finops_pipeline.deliveries.store import DeliveryStore, check_delivery_files
from finops_pipeline.liveness import die_with_parent, ensure_run_alive
from finops_pipeline.money import add_by_currency
from finops_pipeline.resources import LandingResource, SourcesResource, WarehouseResource
from finops_pipeline.sources.config import Source
from finops_pipeline.sources.model import Delivery
from finops_pipeline.sources.state import record_load
from finops_pipeline.warehouse.loads import LoadConflict, PeriodLoad, QualityGateFailed

__all__ = ["LOAD_OPS", "build_load_op", "delivery_metadata", "load_deliveries", "load_metadata"]


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
        description=f"Load the {label} domain's FOCUS files (its sources' latest complete deliveries, "
        "or its landing folder) into finops.releves, one transaction per period (advisory lock, "
        "delete, COPY, commit).",
    )
    def _load(
        context: OpExecutionContext,
        plan: dict[str, Any],
        warehouse: WarehouseResource,
        landing: LandingResource,
        sources: SourcesResource,
    ) -> Any:
        # A step never outlives its run: killed with its run worker, and no commit unless the
        # run is still STARTED.
        die_with_parent()
        # With a sources file the plan names each period's deliveries; without, the landing layout.
        by_period: dict[str, Any] | None = plan.get("sources")
        store = landing.store() if by_period is None else None
        domain_sources = sources.sources([domain]) if by_period is not None else []
        loaded: list[PeriodLoad] = []
        failures: list[str] = []
        for period in plan["periods"]:
            pair = None if by_period is None else PairDeliveries.from_plan(period, domain, by_period[period])
            try:
                if pair is None:
                    assert store is not None
                    result = warehouse.load_period(
                        store,
                        domain,
                        period,
                        context.run_id,
                        allow_shrink=bool(plan.get("allow_shrink")),
                        before_commit=lambda: ensure_run_alive(context.instance, context.run_id),
                    )
                else:
                    result = load_deliveries(
                        context, warehouse, domain_sources, pair, allow_shrink=bool(plan.get("allow_shrink"))
                    )
            except QualityGateFailed as exc:
                context.log.error(f"{label} {period}: quality gate {exc.gate}: {exc}")
                failures.append(f"{period}: quality gate {exc.gate}: {exc}")
                loaded.append(exc.load)
                if pair is not None:
                    _record_failed(sources, pair, context.run_id, exc.gate, str(exc))
                continue
            except LoadConflict as exc:
                context.log.error(f"{label} {period}: {exc}")
                failures.append(f"{period}: {exc}")
                if pair is not None:
                    _record_failed(sources, pair, context.run_id, None, str(exc))
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


def delivery_metadata(delivery: Delivery) -> dict[str, Any]:
    """One item of a period's `quality.deliveries`: which delivery of a source the load took."""
    return {
        "source": delivery.source,
        "delivery_id": delivery.delivery_id,
        "files": len(delivery.files),
        "bytes": delivery.bytes,
    }


def load_deliveries(
    context: OpExecutionContext,
    warehouse: WarehouseResource,
    domain_sources: list[Source],
    pair: PairDeliveries,
    *,
    allow_shrink: bool,
) -> PeriodLoad:
    """Load one (period, domain) from the latest complete delivery of every source of the
    domain, all in one transaction that also records each delivery as LOADED."""
    domain, period = pair.domain, pair.period
    taken = [delivery_metadata(d) for d in pair.deliveries]
    blank = PeriodLoad(domain=domain, period=period)
    blank.quality.deliveries = taken
    kept = "the previous rows are kept"
    if pair.errors:
        raise QualityGateFailed("unreadable_file", f"{'; '.join(pair.errors)}; {kept}", blank)
    if not pair.deliveries:
        why = (
            "; ".join(pair.waiting) or f"no source of domain {domain!r} in the sources file (FINOPS_SOURCES)"
        )
        raise QualityGateFailed("empty", f"no complete delivery for {domain} {period} ({why}); {kept}", blank)
    problem = check_delivery_files(domain_sources, pair.deliveries)
    if problem is not None:
        raise QualityGateFailed("incomplete_delivery", f"{problem}; {kept}", blank)

    def record(conn: Any) -> None:
        for delivery in pair.deliveries:
            record_load(conn, delivery, context.run_id, "LOADED")

    try:
        result = warehouse.load_period(
            DeliveryStore(domain_sources, pair.deliveries, period),
            domain,
            period,
            context.run_id,
            allow_shrink=allow_shrink,
            before_commit=lambda: ensure_run_alive(context.instance, context.run_id),
            in_transaction=record,
        )
    except QualityGateFailed as exc:
        exc.load.quality.deliveries = taken
        raise
    result.quality.deliveries = taken
    return result


def _record_failed(
    sources: SourcesResource, pair: PairDeliveries, run_id: str, gate: str | None, message: str
) -> None:
    """A failed load of these deliveries, recorded after its transaction rolled back."""
    if not pair.deliveries:
        return
    with sources.connect() as conn, conn.transaction():
        for delivery in pair.deliveries:
            record_load(conn, delivery, run_id, "FAILED", gate, message[:2000])


LOAD_OPS: dict[str, OpDefinition] = {domain: build_load_op(domain) for domain in DOMAINS}
