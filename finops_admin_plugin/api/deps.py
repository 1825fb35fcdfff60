"""Every route dependency of the admin API, as `Annotated` aliases the routes declare.

- `ResourcesDep` / `SettingsDep`: the app's `AdminResources` and its settings;
- `CallerDep` (who), `ReaderDep` (may read runs and coverage), `AdminDep` (may do everything);
- `RunFiltersDep`, `RunIdDep`, `RunDep`: the run list's filters, a known run's id, its detail;
- `ReprocessQueueDep`, `ReprocessCallDep`, `IdempotencyKeyDep`, `RequestIdDep`: reprocess input.

Lookups and validation happen here, so a route only states what it needs; each failure is an
API error in Backstage's body, never a 500.

What never blocks (the container, settings, role checks, parsing, dev and service-token callers)
is `async def`: FastAPI runs a plain `def` dependency in its thread pool, and each such hand-off
cost 0.1-0.3 ms of a request (more on a loaded machine), five of them per run detail. Only what
waits on a database or on Backstage runs on a worker thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, get_args

from dagster import RunRecord
from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from finops_admin_plugin.auth import Caller, bearer_scheme, check_admin, check_reader
from finops_admin_plugin.dagster_reader import DagsterUnavailable
from finops_admin_plugin.http.errors import InputError, NotFoundError, ServiceUnavailableError, shown
from finops_admin_plugin.mapping.runs import map_run_detail
from finops_admin_plugin.models import LogExcerpt, RunDetailResponse, RunStatus
from finops_admin_plugin.readmodel import SORTS, ReadModelUnavailable, RunFilters
from finops_admin_plugin.reprocess.parsing import (
    ReprocessCall,
    get_idempotency_key,
    get_reprocess_call,
    get_request_id,
)
from finops_admin_plugin.resources import AdminResources
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.contract import DOMAINS, JOB_NAME, TRIGGERS
from finops_pipeline.periods import PeriodError, parse_period
from finops_pipeline.reprocess.queue import ReprocessQueue

__all__ = [
    "RUN_STATUSES",
    "AdminDep",
    "CallerDep",
    "FoundRun",
    "IdempotencyKeyDep",
    "ReaderDep",
    "ReprocessCallDep",
    "ReprocessQueueDep",
    "RequestIdDep",
    "ResourcesDep",
    "RunDep",
    "RunFiltersDep",
    "RunIdDep",
    "SettingsDep",
    "get_caller",
    "get_resources",
    "get_run",
    "get_run_filters",
    "get_run_id",
    "get_settings_of",
]

# --- the container ------------------------------------------------------------------------------


async def get_resources(request: Request) -> AdminResources:
    resources: AdminResources | None = getattr(request.app.state, "finops", None)
    if resources is None:  # pragma: no cover - create_app always sets it
        raise ServiceUnavailableError("the admin resources are not configured")
    return resources


ResourcesDep = Annotated[AdminResources, Depends(get_resources)]


async def get_settings_of(resources: ResourcesDep) -> AdminSettings:
    return resources.settings


SettingsDep = Annotated[AdminSettings, Depends(get_settings_of)]

# --- the caller ---------------------------------------------------------------------------------


async def get_caller(
    request: Request,
    resources: ResourcesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    authenticator = resources.authenticator
    authorization = request.headers.get("authorization")
    if authenticator.may_block:
        # Verifying a Backstage token may call Backstage (JWKS, userinfo): on a worker thread,
        # never on the event loop.
        return await run_in_threadpool(authenticator.authenticate, authorization)
    return authenticator.authenticate(authorization)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def require_reader(caller: CallerDep, settings: SettingsDep) -> Caller:
    return check_reader(caller, settings)


async def require_admin(caller: CallerDep, settings: SettingsDep) -> Caller:
    return check_admin(caller, settings)


ReaderDep = Annotated[Caller, Depends(require_reader)]
AdminDep = Annotated[Caller, Depends(require_admin)]

# --- the run list's filters ---------------------------------------------------------------------

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_RUN_ID_SEARCH = re.compile(r"^[0-9A-Fa-f-]{1,36}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{12}$")


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
    trigger: Annotated[str | None, Query(description=f"one of {', '.join(TRIGGERS)}")] = None,
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
    signature: Annotated[
        str | None, Query(description="runs that failed with this cause (`signature` of `GET /failures`)")
    ] = None,
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
    if signature is not None and not _SIGNATURE.match(signature.strip().lower()):
        raise InputError(
            "signature must be a failure signature (12 hex digits, from GET /failures); "
            f"got {shown(signature)}"
        )
    return RunFilters(
        statuses=_enum("status", status, RUN_STATUSES, upper=True),
        periods=tuple(dict.fromkeys(periods)),
        domains=_enum("domain", domain, DOMAINS, upper=False),
        trigger=triggers[0] if triggers else None,
        start_from=start_from,
        start_before=start_before,
        q=q.strip().lower() if q else None,
        anomalous=anomalous,
        signature=signature.strip().lower() if signature else None,
        sort=sort,  # type: ignore[arg-type]
    )


RunFiltersDep = Annotated[RunFilters, Depends(get_run_filters)]

# --- one run ------------------------------------------------------------------------------------

_RunIdPath = Annotated[str, Path(alias="runId", description="Dagster run id of a FinOps batch run")]


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


def get_run_id(resources: ResourcesDep, run_id: _RunIdPath) -> str:
    """The id of a FinOps run known to the read model or to Dagster (a cheap check: no detail built)."""
    _checked_run_id(run_id)
    try:
        if resources.store.summary(run_id) is not None:
            return run_id
    except (ReadModelUnavailable, ServiceUnavailableError):
        pass  # Dagster can still say
    try:
        _finops_record(resources, run_id)
    except DagsterUnavailable as exc:
        raise ServiceUnavailableError(exc.message) from None
    return run_id


RunIdDep = Annotated[str, Depends(get_run_id)]


@dataclass(frozen=True)
class FoundRun:
    """A run's detail, and its failure excerpt when the read model stores it (admins only)."""

    detail: RunDetailResponse
    excerpt: LogExcerpt | None = None
    excerpt_stored: bool = False  # False: the excerpt, if any, is to be built from Dagster


