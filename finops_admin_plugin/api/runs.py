"""GET /runs (list, filters, sorts, cursor pages, CSV export) and GET /runs/{runId} (detail).

The list is served from the read model (one indexed statement per page). A
detail comes from the read model once the run has ended, and is built fresh
from Dagster while it is queued or running.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, get_args

import sqlalchemy.exc
from dagster import RunRecord
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from finops_admin_plugin.auth import Caller, ReaderDep
from finops_admin_plugin.auth.roles import can_administer
from finops_admin_plugin.errors import InputError, NotFoundError, ServiceUnavailableError, shown
from finops_admin_plugin.links import run_link_values, with_links
from finops_admin_plugin.logs import build_excerpt
from finops_admin_plugin.mapping.runs import map_run_detail
from finops_admin_plugin.models import LogExcerpt, RunCollectionResponse, RunDetailResponse, RunStatus
from finops_admin_plugin.readmodel import SORTS, CursorError, ReadModelUnavailable, RunFilters
from finops_admin_plugin.resources import AdminResources, ResourcesDep
from finops_pipeline.contract import DOMAINS, JOB_NAME, TRIGGER_CRON, TRIGGER_MANUAL
from finops_pipeline.periods import PeriodError, parse_period

__all__ = ["RunDep", "RunFiltersDep", "RunIdDep", "get_run", "get_run_filters", "get_run_id", "router"]

router = APIRouter(tags=["runs"])

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
TRIGGERS = (TRIGGER_CRON, TRIGGER_MANUAL)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RUN_ID_SEARCH = re.compile(r"^[0-9A-Fa-f-]{1,36}$")
CSV_COLUMNS = (
    "runId", "status", "dagsterStatus", "trigger", "launchedBy", "reprocessRequestId", "periods", "domains",
    *(f"{d}Status" for d in DOMAINS),
    "createdTime", "startTime", "endTime", "durationSeconds", "rowsRead", "relevesInserted",
    "relevesDeleted", "relevesRejected", "billedCost", "mvsRefreshed", "errorCount", "errorMessage",
    "anomalies", "version",
)  # fmt: skip


def _values(param: str, raw: list[str]) -> list[str]:
    """Repeatable parameter values; `a,b` counts as two values."""
    values = [part.strip() for item in raw for part in item.split(",")]
    if any(not v for v in values):
        raise InputError(f"{param}: empty value in {shown(','.join(raw))}")
    return values


def _enum(param: str, raw: list[str], allowed: tuple[str, ...], *, upper: bool) -> tuple[str, ...]:
    chosen = []
    for value in _values(param, raw):
        normalized = value.upper() if upper else value.lower()
        if normalized not in allowed:
            raise InputError(f"{param}: unknown value {shown(value)}; expected any of {', '.join(allowed)}")
        chosen.append(normalized)
    return tuple(dict.fromkeys(chosen))


def _instant(param: str, value: str, *, upper_bound: bool) -> datetime:
    """An ISO date or datetime (UTC unless an offset is given) as a bound on start time.

    A date as `to` includes that whole day; a datetime as `to` is inclusive.
    """
    text = value.strip()
    problem = (
        f"{param} must be an ISO date (2026-11-01) or datetime (2026-11-01T06:00:00Z), got {shown(value)}"
    )
    if len(text) > 40:
        raise InputError(problem)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) if upper_bound else moment
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment + timedelta(microseconds=1) if upper_bound else moment
    except (ValueError, OverflowError):
        raise InputError(problem) from None


async def get_run_filters(
    status: Annotated[list[str], Query(description=f"any of {', '.join(RUN_STATUSES)}; repeatable")] = [],  # noqa: B006
    period: Annotated[list[str], Query(description="YYYY-MM; runs processing any of them; repeatable")] = [],  # noqa: B006
    domain: Annotated[list[str], Query(description=f"any of {', '.join(DOMAINS)}; repeatable")] = [],  # noqa: B006
    trigger: Annotated[str | None, Query(description="CRON or MANUAL")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="start time at or after: ISO date or datetime (UTC)")
    ] = None,
    to: Annotated[
        str | None, Query(description="start time at or before: ISO datetime, or a date (the whole day)")
    ] = None,
    q: Annotated[str | None, Query(description="run id, or its beginning (hex digits and dashes)")] = None,
    anomalous: Annotated[
        bool | None, Query(description="only runs with (true) or without (false) anomalies")
    ] = None,
    sort: Annotated[str, Query(description=f"one of {', '.join(SORTS)}")] = "-startTime",
) -> RunFilters:
    # `async` though it awaits nothing: pure parsing, so it runs on the event loop instead of
    # costing a worker-thread round trip (a sync dependency is run in FastAPI's thread pool).
    periods = []
    for value in _values("period", period):
        try:
            parse_period(value)
        except PeriodError as exc:
            raise InputError(f"period must be YYYY-MM, got {shown(value)}") from exc
        periods.append(value)
    triggers = _enum("trigger", [trigger], TRIGGERS, upper=True) if trigger is not None else ()
    if sort not in SORTS:
        raise InputError(f"sort must be one of {', '.join(SORTS)}; got {shown(sort)}")
    start_from = _instant("from", from_, upper_bound=False) if from_ is not None else None
    start_before = _instant("to", to, upper_bound=True) if to is not None else None
    if start_from is not None and start_before is not None and start_from >= start_before:
        raise InputError(f"from ({shown(from_ or '')}) is after to ({shown(to or '')})")
    if q is not None and not _RUN_ID_SEARCH.match(q.strip()):
        raise InputError(f"q searches run ids (hex digits and dashes, at most 36); got {shown(q)}")
    return RunFilters(
        statuses=_enum("status", status, RUN_STATUSES, upper=True),
        periods=tuple(dict.fromkeys(periods)),
        domains=_enum("domain", domain, DOMAINS, upper=False),
        trigger=triggers[0] if triggers else None,
        start_from=start_from,
        start_before=start_before,
        q=q.strip().lower() if q else None,
        anomalous=anomalous,
        sort=sort,  # type: ignore[arg-type]
    )


RunFiltersDep = Annotated[RunFilters, Depends(get_run_filters)]


def _json(payload: Any) -> Response:
    return Response(content=json.dumps(payload, separators=(",", ":")), media_type="application/json")


def _csv_cell(value: Any) -> Any:
    # Spreadsheets run cells starting with = + - @, tab or CR as formulas (OWASP CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_row(run: dict[str, Any]) -> list[Any]:
    volumes, errors = run["volumes"], run["errors"]
    anomalies = " ".join(f"{a['scope']}:{a['metric']}" for a in run.get("anomalies", []))
    return [
        _csv_cell(v)
        for v in (
            run["runId"], run["status"], run["dagsterStatus"], run["trigger"], run.get("launchedBy") or "",
            run.get("reprocessRequestId") or "",
            ";".join(run["periods"]), ";".join(run["domains"]),
            *(run["domainStatuses"].get(d, "") for d in DOMAINS),
            run["createdTime"], run.get("startTime") or "", run.get("endTime") or "",
            "" if run.get("durationSeconds") is None else run["durationSeconds"],
            volumes["rowsRead"], volumes["relevesInserted"], volumes["relevesDeleted"],
            volumes["relevesRejected"], volumes["billedCost"], volumes["mvsRefreshed"],
            errors["count"], errors.get("message") or "", anomalies, run.get("version") or "",
        )
    ]  # fmt: skip


def _csv_export(resources: AdminResources, filters: RunFilters) -> StreamingResponse:
    rows = resources.store.export(filters)
    first = next(rows, None)  # fail before the 200 header is sent when the database is down

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        if first is not None:
            writer.writerow(_csv_row(first))
            for run in rows:
                writer.writerow(_csv_row(run))
                if buffer.tell() > 64_000:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="finops-runs-{stamp}.csv"'},
    )


@router.get(
    "/runs",
    summary="FinOps batch runs, newest first: filters, sorts, cursor pages, CSV export",
    response_model=RunCollectionResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def list_runs(
    _caller: ReaderDep,
    resources: ResourcesDep,
    filters: RunFiltersDep,
    limit: Annotated[int, Query(ge=1, le=200, description="page size, 1-200")] = 50,
    cursor: Annotated[str | None, Query(description="`pageInfo.nextCursor` of the previous page")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="csv: the whole filtered list")] = "json",
) -> Response:
    try:
        if format == "csv":
            return _csv_export(resources, filters)
        after = None
        if cursor is not None:
            try:
                after = resources.store.cursor_key().decode(cursor, filters)
            except CursorError as exc:
                raise InputError(f"cursor is not valid: {exc}; got {shown(cursor, 40)}") from None
        page = resources.store.page(filters, limit, after)
    except ReadModelUnavailable as exc:
        raise ServiceUnavailableError(str(exc)) from None
    next_cursor = (
        resources.store.cursor_key().encode(filters, page.next_after[0], page.next_after[1])
        if page.next_after
        else None
    )
    # The stored list items are served as they are (validating 50 documents per page would cost more
    # than the query); tests validate every stored item against RunResponse.
    for item in page.items:
        item["links"] = run_link_values(
            item["runId"], item.get("startTime"), item.get("endTime"), resources.links
        )
    items = page.items
    return _json({"items": items, "pageInfo": {"nextCursor": next_cursor}, "totalItems": page.total})


def _checked_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise InputError(f"runId must be a Dagster run id (letters, digits, dashes); got {shown(run_id)}")
    return run_id


def _finops_record(resources: AdminResources, run_id: str) -> RunRecord:
    """The Dagster record of a FinOps run; NotFoundError for an unknown run or another job's."""
    record = resources.source.run_record(run_id)
    if record is None:
        raise NotFoundError(f"no run with runId {shown(run_id)} in Dagster")
    job_name = record.dagster_run.job_name
    if job_name != JOB_NAME:
        raise NotFoundError(
            f"runId {shown(run_id)} is a run of Dagster job {job_name!r}, "
            f"not of the FinOps batch ({JOB_NAME})"
        )
    return record


