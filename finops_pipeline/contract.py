"""The pipeline -> admin plugin contract: every name both sides rely on, written once.

The admin plugin derives its views from what this code location leaves in
Dagster: run tags, step keys, output and materialization metadata, run config.
Those strings live here and nowhere else; the plugin imports them, the
pipeline writes them through the helpers below.

- domains and their labels; job, schedule and sensor names; step keys;
- `finops/*` run tags and trigger values (`batch_tags` builds them);
- output metadata keys of a domain load and of an MV refresh, and the shape of
  its money (`money_metadata` writes it, `read_money` reads it back);
- the materialized views, in the order the dashboards list them;
- the run config of `finops_batch` (`batch_run_config` builds it,
  `batch_selection` reads it back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from finops_pipeline import __version__
from finops_pipeline.money import ByCurrency, decimal_text, largest_first
from finops_pipeline.periods import normalize_periods

__all__ = [
    "AMOUNT_PATTERN",
    "ASSET_KEY_PREFIX",
    "CURRENCY_PATTERN",
    "DELIVERY_SENSOR_NAME",
    "DOMAINS",
    "DOMAIN_LABELS",
    "JOB_NAME",
    "MATERIALIZED_VIEWS",
    "PLAN_STEP",
    "REFRESH_STEP",
    "RELEVES_ASSET",
    "REPROCESS_SENSOR_NAME",
    "REQUESTED_BY_SOURCE_PREFIX",
    "SCHEDULE_NAME",
    "TAG_DOMAINS",
    "TAG_PERIODS",
    "TAG_REASON",
    "TAG_REPROCESS_REQUEST_ID",
    "TAG_REQUESTED_BY",
    "TAG_TRIGGER",
    "TAG_VERSION",
    "TRIGGERS",
    "TRIGGER_CRON",
    "TRIGGER_DELIVERY",
    "TRIGGER_MANUAL",
    "LoadMeta",
    "MvMeta",
    "batch_run_config",
    "batch_selection",
    "batch_tags",
    "domain_of_step",
    "load_step_key",
    "money_metadata",
    "normalize_domains",
    "read_money",
]

# --- domains ---------------------------------------------------------------------------------------

DOMAINS: Final = ("open", "private", "public", "native")
DOMAIN_LABELS: Final = {"open": "Open", "private": "Private", "public": "Public", "native": "Native"}

# --- Dagster definitions ---------------------------------------------------------------------------

JOB_NAME: Final = "finops_batch"
SCHEDULE_NAME: Final = "finops_daily_schedule"
REPROCESS_SENSOR_NAME: Final = "finops_reprocess_sensor"
DELIVERY_SENSOR_NAME: Final = "finops_delivery_sensor"
PLAN_STEP: Final = "plan_batch"
REFRESH_STEP: Final = "refresh_materialized_views"
_LOAD_STEP_PREFIX: Final = "load_"

ASSET_KEY_PREFIX: Final = "finops"
RELEVES_ASSET: Final = "releves"

# Materialized views, in the order the dashboards list them (finops.<name>).
MATERIALIZED_VIEWS: Final = (
    "mv_dashboard_monthly",
    "mv_domain_monthly",
    "mv_family_monthly",
    "mv_application_monthly",
    "mv_application_rankings",
    "mv_domain_history",
)


def load_step_key(domain: str) -> str:
    return f"{_LOAD_STEP_PREFIX}{domain}"


def domain_of_step(step_key: str) -> str | None:
    """The domain a load step loads, or None for any other step."""
    if step_key.startswith(_LOAD_STEP_PREFIX):
        domain = step_key[len(_LOAD_STEP_PREFIX) :]
        return domain if domain in DOMAINS else None
    return None


# --- run tags --------------------------------------------------------------------------------------

TAG_TRIGGER: Final = "finops/trigger"
TAG_PERIODS: Final = "finops/periods"
TAG_DOMAINS: Final = "finops/domains"
TAG_VERSION: Final = "finops/version"
TAG_REQUESTED_BY: Final = "finops/requested_by"
TAG_REPROCESS_REQUEST_ID: Final = "finops/reprocess_request_id"
TAG_REASON: Final = "finops/reason"

TRIGGER_CRON: Final = "CRON"
TRIGGER_MANUAL: Final = "MANUAL"
TRIGGER_DELIVERY: Final = "DELIVERY"  # launched by the delivery sensor for a new provider delivery
TRIGGERS: Final = (TRIGGER_CRON, TRIGGER_DELIVERY, TRIGGER_MANUAL)
# finops/requested_by of a DELIVERY run: `source:<name>` of the source whose delivery it loads.
REQUESTED_BY_SOURCE_PREFIX: Final = "source:"

REASON_TAG_LIMIT: Final = 500


# --- output metadata -------------------------------------------------------------------------------


class LoadMeta:
    """Output metadata keys of a domain load (`load_<domain>`), whole-domain and per period."""

    ROWS_READ: Final = "rows_read"
    RELEVES_INSERTED: Final = "releves_inserted"
    RELEVES_DELETED: Final = "releves_deleted"
    RELEVES_REJECTED: Final = "releves_rejected"
    BILLED_COST: Final = "billed_cost"
    REJECTED_BY_REASON: Final = "rejected_by_reason"
    PERIODS: Final = "periods"  # JSON: period -> the figures above, plus the two below
    FILES: Final = "files"
    SECONDS: Final = "seconds"
    QUALITY: Final = "quality"  # what the load saw: FOCUS versions, rejects, warnings, gate (DESIGN.md)
    # Materialization of the releves asset, one per loaded (period, domain).
    DOMAIN: Final = "domain"
    PERIOD: Final = "period"


# --- money in metadata -----------------------------------------------------------------------------
#
# Every amount of a load's metadata (`billed_cost` of the domain and of each period,
# `quality.unassigned_cost`) is a JSON object {currency: amount}: one entry per BillingCurrency of
# the rows it covers (none when it covers no row), the amount an exact decimal as text, never a
# number, never added across currencies. E.g. {"USD": "1361.73337406487786", "EUR": "100.00"}.
# Runs recorded before this shape carry `billed_cost` as one decimal text over every currency:
# `read_money` gives None for it, since it cannot be split truthfully.

AMOUNT_PATTERN: Final = r"^-?[0-9]+(\.[0-9]+)?$"
CURRENCY_PATTERN: Final = r"^[A-Za-z0-9_-]{1,16}$"
_AMOUNT: Final = re.compile(AMOUNT_PATTERN)
_CURRENCY: Final = re.compile(CURRENCY_PATTERN)


def money_metadata(amounts: ByCurrency) -> dict[str, str]:
    """Per-currency amounts as load metadata: {currency: exact decimal text}, largest first."""
    return {currency: decimal_text(amount) for currency, amount in largest_first(amounts)}


def read_money(value: Any) -> ByCurrency | None:
    """The per-currency amounts of a money metadata value; None when it has another shape (the
    cross-currency decimal text of an older run, or anything unreadable): never a guess."""
    if not isinstance(value, Mapping):
        return None
    amounts: ByCurrency = {}
    for currency, amount in value.items():
        if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
            return None
        if not (isinstance(amount, str) and _AMOUNT.fullmatch(amount)):
            return None
        amounts[currency] = Decimal(amount)
    return amounts


class MvMeta:
    """Materialization metadata keys of a refreshed MV (asset `finops/<mv>`)."""

    ROW_COUNT: Final = "row_count"
    REFRESH_SECONDS: Final = "refresh_seconds"


# --- validation shared by every entry point ----------------------------------------------------------


def normalize_domains(values: Iterable[str]) -> list[str]:
    """Validate domains and return them in canonical order (ValueError names the bad ones)."""
    wanted = [str(v).strip().lower() for v in values]
    unknown = sorted({v for v in wanted if v not in DOMAINS})
    if unknown:
        raise ValueError(
            f"unknown domain(s) {', '.join(repr(u) for u in unknown)}; expected any of {', '.join(DOMAINS)}"
        )
    if not wanted:
        raise ValueError(f"select at least one domain among {', '.join(DOMAINS)}")
    return [d for d in DOMAINS if d in wanted]


def batch_tags(
    *,
    trigger: str,
    periods: list[str],
    domains: list[str],
    requested_by: str | None = None,
    reprocess_request_id: str | None = None,
    reason: str | None = None,
) -> dict[str, str]:
    """The `finops/*` tags of a batch run."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    tags = {
        TAG_TRIGGER: trigger,
        TAG_PERIODS: ",".join(normalize_periods(periods)),
        TAG_DOMAINS: ",".join(domains),
        TAG_VERSION: __version__,
    }
    if requested_by:
        tags[TAG_REQUESTED_BY] = requested_by
    if reprocess_request_id:
        tags[TAG_REPROCESS_REQUEST_ID] = reprocess_request_id
    if reason:
        tags[TAG_REASON] = reason[:REASON_TAG_LIMIT]
    return tags


# --- run config ------------------------------------------------------------------------------------


def batch_run_config(
    periods: list[str],
    domains: list[str],
    *,
    allow_shrink: bool = False,
    in_process: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """The run config of `finops_batch` for these periods and domains.

    `allow_shrink` lets a deliberate restatement replace a month with far fewer rows (the shrink
    gate); `extra` adds other top-level run-config sections (e.g. `loggers`).
    """
    plan: dict[str, Any] = {"periods": list(periods), "domains": list(domains)}
    if allow_shrink:
        plan["allow_shrink"] = True
    config: dict[str, Any] = {"ops": {PLAN_STEP: {"config": plan}}, **extra}
    if in_process:
        config["execution"] = {"config": {"in_process": {}}}
    return config


def batch_selection(run_config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The plan's config (`periods`, `domains`) of a run config; {} when absent or malformed."""
    try:
        config = (run_config or {}).get("ops", {}).get(PLAN_STEP, {}).get("config", {})
    except AttributeError:
        return {}
    return config if isinstance(config, Mapping) else {}
