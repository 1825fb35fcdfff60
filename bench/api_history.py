"""A realistic history of FinOps runs in Dagster's own PostgreSQL tables, for `bench/api.py`.

Real runs first: `record_scenarios` executes a handful of `finops_batch` runs in
process on a Postgres-backed Dagster instance (every domain by the CRON
schedule, one domain by hand, two domains, a reprocess, a run whose `native`
load fails while `open` loads, a run whose plan fails, a run canceled in the
queue) and reads back what Dagster stored for each: the run row, its tags and
its event rows (steps, outputs with volume metadata, materializations,
failures with their error, compute-log captures, engine events).

Then clones: each recorded run becomes a `Scenario`, a text template of those
rows in which the run id, the event times, the periods, the requester and the
volume metadata values are slots. `load_history` renders N clones with new run
ids (uuid4, as Dagster), start times one run about every 15 minutes back from
now, durations and volumes varied around the recorded ones (a few percent, and
a few runs several times larger so anomalies exist), and COPYes them into
`runs`, `run_tags` and `event_logs`, oldest first so Dagster's own run order
(by insertion) is the time order. Dagster's indexes on those tables are dropped
during the load and rebuilt after it (same definitions), and `asset_keys` gets
the newest materialization of each asset, as Dagster maintains it.

The templates come from text Dagster serialized, edited as JSON trees; every
clone is read back through `DagsterInstance` (`get_run_records`, `all_logs`) by
`verify_history` before anything is measured.

The recorded runs use periods 2099-05..2099-07 (landing files written for
them), so a period string in a recorded event cannot be confused with a date:
each clone gets the periods of its own start month instead.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from finops_pipeline.contract import (
    DOMAINS,
    JOB_NAME,
    REPROCESS_SENSOR_NAME,
    SCHEDULE_NAME,
    TRIGGER_CRON,
    TRIGGER_MANUAL,
    batch_run_config,
    load_step_key,
)
from finops_pipeline.periods import add_months, format_period

__all__ = [
    "RECORDED_PERIODS",
    "History",
    "Scenario",
    "load_history",
    "record_scenarios",
    "verify_history",
]

# The recorded runs' periods: P0 (current month of a clone), P1 (N-1), P2 (N-2).
RECORDED_PERIODS: Final = ("2099-07", "2099-06", "2099-05")
RECORDED_NOW: Final = datetime(2099, 7, 15, 6, 0, tzinfo=UTC)
RUN_INTERVAL_SECONDS: Final = 900.0  # one run about every 15 minutes
USERS: Final = ("user:default/amartin", "user:default/jdoe", "user:default/lbernard", "user:default/ops-bot")
RECORDED_USER: Final = "user:default/bench-recorder"
RECORDED_REQUEST: Final = "rp-bench-recorded"
VOLUME_KEYS: Final = frozenset(
    {"rows_read", "releves_inserted", "releves_deleted", "releves_rejected", "billed_cost"}
)
_SLOT: Final = re.compile(r'"@@=(\w+)@@"|@@(\w+)@@')
_DAGSTER_TABLES: Final = ("runs", "run_tags", "event_logs")


@dataclass(frozen=True)
class ScenarioSpec:
    """One kind of run in the history and its share of it."""

    name: str
    weight: float
    domains: tuple[str, ...]
    periods: tuple[int, ...]  # indexes into RECORDED_PERIODS
    kind: str = "batch"  # batch | plan_failed | canceled
    tags: Mapping[str, str] = field(default_factory=dict)


SCENARIOS: Final = (
    ScenarioSpec(
        "cron",
        0.30,
        DOMAINS,
        (0, 1),
        tags={
            "finops/trigger": TRIGGER_CRON,
            "dagster/schedule_name": SCHEDULE_NAME,
            "finops/requested_by": f"schedule:{SCHEDULE_NAME}",
        },
    ),
    ScenarioSpec("manual_open", 0.22, ("open",), (0,)),
    ScenarioSpec("manual_private_public", 0.15, ("private", "public"), (0,)),
    ScenarioSpec(
        "reprocess",
        0.10,
        ("public",),
        (1,),
        tags={
            "finops/reprocess_request_id": RECORDED_REQUEST,
            "dagster/sensor_name": REPROCESS_SENSOR_NAME,
            "finops/reason": "late invoice from the public cloud provider",
        },
    ),
    # native's N-2 landing file is broken: native fails, open loads both months.
    ScenarioSpec("native_failed", 0.15, ("open", "native"), (0, 2)),
    ScenarioSpec("plan_failed", 0.03, ("open", "public"), (), kind="plan_failed"),
    ScenarioSpec("canceled", 0.05, ("private",), (1,), kind="canceled"),
)


# --- text templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """Text with named slots: `"@@=name@@"` (a whole JSON value) or `@@name@@` (inside a string)."""

    parts: tuple[str, ...]
    slots: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str] = []
        slots: list[str] = []
        last = 0
        for match in _SLOT.finditer(text):
            parts.append(text[last : match.start()])
            slots.append(match.group(1) or match.group(2))
            last = match.end()
        parts.append(text[last:])
        return cls(tuple(parts), tuple(slots))

    def render(self, values: Mapping[str, str]) -> str:
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(values[slot])
            out.append(part)
        return "".join(out)


def _copy_text(value: str | None) -> str:
    """A value in COPY's text format (slots hold no special characters, so templates are escaped once)."""
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@dataclass(frozen=True)
class VolumeSlot:
    domain: str
    value: float
    integer: bool


