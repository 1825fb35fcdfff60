"""Helpers shared by the tests: real PostgreSQL, real Dagster instances, real runs."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

IN_CI = os.environ.get("CI", "").lower() == "true"
# The tags Dagster's daemon puts on a run a sensor requested (its public names, as Dagster writes them).
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"


def require(condition: bool, why: str) -> None:
    """Skip locally when a component is missing, but fail in CI: a skip there hides a broken install."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required test component missing in CI: {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url_for(base_url: str, name: str) -> str:
    """`base_url` (pgserver's, on a unix socket) pointed at another database."""
    return base_url.replace("/postgres?", f"/{name}?", 1)


def create_database(base_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url_for(base_url, name)


def stop_group(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM a process started with `start_new_session=True` and its children; SIGKILL
    them when they have not exited within `timeout` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@dataclass(frozen=True)
class OwnPostgres:
    """A PostgreSQL of one test module's own (pgserver), which its tests may stop and start."""

    pgdata: Path
    base_url: str

    @property
    def socket_dir(self) -> str:
        return self.base_url.split("host=")[1].split("&")[0]

    def url(self, database: str) -> str:
        return database_url_for(self.base_url, database)

    def pg_ctl(self, *args: str) -> None:
        import pgserver

        # As root, pgserver runs PostgreSQL as its own unprivileged user; pg_ctl must too.
        kwargs = {"user": "pgserver"} if os.geteuid() == 0 else {}
        pgserver.pg_ctl(list(args), pgdata=self.pgdata, **kwargs)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        """Start it again as pgserver did: unix socket only, in the same directory."""
        self.pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}",
                    "-l", str(self.pgdata / "restart.log"), "start")  # fmt: skip