def get_run_id(
    resources: ResourcesDep,
    run_id: Annotated[str, Path(alias="runId", description="Dagster run id of a FinOps batch run")],
) -> str:
    """The id of a FinOps run known to the read model or to Dagster (a cheap check: no detail built)."""
    _checked_run_id(run_id)
    try:
        if resources.store.summary(run_id) is not None:
            return run_id
    except (ReadModelUnavailable, ServiceUnavailableError):
        pass  # Dagster can still say
    try:
        _finops_record(resources, run_id)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise ServiceUnavailableError(f"Dagster storage does not answer: {type(exc).__name__}") from None
    return run_id


RunIdDep = Annotated[str, Depends(get_run_id)]


def get_run(
    resources: ResourcesDep,
    run_id: Annotated[str, Path(alias="runId", description="Dagster run id of a FinOps batch run")],
) -> RunDetailResponse:
    """The detail of a FinOps run: stored once it has ended, fresh from Dagster before."""
    _checked_run_id(run_id)
    try:
        found = resources.store.detail(run_id)
    except (ReadModelUnavailable, ServiceUnavailableError):
        found = None  # the detail can still be built from Dagster
    stored = RunDetailResponse.model_validate(found[0]) if found is not None else None
    if stored is not None and found is not None and not found[1]:
        return stored
    try:
        record = _finops_record(resources, run_id)
        detail = map_run_detail(record, resources.source.events(run_id).entries)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise ServiceUnavailableError(f"Dagster storage does not answer: {type(exc).__name__}") from None
    if stored is None:
        return detail
    # Anomalies are scored by the projector, from history: keep the stored ones.
    previous = {b.domain: b.anomalies for b in stored.blocks}
    return detail.model_copy(
        update={
            "anomalies": stored.anomalies,
            "blocks": [b.model_copy(update={"anomalies": previous.get(b.domain, [])}) for b in detail.blocks],
        }
    )