@dataclass
class Scenario:
    """A recorded run as templates of its rows in Dagster's tables."""

    spec: ScenarioSpec
    status: str
    run_row: Template  # one COPY line of `runs`
    tag_rows: Template  # COPY lines of `run_tags`
    event_rows: Template  # COPY lines of `event_logs`
    event_offsets: list[float]  # seconds from the run's anchor (start, or creation when never started)
    create_offset: float
    update_offset: float
    start_offset: float | None
    end_offset: float | None
    volumes: dict[str, VolumeSlot]
    event_count: int
    asset_events: dict[str, int]  # asset key -> index of its last materialization in the run's events


def _tokenize_text(text: str, run_id: str) -> str:
    """Raw replacements inside strings: the run id, the recorded periods, the requester."""
    text = text.replace(run_id, "@@RUN@@")
    for index, period in enumerate(RECORDED_PERIODS):
        text = text.replace(period, f"@@P{index}@@")
    return text.replace(RECORDED_USER, "@@USER@@").replace(RECORDED_REQUEST, "@@REQUEST@@")


def _metadata_number(node: Any) -> float | None:
    """The number of a serialized metadata value ({"value": n} in old and new forms)."""
    if isinstance(node, dict):
        value = node.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _mark_volumes(node: Any, domain: str, volumes: dict[str, VolumeSlot]) -> None:
    """Put a slot in place of each volume metadata value of a load step's event."""

    def slot(value: float, integer: bool) -> str:
        name = f"V{len(volumes)}"
        volumes[name] = VolumeSlot(domain, value, integer)
        return f"@@={name}@@"

    def mark_periods(data: Any) -> None:
        if not isinstance(data, dict):
            return
        for values in data.values():
            if isinstance(values, dict):
                for key in VOLUME_KEYS & values.keys():
                    number = values[key]
                    if isinstance(number, int | float) and not isinstance(number, bool):
                        values[key] = slot(float(number), isinstance(number, int))

    if isinstance(node, list):
        for item in node:
            _mark_volumes(item, domain, volumes)
        return
    if not isinstance(node, dict):
        return
    if node.get("__class__") == "EventMetadataEntry":  # the form Dagster 1.13 writes
        label, data = node.get("label"), node.get("entry_data")
        if label in VOLUME_KEYS and isinstance(data, dict):
            number = data.get("value")
            if isinstance(number, int | float) and not isinstance(number, bool):
                data["value"] = slot(float(number), isinstance(number, int))
        elif label == "periods" and isinstance(data, dict):
            mark_periods(data.get("data"))
        return
    for key, value in node.items():
        number = _metadata_number(value) if key in VOLUME_KEYS else None
        if number is not None:
            value["value"] = slot(number, isinstance(value["value"], int))
        elif key == "periods" and isinstance(value, dict) and "data" in value:
            mark_periods(value["data"])
        else:
            _mark_volumes(value, domain, volumes)


_DOMAIN_OF_STEP: Final = {load_step_key(d): d for d in DOMAINS}