def get_run(resources: ResourcesDep, run_id: _RunIdPath) -> FoundRun:
    """The detail of a FinOps run: stored once it has ended, fresh from Dagster before."""
    _checked_run_id(run_id)
    try:
        found = resources.store.detail(run_id)
    except (ReadModelUnavailable, ServiceUnavailableError):
        found = None  # the detail can still be built from Dagster
    if found is not None and not found.active:
        return FoundRun(found.detail, found.excerpt, found.excerpt_stored)
    try:
        record = _finops_record(resources, run_id)
        detail = map_run_detail(record, resources.source.events(run_id).entries)
    except DagsterUnavailable as exc:
        raise ServiceUnavailableError(exc.message) from None
    if found is None:
        return FoundRun(detail)
    # Anomalies are scored by the projector, from history: keep the stored ones.
    stored = found.detail
    previous = {b.domain: b.anomalies for b in stored.blocks}
    return FoundRun(
        detail.model_copy(
            update={
                "anomalies": stored.anomalies,
                "blocks": [
                    b.model_copy(update={"anomalies": previous.get(b.domain, [])}) for b in detail.blocks
                ],
            }
        )
    )


RunDep = Annotated[FoundRun, Depends(get_run)]

# --- reprocess ----------------------------------------------------------------------------------


def get_reprocess_queue(resources: ResourcesDep) -> ReprocessQueue:
    return resources.reprocess_queue


ReprocessQueueDep = Annotated[ReprocessQueue, Depends(get_reprocess_queue)]
ReprocessCallDep = Annotated[ReprocessCall, Depends(get_reprocess_call)]
IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
