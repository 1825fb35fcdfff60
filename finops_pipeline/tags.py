"""The `finops/*` run tags every batch run carries (the pipeline -> plugin contract)."""

from __future__ import annotations

from collections.abc import Iterable

from finops_pipeline import __version__
from finops_pipeline.constants import (
    DOMAINS,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REASON,
    TAG_REPROCESS_REQUEST_ID,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    TAG_VERSION,
    TRIGGER_CRON,
    TRIGGER_MANUAL,
)
from finops_pipeline.periods import normalize_periods

__all__ = ["batch_tags", "normalize_domains"]


def normalize_domains(values: Iterable[str]) -> list[str]:
    """Validate domains and return them in canonical order."""
    wanted = [v.strip().lower() for v in values]
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
    if trigger not in (TRIGGER_CRON, TRIGGER_MANUAL):
        raise ValueError(f"trigger must be CRON or MANUAL, got {trigger!r}")
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
        tags[TAG_REASON] = reason[:500]
    return tags