@contextlib.contextmanager
def own_postgres(root: Path, databases: tuple[str, ...] = ("finops", "dagster")) -> Iterator[OwnPostgres]:
    """A new PostgreSQL under `root` with `databases` created, stopped on exit however the
    tests left it (pgserver does not stop a server restarted outside it)."""
    try:
        import pgserver
    except ImportError:  # pragma: no cover
        require(False, "pgserver is not installed")
        raise
    pgdata = root / "pgdata"
    server = OwnPostgres(pgdata, pgserver.get_server(pgdata, cleanup_mode="stop").get_uri())
    with psycopg.connect(server.base_url, autocommit=True) as conn:
        for name in databases:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    """`app` served by uvicorn on a thread of this process, on a free loopback port (yielded);
    stopped on exit."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the admin API did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def dagster_url(url: str) -> str:
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3, which dagster-postgres does not support.
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def local_logs_instance(pg_base_url: str, tmp: Path) -> Any:
    """A Postgres-backed Dagster instance of its own whose compute logs are local files under
    `tmp/compute_logs` (what the live-log tests follow as they grow)."""
    from dagster import DagsterInstance

    home = tmp / "dagster_home"
    write_dagster_yaml(
        home,
        create_database(pg_base_url, "dagster"),
        compute_logs={
            "module": "dagster.core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(tmp / "compute_logs")},
        },
    )
    return DagsterInstance.from_config(str(home))


def write_dagster_yaml(home: Path, storage_url: str, *, compute_logs: dict[str, Any] | None = None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    lines = [
        "storage:",
        "  postgres:",
        f'    postgres_url: "{dagster_url(storage_url)}"',
        "telemetry:",
        "  enabled: false",
    ]
    if compute_logs:
        import yaml

        lines.append(yaml.safe_dump({"compute_logs": compute_logs}).rstrip())
    (home / "dagster.yaml").write_text("\n".join(lines) + "\n")


def make_instance(base_url: str, home: Path, **kwargs: Any) -> DagsterInstance:
    storage_url = create_database(base_url, "dagster")
    write_dagster_yaml(home, storage_url, **kwargs)
    return DagsterInstance.from_config(str(home))


def run_batch(
    instance: DagsterInstance,
    *,
    periods: list[str],
    domains: list[str],
    tags: dict[str, str] | None = None,
    allow_shrink: bool = False,
) -> ExecuteInProcessResult:
    """A real finops_batch run, in process, on `instance` (env must point at the warehouse)."""
    from finops_pipeline.contract import TRIGGER_MANUAL, batch_run_config, batch_tags
    from finops_pipeline.definitions import build_definitions

    job = build_definitions().resolve_job_def("finops_batch")
    run_tags = batch_tags(
        trigger=TRIGGER_MANUAL, periods=periods, domains=domains, requested_by="user:default/tester"
    )
    run_tags.update(tags or {})
    return job.execute_in_process(
        instance=instance,
        run_config=batch_run_config(periods, domains, allow_shrink=allow_shrink),
        tags=run_tags,
        raise_on_error=False,
    )


# --- Independent expectations for FOCUS landing files, and warehouse/run readers ----------------
# The rules below restate the documented FOCUS checks row by row in plain Python, so the
# batch's vectorized validation is compared with a second, simple implementation.


def focus_samples_dir() -> Path:
    """The FinOps Foundation's FOCUS samples.

    FINOPS_FOCUS_SAMPLES_DIR, or `<repo>/../shared/focus-samples`; missing fails in CI.
    """
    folder = Path(
        os.environ.get("FINOPS_FOCUS_SAMPLES_DIR")
        or Path(__file__).resolve().parents[1].parent / "shared" / "focus-samples"
    )
    require((folder / "focus_sample.csv").is_file(), f"FOCUS sample data not found under {folder}")
    return folder


_REQUIRED = ("BilledCost", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd")
_TIMESTAMPS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")


def reference_reject_reason(row: dict[str, Any], period: str, basis: str = "billing") -> str | None:
    """The documented reason a FOCUS row cannot be stored (None for a row that loads).

    Only what cannot be stored truthfully is a reason; FOCUS conformance findings
    (a missing service name, a charge outside its billing period...) load.
    """
    from datetime import UTC, datetime
    from decimal import Decimal, InvalidOperation

    from finops_pipeline.landing.focus_columns import FOCUS_BY_NAME, billing_currencies
    from finops_pipeline.periods import month_bounds

    def empty(name: str) -> bool:
        value = row.get(name)
        return value is None or value == "" or (isinstance(value, float) and value != value)

    for name in (*_REQUIRED, "ChargePeriodStart", "ChargePeriodEnd"):
        if name not in row:
            return f"missing_column:{name}"
    for name in (*_REQUIRED, "ChargePeriodStart", "ChargePeriodEnd"):
        if empty(name):
            return f"missing_value:{name}"
    for name, value in row.items():
        column = FOCUS_BY_NAME.get(name)
        if column is None or column.kind != "decimal" or empty(name):
            continue
        # Python's Decimal also takes spaces, underscores, NaN and Infinity: FOCUS numbers do not.
        plain = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?", str(value)) is not None
        try:
            number: Decimal | None = Decimal(str(value)) if plain else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            suffix = "cost" if name.endswith("Cost") else "quantity" if name.endswith("Quantity") else "price"
            return f"invalid_{suffix}"
    stamps: dict[str, datetime] = {}
    for name in _TIMESTAMPS:
        text = str(row[name]).strip().removesuffix(" UTC").replace("Z", "+00:00")
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return f"invalid_timestamp:{name}"
        stamps[name] = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if row["BillingCurrency"] not in billing_currencies():
        return "unknown_currency"
    start, end = month_bounds(period)
    anchor = stamps["BillingPeriodStart" if basis == "billing" else "ChargePeriodStart"]
    if not start <= anchor < end:
        return f"{basis}_period_outside_month"
    if any(isinstance(v, str) and "\x00" in v for v in row.values()):
        return "invalid_character"
    return None


def read_landing_frame(data: bytes, name: str) -> Any:
    """One landing file as a pandas frame of strings (None for empty cells), read with pandas."""
    import io

    import pandas as pd

    if name.endswith(".parquet"):
        frame = pd.read_parquet(io.BytesIO(data))
    else:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            compression="gzip" if name.endswith(".gz") else None,
        )
    frame = frame.astype(object)
    return frame.where(frame.notna() & (frame != ""), None)


def expected_from_frames(frames: dict[tuple[str, str], list[Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (domain, period): rows read, valid rows (as dicts) and rejects by reason."""
    from collections import Counter

    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for (domain, period), parts in frames.items():
        valid: list[dict[str, Any]] = []
        rejected: Counter[str] = Counter()
        read = 0
        for frame in parts:
            for row in frame.to_dict("records"):
                read += 1
                reason = reference_reject_reason(row, period)
                if reason:
                    rejected[reason] += 1
                else:
                    valid.append(row)
        expected[(domain, period)] = {"rows_read": read, "valid": valid, "rejected": rejected}
    return expected


