"""The `finops_sources` rows of a source -> its view (pure: no I/O).

The state of a month is derived here, from what the delivery sensor and the loads recorded
(`finops_pipeline.sources.state.source_months`), and from the source's `expected_day`:

| state | when |
|---|---|
| `FAILED` | the newest load attempt failed, on the month's latest complete delivery |
| `LOADED` | the latest complete delivery is the one last loaded |
| `PENDING` | a complete delivery not loaded yet (new, or newer than the loaded one) |
| `INCOMPLETE` | data without a complete delivery (no manifest, still settling) and nothing complete |
| `MISSING` | nothing at all, and the deadline (`expected_day` of the next month) has passed |

A month with a complete delivery keeps its state while a newer delivery is still incomplete
(Azure writes a month-to-date run every day: the month would otherwise read INCOMPLETE most of
the time); the incomplete data is still shown beside it with its age.

MISSING is only derived for a source the sensor has listed at least once: before its first
scan nothing is known, and a fresh install would otherwise report every source late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Final

from finops_admin_plugin.models.sources import (
    SourceDelivery,
    SourceFailure,
    SourceIncomplete,
    SourceLoad,
    SourceMonth,
    SourceResponse,
    SourceScanInfo,
    SourceState,
)
from finops_pipeline.periods import add_months, format_period, parse_period
from finops_pipeline.sources.config import Source
from finops_pipeline.sources.state import MonthRow, ScanRow

__all__ = ["DEFAULT_MONTHS", "expected_by", "expected_months", "map_month", "map_source", "month_state"]

DEFAULT_MONTHS: Final = 24


def expected_by(period: str, expected_day: int) -> datetime:
    """The deadline of a month's delivery: `expected_day` of the next month, 00:00 UTC."""
    following = add_months(parse_period(period), 1)
    return datetime(following.year, following.month, expected_day, tzinfo=UTC)


def expected_months(
    expected_day: int, held: Sequence[str], now: datetime, limit: int = DEFAULT_MONTHS
) -> list[str]:
    """The months a source should hold by `now`, newest first, at most `limit`: from its oldest
    held month (or, holding nothing, only the newest month past its deadline) to the newest month
    whose deadline has passed."""
    current = date(now.year, now.month, 1)
    newest = add_months(current, -1)
    if now < expected_by(format_period(newest), expected_day):
        newest = add_months(newest, -1)
    oldest = min((parse_period(p) for p in held), default=newest)
    months: list[str] = []
    month = newest
    while month >= oldest and len(months) < limit:
        months.append(format_period(month))
        month = add_months(month, -1)
    return months


def month_state(row: MonthRow | None) -> SourceState:
    """The state of a month from its recorded rows (None: nothing recorded: MISSING)."""
    if row is None:
        return "MISSING"
    attempt = row.last_attempt
    if row.latest is not None:
        if (
            attempt is not None
            and attempt.status == "FAILED"
            and attempt.delivery_id == row.latest.delivery_id
        ):
            return "FAILED"
        if row.loaded is not None and row.loaded.delivery_id == row.latest.delivery_id:
            return "LOADED"
        return "PENDING"
    if row.incomplete_since is not None:
        return "INCOMPLETE"
    # Loads without a delivery row: the delivery was loaded before the sensor recorded it.
    if attempt is not None and attempt.status == "FAILED":
        return "FAILED"
    return "LOADED" if row.loaded is not None else "MISSING"


def map_month(
    period: str, row: MonthRow | None, now: datetime, expected_day: int | None = None
) -> SourceMonth:
    state = month_state(row)
    latest = loaded = incomplete = failure = None
    if row is not None:
        if row.latest is not None:
            latest = SourceDelivery(
                delivery_id=row.latest.delivery_id,
                delivered_at=row.latest.delivered_at,
                files=row.latest.files,
                bytes=row.latest.bytes,
            )
        if row.loaded is not None:
            loaded = SourceLoad(
                delivery_id=row.loaded.delivery_id, run_id=row.loaded.run_id, loaded_at=row.loaded.at
            )
        if row.incomplete_since is not None:
            incomplete = SourceIncomplete(
                since=row.incomplete_since,
                files=row.incomplete_files or 0,
                age_seconds=round(max(0.0, (now - row.incomplete_since).total_seconds()), 3),
                reason=row.incomplete_reason,
            )
        if state == "FAILED" and row.last_attempt is not None:
            failure = SourceFailure(
                run_id=row.last_attempt.run_id,
                delivery_id=row.last_attempt.delivery_id,
                failed_at=row.last_attempt.at,
                gate=row.last_attempt.gate,
                message=row.last_attempt.message,
            )
    return SourceMonth(
        period=period,
        state=state,
        latest=latest,
        loaded=loaded,
        incomplete=incomplete,
        failure=failure,
        expected_by=expected_by(period, expected_day) if expected_day else None,
    )


def map_source(
    source: Source,
    rows: Sequence[MonthRow],
    scan: ScanRow | None,
    now: datetime,
    *,
    location_known: bool = True,
    limit: int = DEFAULT_MONTHS,
) -> SourceResponse:
    """A source's view: the months it holds, plus the months it should hold by now (MISSING)."""
    by_period = {row.period: row for row in rows if row.source == source.name}
    periods = set(by_period)
    if source.expected_day and scan is not None:
        periods.update(expected_months(source.expected_day, sorted(by_period), now, limit))
    newest_first = sorted(periods, reverse=True)[:limit]
    return SourceResponse(
        name=source.name,
        domain=source.domain,
        kind=source.kind,
        location=source.location if location_known else None,
        expected_day=source.expected_day,
        last_scan=SourceScanInfo(scanned_at=scan.scanned_at, error=scan.error) if scan is not None else None,
        months=[map_month(p, by_period.get(p), now, source.expected_day) for p in newest_first],
    )
