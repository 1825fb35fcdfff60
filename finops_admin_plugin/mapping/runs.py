"""Dagster run record + its event log -> the admin views of a run (pure: no I/O).

What Dagster writes, and what it does not (measured on 1.13):
- unselected domains: `plan_batch` yields no output, Dagster writes STEP_SKIPPED;
- a failed load: STEP_FAILURE whose `user_failure_data` carries the `Failure`
  description and the metadata of the periods that did load; the downstream
  refresh step then gets NO event at all;
- a failed `plan_batch`: the load steps get no event either;
- a retry: STEP_UP_FOR_RETRY, then STEP_RESTARTED (not a second STEP_START).
So a selected step without events is PENDING while the run is active and
SKIPPED once it has ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from dagster import DagsterEventType, EventLogEntry, RunRecord
from pydantic import ValidationError

from finops_admin_plugin.mapping.money import add_money, metadata_money
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.mapping.status import ACTIVE_STATUSES, map_run_status
from finops_admin_plugin.models import (
    Aggregates,
    BlockError,
    BlockPeriod,
    BlockResponse,
    BlockStatus,
    BlockVolumes,
    ErrorSummary,
    LoadQuality,
    MvRefreshResponse,
    PeriodResponse,
    QualityDelivery,
    RunDetailResponse,
    RunResponse,
    RunStatus,
    RunVolumes,
    Trigger,
)
from finops_pipeline.contract import (
    ASSET_KEY_PREFIX,
    DELIVERY_SENSOR_NAME,
    DOMAIN_LABELS,
    DOMAINS,
    MATERIALIZED_VIEWS,
    PLAN_STEP,
    REFRESH_STEP,
    TAG_DOMAINS,
    TAG_PERIODS,
    TAG_REASON,
    TAG_REPROCESS_REQUEST_ID,
    TAG_REQUESTED_BY,
    TAG_TRIGGER,
    TAG_VERSION,
    TRIGGER_CRON,
    TRIGGER_DELIVERY,
    TRIGGER_MANUAL,
    LoadMeta,
    MvMeta,
    batch_selection,
    load_step_key,
)
from finops_pipeline.periods import PeriodError, parse_period, period_role

__all__ = [
    "MAPPED_EVENT_TYPES",
    "MAPPING_VERSION",
    "SCHEDULE_NAME_TAG",
    "SENSOR_NAME_TAG",
    "detail_payload",
    "launched_by",
    "map_run_detail",
    "one_line",
    "run_domains",
    "run_periods",
    "run_trigger",
    "summary_of",
    "summary_payload",
]

log = logging.getLogger(__name__)

# What `map_run_detail` stores: raise it whenever a change adds, drops or reshapes a field of
# the stored views. Runs the read model holds from an older version are re-projected in the
# background, newest first (`Projector.catch_up`); 0 marks runs stored before versions were kept.
# What the read model stores of a run; raising it re-projects older runs in the background.
# 2: the failure excerpt of FAILED runs is stored beside their detail.
# 3: costs per currency, as exact decimal strings (`billedCost`, `unassignedCost`, anomalies).
# 4: each period's quality names the delivery of every source it loaded (`deliveries`).
MAPPING_VERSION: Final = 4
SCHEDULE_NAME_TAG = "dagster/schedule_name"
SENSOR_NAME_TAG = "dagster/sensor_name"
MESSAGE_LIMIT = 300

_E = DagsterEventType
_STEP_START = {_E.STEP_START.value, _E.STEP_RESTARTED.value}
_STEP_END = {_E.STEP_SUCCESS.value, _E.STEP_FAILURE.value}
# Every event type `_fold` reads, and nothing else: readers fetch only these, since deserializing
# the others (logs, inputs, handled outputs, engine events: about half of a run's events) is most
# of the cost of projecting a run.
MAPPED_EVENT_TYPES: frozenset[DagsterEventType] = frozenset(
    {
        _E.RUN_START,
        _E.RUN_SUCCESS,
        _E.RUN_FAILURE,
        _E.RUN_CANCELED,
        _E.STEP_START,
        _E.STEP_RESTARTED,
        _E.STEP_SUCCESS,
        _E.STEP_FAILURE,
        _E.STEP_SKIPPED,
        _E.STEP_UP_FOR_RETRY,
        _E.STEP_OUTPUT,
        _E.ASSET_MATERIALIZATION,
    }
)
_ERROR_KINDS = {
    "USER_CODE_ERROR": "EXCEPTION",
    "FRAMEWORK_ERROR": "FRAMEWORK",
    "UNEXPECTED_ERROR": "FRAMEWORK",
    "INTERRUPT": "INTERRUPTED",
}


# --- small, forgiving readers: an odd upstream value degrades one field ---------------


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _raw(value: Any) -> Any:
    """The plain value of a Dagster MetadataValue (or the value itself)."""
    if hasattr(value, "data") and not isinstance(value, Mapping):
        return value.data  # JsonMetadataValue
    return getattr(value, "value", value)


def _quality(period: str, value: Any) -> LoadQuality | None:
    """A period's `quality` metadata as the view model; None when absent or of an unknown shape
    (a newer pipeline's metadata degrades this field, never the page)."""
    raw = _raw(value)
    if not isinstance(raw, Mapping):
        return None
    unassigned = metadata_money(raw.get("unassigned_cost"))
    deliveries = _deliveries(period, raw.get("deliveries"))
    try:
        return LoadQuality.model_validate(
            {**raw, "period": period, "unassigned_cost": unassigned, "deliveries": deliveries}
        )
    except ValidationError:
        log.warning("load quality of period %s has an unknown shape; not shown", period)
        return None


def _deliveries(period: str, value: Any) -> list[QualityDelivery]:
    """The `deliveries` of a period's quality; [] when absent (runs before sources, the landing
    layout). An item of an unknown shape is left out on its own: the rest of the quality stays."""
    if not isinstance(value, list):
        return []
    found = []
    for item in value:
        try:
            found.append(QualityDelivery.model_validate(item))
        except ValidationError:
            log.warning("a delivery in the load quality of period %s has an unknown shape; not shown", period)
    return found


def _int(value: Any) -> int | None:
    value = _raw(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _float(value: Any) -> float | None:
    value = _raw(value)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def one_line(text: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
    """The first non-empty line of `text`, without a Python module path before the exception name."""
    if not text:
        return None
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    if not line:
        return None
    line = display_paths(line)
    head, sep, rest = line.partition(": ")
    # "dagster._core.definitions.events.Failure: msg" -> "msg"; "pkg.mod.ValueError: x" -> "ValueError: x"
    if sep and " " not in head and "." in head:
        name = head.rsplit(".", 1)[-1]
        line = rest if name == "Failure" else f"{name}: {rest}"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_periods(tags: Mapping[str, str], run_config: Mapping[str, Any] | None) -> list[str]:
    """Valid `YYYY-MM` periods of the run, newest first (tag, else launch config)."""
    raw = tags.get(TAG_PERIODS)
    values: Iterable[Any] = raw.split(",") if raw else batch_selection(run_config).get("periods") or []
    parsed = set()
    for value in values:
        try:
            parsed.add(parse_period(str(value)))
        except PeriodError:
            continue  # an invalid period fails plan_batch; the run's error says so
    return [f"{d.year:04d}-{d.month:02d}" for d in sorted(parsed, reverse=True)]


def run_domains(tags: Mapping[str, str], run_config: Mapping[str, Any] | None) -> list[str]:
    """Selected domains in canonical order (tag, else launch config, else the job's default: all)."""
    raw = tags.get(TAG_DOMAINS)
    if raw is not None:
        values: Iterable[Any] = raw.split(",")
    else:
        values = batch_selection(run_config).get("domains") or DOMAINS
    wanted = {str(v).strip().lower() for v in values}
    return [d for d in DOMAINS if d in wanted]


def run_trigger(tags: Mapping[str, str]) -> Trigger:
    value = (tags.get(TAG_TRIGGER) or "").strip().upper()
    if value == TRIGGER_CRON or (not value and SCHEDULE_NAME_TAG in tags):
        return TRIGGER_CRON
    if value == TRIGGER_DELIVERY or (not value and tags.get(SENSOR_NAME_TAG) == DELIVERY_SENSOR_NAME):
        return TRIGGER_DELIVERY
    return TRIGGER_MANUAL


def launched_by(tags: Mapping[str, str]) -> str | None:
    """`schedule:<name>`, `sensor:<name>` or the requesting entity ref (a reprocess names its requester)."""
    requested_by = tags.get(TAG_REQUESTED_BY) or None
    if requested_by and (tags.get(TAG_REPROCESS_REQUEST_ID) or ":" in requested_by):
        return requested_by
    if tags.get(SCHEDULE_NAME_TAG):
        return f"schedule:{tags[SCHEDULE_NAME_TAG]}"
    if tags.get(SENSOR_NAME_TAG):
        return f"sensor:{tags[SENSOR_NAME_TAG]}"
    return requested_by


# --- the event log, folded per step --------------------------------------------------


@dataclass
class _Failure:
    step_key: str | None
    message: str
    kind: str
    timestamp: float


@dataclass
class _Step:
    key: str
    first_start: float | None = None
    end: float | None = None
    last_kind: str | None = None  # the last lifecycle event type
    attempts: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    materializations: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class _Fold:
    steps: dict[str, _Step] = field(default_factory=dict)
    run_start: float | None = None
    run_end: float | None = None
    run_failure: _Failure | None = None

    def step(self, key: str) -> _Step:
        if key not in self.steps:
            self.steps[key] = _Step(key)
        return self.steps[key]


def _failure_of(data: Any, step_key: str | None, timestamp: float) -> _Failure:
    user = getattr(data, "user_failure_data", None)
    description = getattr(user, "description", None)
    if description:
        return _Failure(step_key, one_line(description) or "failed", "FAILURE", timestamp)
    error = getattr(data, "error", None)
    # Dagster wraps an op's exception ("Error occurred while executing op ..."); the cause is the news.
    cause = getattr(error, "cause", None) or error
    message = one_line(getattr(cause, "message", None)) or "failed (Dagster recorded no message)"
    source = getattr(getattr(data, "error_source", None), "value", None)
    return _Failure(step_key, message, _ERROR_KINDS.get(str(source), "EXCEPTION"), timestamp)


def _fold(events: Iterable[EventLogEntry]) -> _Fold:
    fold = _Fold()
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        data: Any = event.event_specific_data  # read duck-typed: shapes vary across Dagster versions
        ts = entry.timestamp
        if kind == _E.RUN_START.value:
            fold.run_start = ts
        elif kind in (_E.RUN_SUCCESS.value, _E.RUN_FAILURE.value, _E.RUN_CANCELED.value):
            fold.run_end = ts
            if kind == _E.RUN_FAILURE.value:
                error = getattr(data, "error", None)
                message = one_line(getattr(getattr(error, "cause", None) or error, "message", None))
                fold.run_failure = _Failure(
                    None, message or one_line(entry.user_message) or "run failed", "FRAMEWORK", ts
                )
        step_key = event.step_key
        if not step_key:
            continue
        step = fold.step(step_key)
        if kind in _STEP_START:
            step.attempts += 1
            step.first_start = step.first_start if step.first_start is not None else ts
            step.last_kind = kind
        elif kind in _STEP_END or kind in (_E.STEP_SKIPPED.value, _E.STEP_UP_FOR_RETRY.value):
            step.last_kind = kind
            if kind in _STEP_END:
                step.end = ts
            if kind == _E.STEP_FAILURE.value:
                failure = _failure_of(data, step_key, ts)
                step.failures.append(failure)
                user = getattr(data, "user_failure_data", None)
                if user is not None and getattr(user, "metadata", None):
                    step.metadata = dict(user.metadata)
        elif kind == _E.STEP_OUTPUT.value:
            if getattr(data, "metadata", None):
                step.metadata = dict(data.metadata)
        elif kind == _E.ASSET_MATERIALIZATION.value:
            materialization = getattr(data, "materialization", None)
            path = list(getattr(getattr(materialization, "asset_key", None), "path", []) or [])
            if len(path) == 2 and path[0] == ASSET_KEY_PREFIX:
                step.materializations[path[1]] = (ts, dict(getattr(materialization, "metadata", {}) or {}))
    return fold


# --- views -----------------------------------------------------------------------------


def _step_status(step: _Step | None, *, selected: bool, run_status: RunStatus) -> BlockStatus:
    if not selected:
        return "NOT_SELECTED"
    active = run_status in ACTIVE_STATUSES or run_status == "UNKNOWN"
    if step is None or step.last_kind is None:
        return "PENDING" if active else "SKIPPED"
    last = step.last_kind
    if last == _E.STEP_SUCCESS.value:
        return "SUCCESS"
    if last == _E.STEP_FAILURE.value:
        return "FAILED"
    if last == _E.STEP_SKIPPED.value:
        return "SKIPPED"
    if last == _E.STEP_UP_FOR_RETRY.value:
        return "PENDING" if active else "FAILED"
    return "RUNNING" if active else "FAILED"  # started, and the run ended under it


def _block(
    domain: str, fold: _Fold, *, selected: bool, run_status: RunStatus, run_end: float | None
) -> BlockResponse:
    key = load_step_key(domain)
    step = fold.steps.get(key)
    status = _step_status(step, selected=selected, run_status=run_status)
    errors = [BlockError(message=f.message, kind=f.kind) for f in (step.failures if step else [])]  # type: ignore[arg-type]
    if status == "FAILED" and not errors:
        errors.append(
            BlockError(
                message=f"the run ended ({run_status}) while this step was running", kind="INTERRUPTED"
            )
        )
    if status == "SKIPPED" and selected and (step is None or step.last_kind is None):
        upstream = fold.steps.get(PLAN_STEP)
        if upstream is not None and upstream.failures:
            errors.append(BlockError(message=f"not run: {PLAN_STEP} failed", kind="UPSTREAM"))
    metadata = step.metadata if step else {}
    volumes = BlockVolumes()
    periods: list[BlockPeriod] = []
    quality: list[LoadQuality] = []
    if metadata:
        rejected = _raw(metadata.get(LoadMeta.REJECTED_BY_REASON))
        volumes = BlockVolumes(
            rows_read=_int(metadata.get(LoadMeta.ROWS_READ)),
            releves_inserted=_int(metadata.get(LoadMeta.RELEVES_INSERTED)),
            releves_deleted=_int(metadata.get(LoadMeta.RELEVES_DELETED)),
            releves_rejected=_int(metadata.get(LoadMeta.RELEVES_REJECTED)),
            billed_cost=metadata_money(_raw(metadata.get(LoadMeta.BILLED_COST))),
            rejected_by_reason=(
                {str(k): v for k, v in ((k, _int(v)) for k, v in rejected.items()) if v is not None}
                if isinstance(rejected, Mapping)
                else None
            ),
        )
        per_period = _raw(metadata.get(LoadMeta.PERIODS))
        if isinstance(per_period, Mapping):
            for period in sorted(per_period, reverse=True):
                values = per_period[period]
                if not isinstance(values, Mapping):
                    continue
                found = _quality(str(period), values.get(LoadMeta.QUALITY))
                if found is not None:
                    quality.append(found)
                periods.append(
                    BlockPeriod(
                        period=str(period),
                        rows_read=_int(values.get(LoadMeta.ROWS_READ)),
                        releves_inserted=_int(values.get(LoadMeta.RELEVES_INSERTED)),
                        releves_deleted=_int(values.get(LoadMeta.RELEVES_DELETED)),
                        releves_rejected=_int(values.get(LoadMeta.RELEVES_REJECTED)),
                        billed_cost=metadata_money(values.get(LoadMeta.BILLED_COST)),
                        gate=found.gate if found is not None else None,
                    )
                )
    start = step.first_start if step else None
    end = step.end if step else None
    if end is None and status == "FAILED" and start is not None:
        end = run_end  # interrupted: it ran until the run ended
    return BlockResponse(
        domain=domain,
        label=DOMAIN_LABELS[domain],
        status=status,
        step_key=key,
        start_time=_ts(start),
        end_time=_ts(end),
        duration_seconds=round(end - start, 3) if start is not None and end is not None else None,
        attempts=step.attempts if step else 0,
        volumes=volumes,
        periods=periods,
        quality=quality,
        errors=errors,
    )


def _mvs(fold: _Fold, run_status: RunStatus) -> list[MvRefreshResponse]:
    step = fold.steps.get(REFRESH_STEP)
    step_status = _step_status(step, selected=True, run_status=run_status)
    result = []
    for name in MATERIALIZED_VIEWS:
        done = step.materializations.get(name) if step else None
        if done is not None:
            ts, metadata = done
            result.append(
                MvRefreshResponse(
                    name=name,
                    status="SUCCESS",
                    refreshed_at=_ts(ts),
                    duration_seconds=_float(metadata.get(MvMeta.REFRESH_SECONDS)),
                    row_count=_int(metadata.get(MvMeta.ROW_COUNT)),
                )
            )
        else:
            # The step succeeded without this view: it was not refreshed by this run.
            status = "SKIPPED" if step_status in ("SUCCESS", "NOT_SELECTED") else step_status
            result.append(MvRefreshResponse(name=name, status=status))  # type: ignore[arg-type]
    return result


def map_run_detail(record: RunRecord, events: Sequence[EventLogEntry]) -> RunDetailResponse:
    """The full view of one run (links and anomalies are added later: they need settings and history)."""
    run = record.dagster_run
    tags: Mapping[str, str] = run.tags or {}
    status = map_run_status(run.status)
    fold = _fold(events)
    created = _as_utc(record.create_timestamp)
    start_ts = record.start_time if record.start_time is not None else fold.run_start
    end_ts = record.end_time if record.end_time is not None else fold.run_end
    if status in ACTIVE_STATUSES:
        end_ts = None  # a re-queued run keeps an old end time in the run stats
    reference = _ts(start_ts) or created
    periods = run_periods(tags, run.run_config)
    domains = run_domains(tags, run.run_config)
    blocks = [_block(d, fold, selected=d in domains, run_status=status, run_end=end_ts) for d in DOMAINS]
    mvs = _mvs(fold, status)
    aggregates = Aggregates(
        releves_inserted=sum(b.volumes.releves_inserted or 0 for b in blocks),
        releves_deleted=sum(b.volumes.releves_deleted or 0 for b in blocks),
        releves_rejected=sum(b.volumes.releves_rejected or 0 for b in blocks),
        billed_cost=add_money(*(b.volumes.billed_cost for b in blocks)),
        mvs=mvs,
    )
    failures = sorted((f for step in fold.steps.values() for f in step.failures), key=lambda f: f.timestamp)
    interrupted = [e for b in blocks for e in b.errors if e.kind == "INTERRUPTED"]
    count = len(failures) + len(interrupted)
    message = failures[0].message if failures else (interrupted[0].message if interrupted else None)
    if status == "FAILED" and count == 0:
        count = 1
        message = fold.run_failure.message if fold.run_failure else "run failed (Dagster recorded no cause)"
    return RunDetailResponse(
        run_id=run.run_id,
        status=status,
        dagster_status=str(getattr(run.status, "value", run.status)),
        trigger=run_trigger(tags),
        launched_by=launched_by(tags),
        reprocess_request_id=tags.get(TAG_REPROCESS_REQUEST_ID) or None,
        reason=tags.get(TAG_REASON) or None,
        domains=domains,
        domain_statuses={b.domain: b.status for b in blocks},
        created_time=created,
        start_time=_ts(start_ts),
        end_time=_ts(end_ts),
        duration_seconds=round(end_ts - start_ts, 3) if start_ts is not None and end_ts is not None else None,
        volumes=RunVolumes(
            rows_read=sum(b.volumes.rows_read or 0 for b in blocks),
            releves_inserted=aggregates.releves_inserted,
            releves_deleted=aggregates.releves_deleted,
            releves_rejected=aggregates.releves_rejected,
            billed_cost=aggregates.billed_cost,
            mvs_refreshed=sum(1 for mv in mvs if mv.status == "SUCCESS"),
        ),
        errors=ErrorSummary(count=count, message=message),
        version=tags.get(TAG_VERSION) or None,
        periods=[PeriodResponse(period=p, role=period_role(p, reference)) for p in periods],  # type: ignore[arg-type]
        blocks=blocks,
        aggregates=aggregates,
    )


def summary_of(detail: RunDetailResponse) -> RunResponse:
    """The list item of a run: the detail's common fields, periods as plain months."""
    fields = {
        name: getattr(detail, name) for name in RunResponse.model_fields if name not in ("periods", "links")
    }
    return RunResponse(**fields, periods=[p.period for p in detail.periods], links=detail.links)


def summary_payload(detail: RunDetailResponse) -> dict[str, Any]:
    """The list item's JSON without links (what the read model stores)."""
    return summary_of(detail).model_dump(by_alias=True, mode="json", exclude={"links"})


def detail_payload(detail: RunDetailResponse) -> dict[str, Any]:
    """The detail's JSON without links and log section (they depend on the deployment)."""
    data = detail.model_dump(by_alias=True, mode="json", exclude={"links", "logs"})
    for block in data["blocks"]:
        block.pop("links", None)
    return data
