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
from finops_pipeline.periods import PeriodError, default_periods, normalize_periods
from finops_pipeline.resources import LandingResource, WarehouseResource


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

    context.log.info(f"batch plan: periods {', '.join(periods)}; domains {', '.join(domains)}")
    for domain in domains:
        yield Output(
            {"periods": periods, "domain": domain, "allow_shrink": config.allow_shrink}, output_name=domain
        )