def expected_from_local_landing(root: Path, periods: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    from finops_pipeline.contract import DOMAINS

    frames: dict[tuple[str, str], list[Any]] = {}
    for domain in DOMAINS:
        for period in periods:
            folder = root / domain / period
            files = sorted(folder.iterdir()) if folder.is_dir() else []
            frames[(domain, period)] = [read_landing_frame(f.read_bytes(), f.name) for f in files]
    return expected_from_frames(frames)


def application_of(row: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """The first of `keys` (default: the loader's) found in the row's tags, case-insensitively."""
    import json

    from finops_pipeline.constants import DEFAULT_APPLICATION_TAG_KEYS

    try:
        tags = json.loads(row["Tags"]) if row.get("Tags") else {}
    except ValueError:
        tags = {}
    lowered: dict[str, Any] = {}
    for key, value in tags.items() if isinstance(tags, dict) else []:
        lowered.setdefault(key.lower(), value)
    for key in keys or DEFAULT_APPLICATION_TAG_KEYS:
        value = lowered.get(key.lower())
        if value not in (None, ""):
            return value if isinstance(value, str) else json.dumps(value)
    return "unassigned"


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def releves_snapshot(url: str, *, with_run_id: bool = False) -> list[tuple[Any, ...]]:
    """Every row of finops.releves, sorted, without `dagster_run_id` unless asked."""
    columns = [
        r[0]
        for r in query(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'finops' AND table_name = 'releves' ORDER BY ordinal_position",
        )
        if with_run_id or r[0] != "dagster_run_id"
    ]
    cols = ", ".join(f'"{c}"' for c in columns)
    rows = query(url, f"SELECT {cols} FROM finops.releves")
    return sorted(rows, key=repr)


def mv_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    from finops_pipeline.contract import MATERIALIZED_VIEWS

    return {name: sorted(query(url, f"SELECT * FROM finops.{name}"), key=repr) for name in MATERIALIZED_VIEWS}


def counts_by_pair(url: str) -> dict[tuple[str, str], int]:
    rows = query(url, "SELECT domain, period, count(*) FROM finops.releves GROUP BY 1, 2")
    return {(d, p): int(n) for d, p, n in rows}


def run_ids_by_pair(url: str) -> dict[tuple[str, str], set[str]]:
    rows = query(url, "SELECT DISTINCT domain, period, dagster_run_id FROM finops.releves")
    found: dict[tuple[str, str], set[str]] = {}
    for domain, period, run_id in rows:
        found.setdefault((domain, period), set()).add(run_id)
    return found


def run_events(instance: DagsterInstance, run_id: str) -> list[Any]:
    """The run's Dagster events, read back from the instance's storage."""
    return [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]


def metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values of a Dagster metadata dict."""
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def output_metadata(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """Per load step: the metadata of its output (read back from Dagster storage)."""
    from dagster import DagsterEventType

    found = {}
    for event in run_events(instance, run_id):
        if event.event_type == DagsterEventType.STEP_OUTPUT and event.step_key.startswith("load_"):
            found[event.step_key] = metadata_values(event.event_specific_data.metadata)
    return found


def reprocess_sensor_tick(
    instance: DagsterInstance, database_url: str, defs: Any = None, **queue: Any
) -> list[Any]:
    """One evaluation of the reprocess sensor as the code location defines it, as the daemon
    runs it: the RunRequests it returns (none on a SkipReason)."""
    from dagster import SensorResult, SkipReason, build_sensor_context

    from finops_pipeline.contract import REPROCESS_SENSOR_NAME
    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.resources import ReprocessQueueResource

    defs = defs or build_definitions()
    sensor = defs.resolve_sensor_def(REPROCESS_SENSOR_NAME)
    # Invoked directly, a sensor gets its resources from the context, not from `definitions`.
    resource = ReprocessQueueResource(database_url=database_url, **queue)
    with build_sensor_context(
        instance=instance,
        definitions=defs,
        sensor_name=REPROCESS_SENSOR_NAME,
        resources={"reprocess_queue": resource},
    ) as context:
        result = sensor(context)
    if isinstance(result, SkipReason):
        return []
    assert isinstance(result, SensorResult), result
    return list(result.run_requests or [])


def delivery_sensor_tick(instance: DagsterInstance, defs: Any = None) -> list[Any]:
    """One evaluation of the delivery sensor as the code location defines it (its resources
    configured from the environment, as `definitions` builds them): its RunRequests."""
    from dagster import SensorResult, SkipReason, build_sensor_context

    from finops_pipeline.contract import DELIVERY_SENSOR_NAME
    from finops_pipeline.definitions import build_definitions

    defs = defs or build_definitions()
    sensor = defs.resolve_sensor_def(DELIVERY_SENSOR_NAME)
    # Invoked directly, a sensor gets its resources from the context, not from `definitions`.
    with build_sensor_context(
        instance=instance,
        definitions=defs,
        sensor_name=DELIVERY_SENSOR_NAME,
        resources={"sources": defs.resources["sources"]},
    ) as context:
        result = sensor(context)
    if isinstance(result, SkipReason):
        return []
    assert isinstance(result, SensorResult), result
    return list(result.run_requests or [])


def launch_run_requests(
    instance: DagsterInstance, run_requests: list[Any], defs: Any = None, sensor_name: str | None = None
) -> list[str]:
    """What the Dagster daemon does with a sensor tick's RunRequests (the reprocess sensor's
    unless `sensor_name` says otherwise): one run per run key (a key already launched is not
    launched again). Returns the new runs' ids."""
    from dagster import RunsFilter

    from finops_pipeline.contract import JOB_NAME, REPROCESS_SENSOR_NAME
    from finops_pipeline.definitions import build_definitions

    job = (defs or build_definitions()).resolve_job_def(JOB_NAME)
    run_ids = []
    for run_request in run_requests:
        tags = {RUN_KEY_TAG: run_request.run_key or "", SENSOR_NAME_TAG: sensor_name or REPROCESS_SENSOR_NAME}
        if instance.get_runs(filters=RunsFilter(tags=tags)):
            continue
        result = job.execute_in_process(
            instance=instance,
            run_config=run_request.run_config,
            tags={**run_request.tags, **tags},
            raise_on_error=False,
        )
        run_ids.append(result.run_id)
    return run_ids