def _epoch(value: datetime) -> float:
    """Dagster's naive UTC timestamp columns as epoch seconds."""
    return value.replace(tzinfo=UTC).timestamp() if value.tzinfo is None else value.timestamp()


def scenario_from_rows(
    spec: ScenarioSpec,
    run: Mapping[str, Any],
    tags: Sequence[tuple[str, str]],
    events: Sequence[Mapping[str, Any]],
) -> Scenario:
    """Templates of one recorded run from its rows as Dagster stored them."""
    run_id = run["run_id"]
    created = _epoch(run["create_timestamp"])
    anchor = run["start_time"] if run["start_time"] is not None else created
    volumes: dict[str, VolumeSlot] = {}
    offsets: list[float] = []
    lines: list[str] = []
    asset_events: dict[str, int] = {}
    for index, row in enumerate(events):
        tree = json.loads(row["event"])
        offsets.append(float(tree["timestamp"]) - anchor)
        tree["timestamp"] = f"@@=TS{index}@@"
        domain = _DOMAIN_OF_STEP.get(row["step_key"] or "")
        if domain is not None:
            _mark_volumes(tree.get("dagster_event"), domain, volumes)
        if row["asset_key"] and row["dagster_event_type"] == "ASSET_MATERIALIZATION":
            asset_events[row["asset_key"]] = index
        event_text = _tokenize_text(json.dumps(tree), run_id)
        lines.append(
            "\t".join(
                [
                    "@@RUN@@",
                    _copy_text(event_text),
                    _copy_text(row["dagster_event_type"]),
                    f"@@DT{index}@@",
                    _copy_text(row["step_key"]),
                    _copy_text(row["asset_key"]),
                    _copy_text(row["partition"]),
                ]
            )
            + "\n"
        )
    run_line = (
        "\t".join(
            [
                "@@RUN@@",
                _copy_text(run["snapshot_id"]),
                _copy_text(run["pipeline_name"]),
                _copy_text(run["status"]),
                _copy_text(_tokenize_text(run["run_body"], run_id)),
                "@@CREATED@@",
                "@@UPDATED@@",
                "@@START@@",
                "@@END@@",
            ]
        )
        + "\n"
    )
    tag_lines = "".join(
        f"@@RUN@@\t{_copy_text(_tokenize_text(key, run_id))}\t{_copy_text(_tokenize_text(value, run_id))}\n"
        for key, value in tags
    )
    return Scenario(
        spec=spec,
        status=run["status"],
        run_row=Template.parse(run_line),
        tag_rows=Template.parse(tag_lines),
        event_rows=Template.parse("".join(lines)),
        event_offsets=offsets,
        create_offset=created - anchor,
        update_offset=_epoch(run["update_timestamp"]) - anchor,
        start_offset=None if run["start_time"] is None else run["start_time"] - anchor,
        end_offset=None if run["end_time"] is None else run["end_time"] - anchor,
        volumes=volumes,
        event_count=len(events),
        asset_events=asset_events,
    )


# --- recording real runs ----------------------------------------------------------------------------


def _execute(instance: Any, spec: ScenarioSpec) -> str:
    """Run one scenario for real on `instance`; returns its run id."""
    from dagster import DagsterRunStatus

    from finops_pipeline.contract import batch_tags
    from finops_pipeline.definitions import build_definitions

    job = build_definitions().resolve_job_def(JOB_NAME)
    periods = [RECORDED_PERIODS[i] for i in spec.periods]
    domains = list(spec.domains)
    if spec.kind == "plan_failed":
        # As launched from the Dagster launchpad: no finops/* tags, a month that does not exist.
        result = job.execute_in_process(
            instance=instance,
            run_config=batch_run_config(["2099-13"], domains),
            raise_on_error=False,
        )
        return result.run_id
    tags = batch_tags(
        trigger=spec.tags.get("finops/trigger", TRIGGER_MANUAL),
        periods=periods,
        domains=domains,
        requested_by=RECORDED_USER,
    )
    tags.update(spec.tags)
    config = batch_run_config(periods, domains)
    if spec.kind == "canceled":
        run = instance.create_run_for_job(
            job_def=job, run_config=config, tags=tags, status=DagsterRunStatus.NOT_STARTED
        )
        instance.report_run_canceled(run, message=f"canceled from the queue by {RECORDED_USER}")
        return str(run.run_id)
    result = job.execute_in_process(instance=instance, run_config=config, tags=tags, raise_on_error=False)
    return result.run_id


