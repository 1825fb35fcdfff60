"""plan_batch: validate the launch, bootstrap the schema, fan out to the selected domains."""

from datetime import UTC, datetime
from typing import Any

from dagster import Config, Failure, OpExecutionContext, Out, Output, op
from pydantic import Field

from finops_pipeline.contract import (
    DOMAINS,
    PLAN_STEP,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_TRIGGER,
    TAG_VERSION,
    TRIGGER_MANUAL,
    batch_tags,
    normalize_domains,
)
from finops_pipeline.deliveries.resolve import (
    DeliveryRef,
    PairDeliveries,
    pinned_deliveries,
    resolve_deliveries,
)
from finops_pipeline.periods import PeriodError, default_periods, normalize_periods
from finops_pipeline.resources import LandingResource, SourcesResource, WarehouseResource
from finops_pipeline.sources.config import SourcesFileError


class DeliveryConfig(Config):  # type: ignore[misc]
    """One delivery a run loads (the delivery sensor names every delivery of the pairs it
    launches, so the run loads exactly what its run key says)."""

    source: str = Field(description="the source's name in the sources file")
    period: str = Field(description="the billing period, YYYY-MM")
    delivery_id: str = Field(description="the delivery's id, as recorded in finops_sources.deliveries")


class BatchConfig(Config):  # type: ignore[misc]
    periods: list[str] = Field(
        default_factory=list,
        description="months to (re)load, YYYY-MM; empty means the current month and N-1",
    )
    domains: list[str] = Field(
        default_factory=lambda: list(DOMAINS),
        description="domains to load: any of open, private, public, native",
    )
    allow_shrink: bool = Field(
        default=False,
        description="let this launch replace a loaded month with far fewer rows (the shrink quality gate)",
    )
    deliveries: list[DeliveryConfig] = Field(
        default_factory=list,
        description="with a sources file: the exact deliveries to load (set by the delivery sensor); empty "
        "means the latest complete delivery of every source of each selected domain, found by a scan",
    )


@op(
    name=PLAN_STEP,
    out={domain: Out(dict, is_required=False, description=f"plan for {domain}") for domain in DOMAINS},
    description="Validate periods and domains, bootstrap the warehouse schema, refresh the "
    "application reference, and start the selected domains' loads.",
)
def plan_batch(
    context: OpExecutionContext,
    config: BatchConfig,
    warehouse: WarehouseResource,
    landing: LandingResource,
    sources: SourcesResource,
) -> Any:
    try:
        periods = normalize_periods(config.periods) or default_periods(datetime.now(UTC))
        domains = normalize_domains(config.domains)
    except (PeriodError, ValueError) as exc:
        raise Failure(description=f"invalid batch configuration: {exc}") from None

    # Launches from the Dagster UI launchpad carry no finops/* tags: add them,
    # so every run of this job is described the same way.
    run_tags = context.run.tags
    missing = {
        key: value
        for key, value in batch_tags(trigger=TRIGGER_MANUAL, periods=periods, domains=domains).items()
        if key not in run_tags and key in (TAG_TRIGGER, TAG_PERIODS, TAG_DOMAINS, TAG_VERSION)
    }
    if missing:
        context.instance.add_run_tags(context.run_id, missing)

    applied = warehouse.ensure_schema()
    if applied:
        context.log.info(f"warehouse schema migrated: applied version(s) {applied}")
    reference = landing.read_reference()
    if reference is not None:
        count = warehouse.upsert_applications(reference)
        context.log.info(f"application reference: {count} application(s) upserted")

    pairs = _deliveries(context, config, sources, periods, domains)

    context.log.info(f"batch plan: periods {', '.join(periods)}; domains {', '.join(domains)}")
    for domain in domains:
        plan: dict[str, Any] = {"periods": periods, "domain": domain, "allow_shrink": config.allow_shrink}
        if pairs is not None:
            plan["sources"] = {period: pairs[(period, domain)].as_plan() for period in periods}
        yield Output(plan, output_name=domain)


def _deliveries(
    context: OpExecutionContext,
    config: BatchConfig,
    sources: SourcesResource,
    periods: list[str],
    domains: list[str],
) -> dict[tuple[str, str], PairDeliveries] | None:
    """With a sources file, the deliveries each (period, domain) load takes; None without one
    (the landing layout, read by the load steps as before)."""
    if not sources.configured:
        return None
    try:
        everything = sources.sources()
        with sources.connect() as conn:
            if config.deliveries:
                refs = [DeliveryRef(d.source, d.period, d.delivery_id) for d in config.deliveries]
                pairs = pinned_deliveries(conn, everything, refs, domains, periods)
            else:
                wanted = [s for s in everything if s.domain in domains]
                outcomes = sources.scan_and_record(conn, wanted, datetime.now(UTC))
                pairs = resolve_deliveries(outcomes, domains, periods)
    except SourcesFileError as exc:
        raise Failure(description=f"the sources file cannot be used: {exc}") from None
    for (period, domain), pair in sorted(pairs.items()):
        taken = ", ".join(f"{d.source} {d.delivery_id} ({len(d.files)} file(s))" for d in pair.deliveries)
        context.log.info(
            f"{domain} {period}: loads {taken or 'no delivery'}"
            + (f"; waiting: {'; '.join(pair.waiting)}" if pair.waiting else "")
            + (f"; errors: {'; '.join(pair.errors)}" if pair.errors else "")
        )
    return pairs