RunDep = Annotated[RunDetailResponse, Depends(get_run)]


@router.get(
    "/runs/{runId}",
    summary="One FinOps run: summary, periods, per-domain blocks, aggregates, log links",
    response_model=RunDetailResponse,
)
def run_detail(caller: ReaderDep, resources: ResourcesDep, run: RunDep) -> Response:
    if not can_administer(caller):
        run = _without_samples(run)
    detail = with_links(run, resources.links, _log_excerpt(resources, caller, run))
    # Built and checked as a RunDetailResponse already: serialized once here, instead of FastAPI
    # validating it again against `response_model` (about 0.5 ms a detail).
    return Response(detail.model_dump_json(by_alias=True), media_type="application/json")


def _without_samples(run: RunDetailResponse) -> RunDetailResponse:
    """Rejected rows' file, line and value are for admins: a read-only caller gets the counts."""
    blocks = [
        block.model_copy(
            update={
                "quality": [
                    q.model_copy(
                        update={"rejected": [r.model_copy(update={"samples": []}) for r in q.rejected]}
                    )
                    for q in block.quality
                ]
            }
        )
        for block in run.blocks
    ]
    return run.model_copy(update={"blocks": blocks})


def _log_excerpt(resources: AdminResources, caller: Caller, run: RunDetailResponse) -> LogExcerpt | None:
    """A FAILED run's failing step and the end of its stderr; log content, so for admins only."""
    if run.status != "FAILED" or not can_administer(caller):
        return None
    try:
        source = resources.source
    except ServiceUnavailableError:
        return None
    return build_excerpt(source, run.run_id)