def record_scenarios(
    dagster_home: Path, storage_url: str, warehouse_url: str, landing: Path, log_path: Path
) -> list[Scenario]:
    """Execute one real run per scenario and turn what Dagster stored into templates.

    Dagster's console output of those runs (a failing run logs its stack trace)
    goes to `log_path`.
    """
    from dagster import DagsterInstance

    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    ensure_schema(warehouse_url)
    write_demo_landing(
        str(landing), months=3, now=RECORDED_NOW, scale=0.05, broken=("native", RECORDED_PERIODS[2])
    )
    os.environ["FINOPS_DATABASE_URL"] = warehouse_url
    os.environ["FINOPS_LANDING_URI"] = str(landing)
    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        with open(log_path, "w") as out, redirect_stdout(out), redirect_stderr(out):
            run_ids = {spec.name: _execute(instance, spec) for spec in SCENARIOS}
        # What Dagster returns through its public API is what the clones copy.
        for name, run_id in run_ids.items():
            record = instance.get_run_record_by_id(run_id)
            if record is None:
                raise RuntimeError(f"recorded run {name} ({run_id}) is not in Dagster storage")
    finally:
        instance.dispose()
    scenarios = []
    with psycopg.connect(storage_url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        for spec in SCENARIOS:
            run_id = run_ids[spec.name]
            run = cur.execute("SELECT * FROM runs WHERE run_id = %s", (run_id,)).fetchone()
            tags = [
                (r["key"], r["value"])
                for r in cur.execute(
                    "SELECT key, value FROM run_tags WHERE run_id = %s ORDER BY id", (run_id,)
                )
            ]
            events = cur.execute(
                "SELECT event, dagster_event_type, timestamp, step_key, asset_key, partition "
                "FROM event_logs WHERE run_id = %s ORDER BY id",
                (run_id,),
            ).fetchall()
            if run is None or not events:
                raise RuntimeError(f"recorded run {spec.name} ({run_id}) has no rows in Dagster's tables")
            scenarios.append(scenario_from_rows(spec, run, tags, events))
    return scenarios


# --- rendering clones -------------------------------------------------------------------------------


@dataclass
class History:
    """What was loaded: enough to choose filters and check the read model against it."""

    runs: int
    events: int
    newest_start: datetime
    run_ids: list[str]  # a sample across the history, for detail requests
    by_scenario: dict[str, int]
    seconds: float = 0.0


def _periods_of(start: datetime) -> dict[str, str]:
    month = start.date().replace(day=1)
    return {f"P{i}": format_period(add_months(month, -i)) for i in range(len(RECORDED_PERIODS))}


def _dt(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _volume_factors(rng: random.Random) -> dict[str, float]:
    factors = {d: math.exp(rng.gauss(0.0, 0.04)) for d in DOMAINS}
    if rng.random() < 0.02:  # an unusual month: one domain's volumes several times larger
        factors[rng.choice(DOMAINS)] *= rng.uniform(3.0, 5.0)
    return factors


def _duration_factor(rng: random.Random) -> float:
    factor = math.exp(rng.gauss(0.0, 0.08))
    return factor * rng.uniform(2.5, 4.0) if rng.random() < 0.02 else factor


def render_clone(scenario: Scenario, run_id: str, anchor: float, rng: random.Random) -> tuple[str, str, str]:
    """COPY lines of one clone for `runs`, `run_tags` and `event_logs`."""
    stretch = _duration_factor(rng)
    factors = _volume_factors(rng)
    values: dict[str, str] = {
        "RUN": run_id,
        "USER": rng.choice(USERS),
        "REQUEST": f"rp-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
        **_periods_of(datetime.fromtimestamp(anchor, tz=UTC)),
    }
    for name, slot in scenario.volumes.items():
        scaled = slot.value * factors[slot.domain]
        values[name] = str(round(scaled)) if slot.integer else repr(round(scaled, 2))
    for index, offset in enumerate(scenario.event_offsets):
        ts = anchor + offset * stretch
        values[f"TS{index}"] = repr(round(ts, 6))
        values[f"DT{index}"] = _dt(ts)
    values["CREATED"] = _dt(anchor + scenario.create_offset)
    values["UPDATED"] = _dt(anchor + scenario.update_offset * stretch)
    values["START"] = (
        "\\N" if scenario.start_offset is None else repr(anchor + scenario.start_offset * stretch)
    )
    values["END"] = "\\N" if scenario.end_offset is None else repr(anchor + scenario.end_offset * stretch)
    return (
        scenario.run_row.render(values),
        scenario.tag_rows.render(values),
        scenario.event_rows.render(values),
    )


def _plan(
    scenarios: Sequence[Scenario], runs: int, now: datetime, seed: int
) -> Iterator[tuple[Scenario, float]]:
    """(scenario, anchor time) of each clone, oldest first, the newest about an hour before `now`."""
    rng = random.Random(seed)
    weights = [s.spec.weight for s in scenarios]
    newest = now.timestamp() - 3600.0
    for index in range(runs):
        jitter = rng.uniform(-0.3, 0.3) * RUN_INTERVAL_SECONDS
        yield rng.choices(scenarios, weights)[0], newest - (runs - 1 - index) * RUN_INTERVAL_SECONDS + jitter


# --- bulk load --------------------------------------------------------------------------------------


def _indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """Dagster's secondary indexes on the bulk-loaded tables (not primary keys or unique constraints)."""
    return conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.schemaname = 'public' AND i.tablename = ANY(%s) AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        (list(_DAGSTER_TABLES),),
    ).fetchall()


class _Buffer:
    """Batches COPY lines into large writes."""

    def __init__(self, copy: Any, size: int = 4 << 20) -> None:
        self.copy = copy
        self.size = size
        self.parts: list[str] = []
        self.length = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        if self.length >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.copy.write("".join(self.parts).encode())
            self.parts.clear()
            self.length = 0


def load_history(
    storage_url: str,
    template_storage_url: str,
    scenarios: Sequence[Scenario],
    runs: int,
    *,
    now: datetime | None = None,
    seed: int = 20261124,
    log: Callable[[str], None] = print,
) -> History:
    """COPY `runs` clones into the (empty, migrated) Dagster storage at `storage_url`."""
    from dagster import EventLogEntry, EventLogRecord, deserialize_value, serialize_value

    started = time.perf_counter()
    now = now or datetime.now(UTC)
    rng = random.Random(seed + 1)
    sample_every = max(1, runs // 500)
    sample: list[str] = []
    by_scenario: dict[str, int] = {}
    events = 0
    newest = 0.0
    with psycopg.connect(template_storage_url) as source:
        snapshots = source.execute(
            "SELECT snapshot_id, snapshot_body, snapshot_type FROM snapshots"
        ).fetchall()
    with psycopg.connect(storage_url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        with (
            conn.transaction(),
            conn.cursor().copy(
                "COPY snapshots (snapshot_id, snapshot_body, snapshot_type) FROM STDIN"
            ) as copy,
        ):
            for row in snapshots:
                copy.write_row(row)
        indexes = _indexes(conn)
        with conn.transaction():
            for name, _ in indexes:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        # Dagster's foreign key run_tags -> runs would check every tag row; the rows are consistent by
        # construction, so the check runs once, when the constraint is restored below.
        fkeys = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'run_tags'::regclass AND contype = 'f'"
        ).fetchall()
        with conn.transaction():
            for name, _ in fkeys:
                conn.execute(sql.SQL("ALTER TABLE run_tags DROP CONSTRAINT {}").format(sql.Identifier(name)))
        batch = 5000
        plan = list(_plan(scenarios, runs, now, seed))
        for first in range(0, runs, batch):
            chunk = plan[first : first + batch]
            rendered = []
            for offset, (scenario, anchor) in enumerate(chunk):
                run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                rendered.append(render_clone(scenario, run_id, anchor, rng))
                by_scenario[scenario.spec.name] = by_scenario.get(scenario.spec.name, 0) + 1
                events += scenario.event_count
                newest = max(newest, anchor)
                if (first + offset) % sample_every == 0:
                    sample.append(run_id)
            with conn.transaction():
                cur = conn.cursor()
                with cur.copy(
                    "COPY runs (run_id, snapshot_id, pipeline_name, status, run_body, create_timestamp, "
                    "update_timestamp, start_time, end_time) FROM STDIN"
                ) as copy:
                    buffer = _Buffer(copy)
                    for run_line, _, _ in rendered:
                        buffer.add(run_line)
                    buffer.flush()
                with cur.copy("COPY run_tags (run_id, key, value) FROM STDIN") as copy:
                    buffer = _Buffer(copy)
                    for _, tag_lines, _ in rendered:
                        buffer.add(tag_lines)
                    buffer.flush()
                with cur.copy(
                    "COPY event_logs (run_id, event, dagster_event_type, timestamp, step_key, asset_key, "
                    "partition) FROM STDIN"
                ) as copy:
                    buffer = _Buffer(copy)
                    for _, _, event_lines in rendered:
                        buffer.add(event_lines)
                    buffer.flush()
            done = first + len(chunk)
            if done % 20000 == 0 or done == runs:
                log(f"  loaded {done:,} runs ({events:,} events) in {time.perf_counter() - started:.0f} s")
        log(f"  rebuilding {len(indexes)} Dagster indexes and constraints")
        for _name, definition in indexes:
            conn.execute(definition)
            conn.commit()
        for name, definition in fkeys:
            conn.execute(
                sql.SQL("ALTER TABLE run_tags ADD CONSTRAINT {} ").format(sql.Identifier(name))
                + sql.SQL(definition)  # type: ignore[arg-type]
            )
            conn.commit()
        # asset_keys holds each asset's newest materialization, as Dagster's event storage keeps it.
        latest = conn.execute(
            "SELECT DISTINCT ON (asset_key) asset_key, id, run_id, event, timestamp FROM event_logs "
            "WHERE asset_key IS NOT NULL AND dagster_event_type = 'ASSET_MATERIALIZATION' "
            "ORDER BY asset_key, id DESC"
        ).fetchall()
        for asset_key, storage_id, run_id, event, timestamp in latest:
            record = EventLogRecord(
                storage_id=storage_id, event_log_entry=deserialize_value(event, EventLogEntry)
            )
            conn.execute(
                "INSERT INTO asset_keys (asset_key, last_materialization, last_run_id, "
                "last_materialization_timestamp) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (asset_key) DO UPDATE SET "
                "last_materialization = EXCLUDED.last_materialization, last_run_id = EXCLUDED.last_run_id, "
                "last_materialization_timestamp = EXCLUDED.last_materialization_timestamp",
                (asset_key, serialize_value(record), run_id, timestamp),
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE runs, run_tags, event_logs, asset_keys")
    return History(
        runs=runs,
        events=events,
        newest_start=datetime.fromtimestamp(newest, tz=UTC),
        run_ids=sample,
        by_scenario=by_scenario,
        seconds=time.perf_counter() - started,
    )


# --- verification -----------------------------------------------------------------------------------


def verify_history(dagster_home: Path, history: History, scenarios: Sequence[Scenario]) -> None:
    """Read the clones back through `DagsterInstance`'s public API; raise when anything is off."""
    from dagster import DagsterInstance, RunsFilter

    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        count = instance.get_runs_count(RunsFilter(job_name=JOB_NAME))
        if count != history.runs:
            raise RuntimeError(f"Dagster counts {count} {JOB_NAME} runs, {history.runs} were loaded")
        newest = instance.get_run_records(limit=5)
        expected_counts: dict[str, set[int]] = {}
        for scenario in scenarios:
            expected_counts.setdefault(scenario.status, set()).add(scenario.event_count)
        for run_id in [r.dagster_run.run_id for r in newest] + history.run_ids[
            :: max(1, len(history.run_ids) // 20)
        ]:
            record = instance.get_run_record_by_id(run_id)
            if record is None:
                raise RuntimeError(f"loaded run {run_id} is not readable through get_run_record_by_id")
            logs = instance.all_logs(run_id)
            status = record.dagster_run.status.value
            if len(logs) not in expected_counts.get(status, set()):
                raise RuntimeError(
                    f"run {run_id} ({status}) has {len(logs)} events; the recorded runs of that status have "
                    f"{sorted(expected_counts.get(status, set()))}"
                )
            if any(entry.run_id != run_id for entry in logs):
                raise RuntimeError(f"run {run_id} has events of another run")
            stats = instance.get_run_step_stats(run_id)
            if record.dagster_run.status.value in ("SUCCESS", "FAILURE") and not stats:
                raise RuntimeError(f"run {run_id} has no step stats")
    finally:
        instance.dispose()
