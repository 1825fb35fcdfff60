"""GET /coverage: for each month and domain, the last successful load and whether it is stale."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from finops_admin_plugin.api.deps import ReaderDep, ResourcesDep
from finops_admin_plugin.http.errors import ServiceUnavailableError
from finops_admin_plugin.models import CoverageCell, CoverageLoad, CoverageResponse
from finops_admin_plugin.readmodel import ReadModelUnavailable
from finops_pipeline.contract import DOMAINS
from finops_pipeline.periods import add_months, format_period

router = APIRouter(tags=["coverage"])

# The daily schedule reloads the current month and N-1: a day and a half without a load is late.
STALE_AFTER_SECONDS = 36 * 3600.0


@router.get(
    "/coverage",
    summary="Months x domains: last successful load (run, time, rows) and staleness",
    response_model=CoverageResponse,
)
def coverage(
    _caller: ReaderDep,
    resources: ResourcesDep,
    months: Annotated[
        int, Query(ge=1, le=60, description="how many months, ending with the current one")
    ] = 12,
) -> CoverageResponse:
    now = datetime.now(UTC)
    current = date(now.year, now.month, 1)
    periods = [format_period(add_months(current, -i)) for i in range(months)]
    recomputed = set(periods[:2])
    try:
        loads = {(row["period"], row["domain"]): row for row in resources.store.latest_loads(periods)}
    except ReadModelUnavailable as exc:
        raise ServiceUnavailableError(str(exc)) from None
    items = []
    for period in periods:
        for domain in DOMAINS:
            row = loads.get((period, domain))
            if row is None:
                items.append(CoverageCell(period=period, domain=domain, stale=True))
                continue
            age = (now - row["loaded_at"]).total_seconds()
            items.append(
                CoverageCell(
                    period=period,
                    domain=domain,
                    last_load=CoverageLoad(
                        run_id=row["run_id"],
                        time=row["loaded_at"],
                        releves_inserted=row["releves_inserted"],
                        rows_read=row["rows_read"],
                    ),
                    age_seconds=round(age, 3),
                    stale=period in recomputed and age > STALE_AFTER_SECONDS,
                )
            )
    return CoverageResponse(
        periods=periods, domains=list(DOMAINS), stale_after_seconds=STALE_AFTER_SECONDS, items=items
    )
