"""What a reprocess request may ask for: the rules the API applies and the sensor re-checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from finops_pipeline.contract import DOMAINS, normalize_domains
from finops_pipeline.periods import PeriodError, format_period, parse_period

__all__ = [
    "IDEMPOTENCY_KEY_MAX",
    "MAX_PERIODS",
    "REASON_MAX",
    "REASON_MIN",
    "CheckedRequest",
    "RequestInvalid",
    "check_domains",
    "check_idempotency_key",
    "check_periods",
    "check_reason",
    "check_request",
]

MAX_PERIODS: Final = 24
REASON_MIN: Final = 3
REASON_MAX: Final = 500
IDEMPOTENCY_KEY_MAX: Final = 128
_IDEMPOTENCY_KEY_RE: Final = re.compile(r"^[A-Za-z0-9._:\-]+$")
# Newlines and tabs are fine in a reason; other control characters (NUL above all,
# which PostgreSQL text cannot hold) are not.
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class RequestInvalid(ValueError):
    """A reprocess request that breaks a rule; `field` names the part of the body at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CheckedRequest:
    periods: list[str]  # distinct, newest first
    domains: list[str]  # distinct, in DOMAINS order
    reason: str  # trimmed


def check_periods(values: Sequence[str], now: datetime) -> list[str]:
    """Distinct `YYYY-MM` months, none after the month of `now`, at most MAX_PERIODS; newest first."""
    if not values:
        raise RequestInvalid("periods", "give at least one month (YYYY-MM)")
    current = date(now.year, now.month, 1)
    months: set[date] = set()
    for index, value in enumerate(values):
        try:
            month = parse_period(value)
        except PeriodError:
            raise RequestInvalid(
                f"periods[{index}]", f"must be a month YYYY-MM (2000 or later), got {value!r}"
            ) from None
        if month > current:
            raise RequestInvalid(
                f"periods[{index}]",
                f"{format_period(month)} is in the future; the latest month that can be reprocessed is "
                f"{format_period(current)}",
            )
        months.add(month)
    if len(months) > MAX_PERIODS:
        raise RequestInvalid(
            "periods",
            f"at most {MAX_PERIODS} distinct months per request, got {len(months)}; split the reprocess "
            "into several requests",
        )
    return [format_period(m) for m in sorted(months, reverse=True)]


def check_domains(values: Sequence[str] | None) -> list[str]:
    """Distinct known domains in canonical order; None means every domain."""
    if values is None:
        return list(DOMAINS)
    if not values:
        raise RequestInvalid(
            "domains", f"select at least one domain among {', '.join(DOMAINS)}, or omit the field for all"
        )
    for index, value in enumerate(values):
        try:
            normalize_domains([value])
        except ValueError:
            raise RequestInvalid(
                f"domains[{index}]", f"unknown domain {value!r}; expected any of {', '.join(DOMAINS)}"
            ) from None
    return normalize_domains(values)


def check_reason(value: str) -> str:
    reason = value.strip()
    if len(reason) < REASON_MIN:
        raise RequestInvalid(
            "reason",
            f"say why this reprocess is needed ({REASON_MIN} to {REASON_MAX} characters), got {value!r}",
        )
    if len(reason) > REASON_MAX:
        raise RequestInvalid("reason", f"at most {REASON_MAX} characters, got {len(reason)}")
    bad = _CONTROL_RE.search(reason)
    if bad:
        raise RequestInvalid(
            "reason", f"control character {bad.group()!r} at position {bad.start()}; use plain text"
        )
    return reason


def check_idempotency_key(value: str) -> str:
    if not 1 <= len(value) <= IDEMPOTENCY_KEY_MAX or not _IDEMPOTENCY_KEY_RE.match(value):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise RequestInvalid(
            "Idempotency-Key",
            f"1 to {IDEMPOTENCY_KEY_MAX} characters among letters, digits and . _ : - (a UUID is fine), "
            f"got {shown!r}",
        )
    return value


def check_request(
    periods: Sequence[str], domains: Sequence[str] | None, reason: str, now: datetime | None = None
) -> CheckedRequest:
    """Every rule at once; raises RequestInvalid naming the first field at fault."""
    return CheckedRequest(
        periods=check_periods(periods, now or datetime.now(UTC)),
        domains=check_domains(domains),
        reason=check_reason(reason),
    )
