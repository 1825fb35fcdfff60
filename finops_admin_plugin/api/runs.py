"""GET /runs (list, filters, sorts, cursor pages, CSV export) and GET /runs/{runId} (detail).

The list is served from the read model (one indexed statement per page). A
detail comes from the read model once the run has ended, with the failure
excerpt the projector stored for a FAILED run, and is built fresh from Dagster
while it is queued or running.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from finops_admin_plugin.api.deps import FoundRun, ReaderDep, ResourcesDep, RunDep, RunFiltersDep
from finops_admin_plugin.auth import Caller
from finops_admin_plugin.auth.roles import can_administer
from finops_admin_plugin.http.errors import InputError, ServiceUnavailableError, shown
from finops_admin_plugin.links import LinkConfig, run_link_values, with_links
from finops_admin_plugin.logs import build_excerpt
from finops_admin_plugin.models import LogExcerpt, RunCollectionResponse, RunDetailResponse
from finops_admin_plugin.readmodel import CursorError, ListedRun, ReadModelUnavailable, RunFilters
from finops_admin_plugin.resources import AdminResources
from finops_pipeline.contract import DOMAINS

__all__ = ["CSV_COLUMNS", "csv_columns", "router"]

router = APIRouter(tags=["runs"])

CSV_COLUMNS = (
    "runId", "status", "dagsterStatus", "trigger", "launchedBy", "reprocessRequestId", "periods", "domains",
    *(f"{d}Status" for d in DOMAINS),
    "createdTime", "startTime", "endTime", "durationSeconds", "rowsRead", "relevesInserted",
    "relevesDeleted", "relevesRejected", "billedCost", "mvsRefreshed", "errorCount", "errorMessage",
    "anomalies", "version",
)  # fmt: skip
_COST_COLUMN: Final = CSV_COLUMNS.index("billedCost")


def csv_columns(currencies: Sequence[str]) -> tuple[str, ...]:
    """The export's columns: `billedCost` becomes one column per currency present (`billedCost EUR`,
    `billedCost USD`, ... sorted by code), since amounts of two currencies are never added."""
    costs = tuple(f"billedCost {c}" for c in currencies)
    return CSV_COLUMNS[:_COST_COLUMN] + costs + CSV_COLUMNS[_COST_COLUMN + 1 :]


_JSON: Final = json.JSONEncoder(separators=(",", ":"))


def _csv_cell(value: Any) -> Any:
    # Spreadsheets run cells starting with = + - @, tab or CR as formulas (OWASP CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _older_cost(run: dict[str, Any]) -> None:
    """A run stored by a mapping before costs were per currency (until the projector re-projects
    it) has one figure over every currency: it cannot be split, so it is not shown."""
    volumes = run["volumes"]
    if not isinstance(volumes.get("billedCost"), list):
        volumes["billedCost"] = []


def _anomaly_label(anomaly: dict[str, Any]) -> str:
    value = anomaly.get("value")
    currency = f":{value[0]['currency']}" if isinstance(value, list) and value else ""  # a cost's
    return f"{anomaly['scope']}:{anomaly['metric']}{currency}"


def _csv_row(run: dict[str, Any], currencies: Sequence[str]) -> list[Any]:
    _older_cost(run)
    volumes, errors = run["volumes"], run["errors"]
    anomalies = " ".join(_anomaly_label(a) for a in run.get("anomalies", []))
    costs = {item["currency"]: item["amount"] for item in volumes["billedCost"]}
    # Exact decimal text as stored (the model's pattern: digits, one point, a leading minus): not a
    # formula, so kept as it is. Empty: no cost in that currency.
    cells = [
        _csv_cell(v)
        for v in (
            run["runId"], run["status"], run["dagsterStatus"], run["trigger"], run.get("launchedBy") or "",
            run.get("reprocessRequestId") or "",
            ";".join(run["periods"]), ";".join(run["domains"]),
            *(run["domainStatuses"].get(d, "") for d in DOMAINS),
            run["createdTime"], run.get("startTime") or "", run.get("endTime") or "",
            "" if run.get("durationSeconds") is None else run["durationSeconds"],
            volumes["rowsRead"], volumes["relevesInserted"], volumes["relevesDeleted"],
            volumes["relevesRejected"], volumes["mvsRefreshed"],
            errors["count"], errors.get("message") or "", anomalies, run.get("version") or "",
        )
    ]  # fmt: skip
    return cells[:_COST_COLUMN] + [costs.get(c, "") for c in currencies] + cells[_COST_COLUMN:]


def _csv_export(resources: AdminResources, filters: RunFilters) -> StreamingResponse:
    export = resources.store.export(filters)  # fails before the 200 header when the database is down
    rows, currencies = export.rows, export.currencies
    first = next(rows, None)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(csv_columns(currencies))
        if first is not None:
            writer.writerow(_csv_row(first, currencies))
            for run in rows:
                writer.writerow(_csv_row(run, currencies))
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
    # The stored list items are served as they are, as the JSON text the database holds (validating
    # 50 documents per page, or parsing and writing them again, would cost more than the query);
    # tests validate every stored item against RunResponse. Only an item with a failure signature
    # (its "seen in N runs", read by the page's query, is added) or stored before costs were per
    # currency is parsed.
    parsed = {run.run_id: _with_seen_in_runs(run) for run in page.runs if _needs_parsing(run)}
    items = ",".join(
        _with_links(run, resources.links)
        if run.run_id not in parsed
        else _parsed_item(parsed[run.run_id], resources)
        for run in page.runs
    )
    rest = _JSON.encode({"nextCursor": next_cursor})
    return Response(
        content=f'{{"items":[{items}],"pageInfo":{rest},"totalItems":{page.total:d}}}',
        media_type="application/json",
    )


def _needs_parsing(run: ListedRun) -> bool:
    # PostgreSQL writes jsonb as `"key": value`. Parsed: a failure signature (its counts are added
    # now), an item stored before signatures or before costs per currency (until re-projected).
    text = run.json
    return '"signature": "' in text or '"signature": null' not in text or '"billedCost": [' not in text


def _parsed_item(item: dict[str, Any], resources: AdminResources) -> str:
    _older_cost(item)
    item["links"] = run_link_values(
        item["runId"], item.get("startTime"), item.get("endTime"), resources.links
    )
    return _JSON.encode(item)


def _with_links(run: ListedRun, config: LinkConfig) -> str:
    """The stored JSON object of a list item, with its `links` member added (and the failure
    counts, null: the item has no failure signature)."""
    links = _JSON.encode(run_link_values(run.run_id, run.start_time, run.end_time, config))
    body = run.json.rstrip()[:-1].rstrip()  # the object without its closing brace
    if '"seenInRuns"' not in body:  # stored by a mapping before the failure counts
        counts = '"signature": null, "seenInRuns": null, "firstSeen": null'
        body = body.replace('"signature": null', counts, 1)
    return f'{body}{"," if body != "{" else ""}"links":{links}}}'


@router.get(
    "/runs/{runId}",
    summary="One FinOps run: summary, periods, per-domain blocks, aggregates, log links",
    response_model=RunDetailResponse,
)
async def run_detail(caller: ReaderDep, resources: ResourcesDep, found: RunDep) -> Response:
    # `async`: the run was read by `RunDep` on a worker thread; what is left is CPU work, done here
    # rather than after one more thread hand-off (only an excerpt not stored reads Dagster).
    run = found.detail
    if not can_administer(caller):
        run = _without_samples(run)
    if run.errors.signature is not None and run.errors.seen_in_runs is None:
        # Counted with the stored detail; a run read from Dagster (just ended) counts here, off
        # the event loop.
        run = await run_in_threadpool(_detail_seen_in_runs, resources, run)
    excerpt = None
    if _shows_excerpt(caller, found):
        # Stored by the read model once the run has ended; built from Dagster otherwise.
        stored = found.excerpt_stored
        excerpt = found.excerpt if stored else await run_in_threadpool(_built_excerpt, resources, run.run_id)
    detail = with_links(run, resources.links, excerpt)
    # Built and checked as a RunDetailResponse already: serialized once here, instead of FastAPI
    # validating it again against `response_model` (about 0.5 ms a detail).
    return Response(detail.model_dump_json(by_alias=True), media_type="application/json")


def _with_seen_in_runs(run: ListedRun) -> dict[str, Any]:
    """The item parsed, with how many runs failed with its signature and since when (read with the
    page: every new failure changes them, so they are never stored in the item)."""
    item: dict[str, Any] = json.loads(run.json)
    errors = item["errors"]
    errors.setdefault("signature", None)
    errors["seenInRuns"] = errors["firstSeen"] = None
    if errors["signature"] is not None and run.seen_in_runs is not None and run.first_seen is not None:
        errors["seenInRuns"] = run.seen_in_runs
        errors["firstSeen"] = run.first_seen.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return item


def _detail_seen_in_runs(resources: AdminResources, run: RunDetailResponse) -> RunDetailResponse:
    signature = run.errors.signature
    if signature is None:
        return run
    try:
        found = resources.store.signature_stats([signature]).get(signature)
    except ReadModelUnavailable:
        return run  # the detail still answers; the count is left out
    if found is None:
        return run
    errors = run.errors.model_copy(update={"seen_in_runs": found.runs, "first_seen": found.first_seen})
    return run.model_copy(update={"errors": errors})


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


def _shows_excerpt(caller: Caller, found: FoundRun) -> bool:
    """A FAILED run's failing step and the end of its stderr: log content, so for admins only."""
    return found.detail.status == "FAILED" and can_administer(caller)


def _built_excerpt(resources: AdminResources, run_id: str) -> LogExcerpt | None:
    try:
        source = resources.source
    except ServiceUnavailableError:
        return None
    return build_excerpt(source, run_id)
