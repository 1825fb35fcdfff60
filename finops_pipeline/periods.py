"""Billing periods (`YYYY-MM` months): parsing, defaults and roles."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period that is not a valid `YYYY-MM` month."""


def parse_period(value: str) -> date:
    """Return the first day of the month named by `value` (`YYYY-MM`)."""
    match = _PERIOD_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise PeriodError(f"period must be YYYY-MM, got {value!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or year < 2000:
        raise PeriodError(f"period must be YYYY-MM, got {value!r}")
    return date(year, month, 1)


def format_period(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period as UTC datetimes."""
    start = parse_period(period)
    end = add_months(start, 1)
    return (
        datetime(start.year, start.month, 1, tzinfo=UTC),
        datetime(end.year, end.month, 1, tzinfo=UTC),
    )


def default_periods(now: datetime) -> list[str]:
    """The current month and N-1: what a scheduled run recomputes."""
    current = date(now.year, now.month, 1)
    return [format_period(current), format_period(add_months(current, -1))]


def normalize_periods(values: list[str]) -> list[str]:
    """Validate, de-duplicate and sort periods newest first."""
    parsed = {parse_period(v) for v in values}
    return [format_period(d) for d in sorted(parsed, reverse=True)]


def period_role(period: str, run_start: datetime) -> str:
    """CURRENT (month of the run's start), PREVIOUS (N-1) or OTHER."""
    day = parse_period(period)
    current = date(run_start.year, run_start.month, 1)
    if day == current:
        return "CURRENT"
    if day == add_months(current, -1):
        return "PREVIOUS"
    return "OTHER"
