"""`finops dev`: the whole stack on one machine, with nothing but Python installed.

PostgreSQL (pgserver) in the state folder, the warehouse schema, demo landing
data, the `public` domain's demo deliveries (an AWS Data Exports export and an Azure
Cost Management export in local folders, with the sources file naming them:
FINOPS_SOURCES), a few seeded runs (one failing), the Dagster webserver and daemon
(whose delivery sensor then finds the deliveries loaded), and the admin API.

The stack heals and never leaves orphans: a child that exits is started again (with a
line saying so, and a growing pause if it keeps crashing); SIGINT or SIGTERM stop every
child, even when the shell started `finops dev` with SIGINT ignored (a background job of a
script); and each child is killed by the kernel if `finops dev` itself is killed outright
(PR_SET_PDEATHSIG, set in the child before it runs).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from finops_cli.reaper import CLIENTS_FILE, stop_postgres
from finops_pipeline.contract import (
    DOMAINS,
    JOB_NAME,
    SCHEDULE_NAME,
    TRIGGER_CRON,
    TRIGGER_MANUAL,
    batch_run_config,
)
from finops_pipeline.periods import add_months, format_period, parse_period

__all__ = ["DevStack", "demo_sources_file", "seed_demo_landing", "seed_demo_sources", "seed_run_plans"]

TEMPLATES = resources.files("finops_cli") / "templates"
DEMO_MONTHS = 6
# The demo's files are dated this long before the stack starts: a landing month counts as
# delivered once its files have not changed for FINOPS_DELIVERY_SETTLE_SECONDS (15 min by
# default), and the demo's were complete before any process could read them.
DEMO_DELIVERED_AGO = timedelta(days=1)


def _say(message: str) -> None:
    print(f"[finops dev] {message}", flush=True)


def ensure_database(base_url: str, name: str) -> str:
    with psycopg.connect(base_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # fixed names
    return base_url.replace("/postgres?", f"/{name}?", 1)


def demo_sources_file(home: Path) -> Path:
    """Where `finops dev` writes the demo's sources file, beside the demo exports."""
    return home / "exports" / "sources.yaml"


def _date_files(root: Path, when: datetime) -> None:
    stamp = when.timestamp()
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (stamp, stamp))


def seed_demo_landing(
    landing: Path, *, now: datetime, months: int = DEMO_MONTHS, scale: float = 1.0
) -> dict[str, Any]:
    """The demo landing folders (every domain, `native` broken two months ago), dated as
    delivered before `now`. Returns `write_demo_landing`'s summary."""
    from finops_pipeline.demo_data import write_demo_landing

    broken = ("native", format_period(add_months(parse_period(format_period(now)), -2)))
    summary = write_demo_landing(str(landing), months=months, now=now, scale=scale, broken=broken)
    _date_files(landing, now - DEMO_DELIVERED_AGO)
    return summary


def seed_demo_sources(
    home: Path, landing: Path, *, now: datetime, months: int = DEMO_MONTHS, scale: float = 1.0
) -> Path:
    """The `public` domain's demo deliveries under `<home>/exports` and the sources file beside
    them (`demo_sources_file`): those two exports for `public`, and for every other domain a
    `landing` source on its demo landing folder. Returns the sources file's path."""
    import yaml

    from finops_pipeline.demo_data import write_demo_deliveries

    path = demo_sources_file(home)
    exports = write_demo_deliveries(path.parent, months=months, now=now, scale=scale)
    _date_files(path.parent, now - DEMO_DELIVERED_AGO)
    entries: list[dict[str, Any]] = [
        {"name": e.name, "domain": "public", "kind": e.kind, "uri": e.uri, "expected_day": 3} for e in exports
    ]
    entries += [
        {"name": f"{domain}-landing", "domain": domain, "kind": "landing", "uri": str(landing / domain)}
        for domain in DOMAINS
        if domain != "public"
    ]
    header = (
        "# The demo's sources (FINOPS_SOURCES), written by `finops dev`: the public domain from\n"
        "# an AWS Data Exports export and an Azure Cost Management export (local copies of what\n"
        "# the providers write), the other domains from their landing folders (landing/public is\n"
        "# read only without this file). Format: README, section Sources.\n"
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump({"sources": entries}, sort_keys=False))
    tmp.replace(path)  # last: an existing file says the demo deliveries are all written
    return path


def seed_run_plans(now: datetime) -> list[dict[str, Any]]:
    """The demo history: successes, a CRON run, and one run failing on a broken month."""
    current = parse_period(format_period(now))
    months = [format_period(add_months(current, -i)) for i in range(DEMO_MONTHS)]  # newest first
    every = list(DOMAINS)
    return [
        {"periods": months[5:3:-1], "domains": every, "trigger": TRIGGER_MANUAL,
         "requested_by": "user:default/amelie.martin"},
        {"periods": months[3:1:-1], "domains": every, "trigger": TRIGGER_MANUAL,
         "requested_by": "user:default/amelie.martin"},  # native months[2] is broken: FAILED
        {"periods": [months[2]], "domains": ["open", "public"], "trigger": TRIGGER_MANUAL,
         "requested_by": "user:default/jdoe"},
        {"periods": months[1::-1], "domains": every, "trigger": TRIGGER_CRON,
         "requested_by": f"schedule:{SCHEDULE_NAME}"},
    ]  # fmt: skip


class _StopStack(Exception):
    """SIGINT or SIGTERM: stop every child and exit."""


def _die_with_parent(parent: int, *, term_blocked: bool = False) -> Callable[[], None]:
    """A preexec function: own session, and SIGTERM from the kernel when `parent` dies
    (`term_blocked`: held pending until the child takes it, for the reaper)."""

    def preexec() -> None:
        os.setsid()
        if term_blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return preexec


_PR_SET_PDEATHSIG = 1
REAPER = "postgres-reaper"
RESTART_WINDOW_SECONDS = 60.0
MAX_RESTART_PAUSE_SECONDS = 30.0


class DevStack:
    def __init__(self, home: str, api_port: int, dagster_port: int, seed: bool) -> None:
        self.home = Path(home).resolve()
        self.api_port, self.dagster_port, self.seed = api_port, dagster_port, seed
        self.children: list[subprocess.Popen[bytes]] = []
        self.commands: dict[str, list[str]] = {}
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.env: dict[str, str] = {}

    # -- setup -------------------------------------------------------------------------
    def _start_postgres(self) -> tuple[str, str]:
        import pgserver

        _say(f"starting PostgreSQL (pgserver) in {self.home / 'pgdata'}")
        server = pgserver.get_server(self.home / "pgdata", cleanup_mode="stop")
        base = server.get_uri()
        return ensure_database(base, "finops"), ensure_database(base, "dagster")

    def _prepare_env(self, warehouse_url: str, dagster_url: str) -> None:
        dagster_home = self.home / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        # The instance and workspace files are package data: the stack runs from an installed
        # package as well as from a checkout.
        for name in ("dagster.yaml", "workspace.yaml"):
            (dagster_home / name).write_text((TEMPLATES / name).read_text())
        landing = self.home / "landing"
        env = {
            "DAGSTER_HOME": str(dagster_home),
            "DAGSTER_PG_URL": dagster_url.replace("postgresql://", "postgresql+psycopg2://", 1),
            "FINOPS_DATABASE_URL": warehouse_url,
            "FINOPS_LANDING_URI": os.environ.get("FINOPS_LANDING_URI", str(landing)),
            "FINOPS_COMPUTE_LOGS_DIR": str(dagster_home / "storage"),
            "FINOPS_AUTH_MODE": os.environ.get("FINOPS_AUTH_MODE", "dev"),
            "FINOPS_API_HOST": "127.0.0.1",
            "FINOPS_API_PORT": str(self.api_port),
            "FINOPS_DAGSTER_UI_URL": f"http://127.0.0.1:{self.dagster_port}",
        }
        sources = os.environ.get("FINOPS_SOURCES") or self._demo_sources(env["FINOPS_LANDING_URI"])
        if sources:
            env["FINOPS_SOURCES"] = sources
        self.env = env
        os.environ.update(env)
        lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        (self.home / "env.sh").write_text(
            "# Environment of the `finops dev` stack: `source .finops/env.sh`, then e.g. `finops batch`.\n"
            + "\n".join(lines)
            + "\n"
        )

    def _demo_sources(self, landing_uri: str) -> str | None:
        """The demo sources file, when `finops dev` seeds it or seeded it on an earlier start;
        None for a landing that is not a local folder (the demo writes local folders only)."""
        path = demo_sources_file(self.home)
        if "://" in landing_uri or not (self.seed or path.exists()):
            return None
        return str(path)

    def _seed_landing(self) -> None:
        landing = Path(self.env["FINOPS_LANDING_URI"])
        if (landing / "manifest.json").exists():
            _say(f"demo landing data already in {landing}")
            return
        summary = seed_demo_landing(landing, now=datetime.now(UTC))
        _say(
            f"wrote demo landing data: {sum(summary['rows'].values())} cost records, "
            f"{len(summary['files'])} files, broken month {'/'.join(summary['broken'])}"
        )

    def _seed_sources(self) -> None:
        path = demo_sources_file(self.home)
        if self.env.get("FINOPS_SOURCES") != str(path):
            return  # the user's own sources file, or none
        if path.exists():
            _say(f"demo deliveries and sources file already in {path.parent}")
            return
        seed_demo_sources(self.home, Path(self.env["FINOPS_LANDING_URI"]), now=datetime.now(UTC))
        _say(
            f"wrote the public domain's demo deliveries (AWS Data Exports, Azure Cost Management "
            f"export) and the sources file {path} (FINOPS_SOURCES)"
        )

    def _seed_runs(self) -> None:
        from dagster import DagsterInstance, RunsFilter

        from finops_pipeline.contract import batch_tags
        from finops_pipeline.definitions import build_definitions
        from finops_pipeline.settings import get_pipeline_settings

        get_pipeline_settings.cache_clear()  # read again: _prepare_env set FINOPS_SOURCES
        with DagsterInstance.get() as instance:
            if instance.get_runs_count(RunsFilter(job_name=JOB_NAME)) > 0:
                _say("Dagster already has finops_batch runs: not seeding")
                return
            job = build_definitions().resolve_job_def(JOB_NAME)
            for plan in seed_run_plans(datetime.now(UTC)):
                tags = batch_tags(
                    trigger=plan["trigger"], periods=plan["periods"], domains=plan["domains"],
                    requested_by=plan["requested_by"],
                )  # fmt: skip
                if plan["trigger"] == TRIGGER_CRON:
                    tags["dagster/schedule_name"] = SCHEDULE_NAME
                result = job.execute_in_process(
                    instance=instance,
                    run_config=batch_run_config(
                        plan["periods"],
                        plan["domains"],
                        loggers={"console": {"config": {"log_level": "CRITICAL"}}},
                    ),
                    tags=tags,
                    raise_on_error=False,
                )
                _say(
                    f"seeded run {result.run_id[:8]} {'SUCCESS' if result.success else 'FAILED'}: "
                    f"{','.join(plan['periods'])} {','.join(plan['domains'])}"
                )

    # -- processes -----------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        log_path = self.home / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115  # lives as long as the child
        child = subprocess.Popen(
            argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.home, preexec_fn=_die_with_parent(os.getpid(), term_blocked=name == REAPER),
        )  # fmt: skip
        log.close()  # the child holds its own descriptor
        self.children.append(child)
        self.commands[name] = argv
        self.running[name] = child
        # PostgreSQL's clients, for the reaper to wait for if `finops dev` is killed outright.
        clients = [str(c.pid) for n, c in self.running.items() if n != REAPER]
        (self.home / CLIENTS_FILE).write_text("\n".join(clients) + "\n")
        _say(f"started {name} (pid {child.pid}), log: {log_path}")

    def _heal(self) -> None:
        """Start again every child that exited, pausing longer while one keeps crashing."""
        now = time.monotonic()
        for name, child in list(self.running.items()):
            code = child.poll()
            if code is None:
                continue
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW_SECONDS]
            pause = min(MAX_RESTART_PAUSE_SECONDS, 2.0 ** len(recent) - 1) if recent else 0.0
            if recent and now - recent[-1] < pause:
                continue  # crashing in a loop: wait before the next try
            self.restarts[name] = [*recent, now]
            _say(
                f"{name} (pid {child.pid}) exited with code {code}; restarting it "
                f"(restart {len(recent) + 1} in the last minute; see {self.home / 'logs' / (name + '.log')})"
            )
            self.children.remove(child)
            self._spawn(name, self.commands[name])

    def _wait_http(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._heal()
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return True
            except OSError:
                time.sleep(0.5)
        return False

    def _stop_children(self) -> None:
        reaper = self.running.get(REAPER)
        if reaper is not None and reaper.poll() is None:
            reaper.kill()  # a normal stop: PostgreSQL is stopped below, after its clients
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self._stop_postgres()

    def _stop_postgres(self) -> None:
        """Stop the PostgreSQL of the data dir, whichever process serves it now.

        pgserver stops at exit only the postmaster it started itself: after a `pg_ctl restart`
        that process is gone, and the new one was left running (2 of 2 tries with two
        restarts). `pg_ctl stop -D` finds the server of the data dir from its postmaster.pid.
        """
        pgdata = self.home / "pgdata"
        if not (pgdata / "postmaster.pid").exists():
            return  # never started, or already stopped
        _say(f"stopping PostgreSQL in {pgdata}")
        stop_postgres(str(pgdata))

    def run(self) -> int:
        # Set explicitly: a shell starts a script's background job with SIGINT ignored, and
        # Python then installs no handler of its own.
        def stop(signum: int, _frame: Any) -> None:
            raise _StopStack(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            return self._run()
        except _StopStack as exc:
            _say(f"{exc}: stopping")
            self._stop_children()
            return 0

    def _run(self) -> int:
        self.home.mkdir(parents=True, exist_ok=True)
        from finops_pipeline.warehouse.schema import ensure_schema

        warehouse_url, dagster_url = self._start_postgres()
        self._spawn(REAPER, [sys.executable, "-m", "finops_cli.reaper", str(self.home / "pgdata")])
        self._prepare_env(warehouse_url, dagster_url)
        ensure_schema(warehouse_url)
        if self.seed:
            self._seed_landing()
            self._seed_sources()
            self._seed_runs()
        bin_dir = Path(sys.executable).parent
        workspace = str(self.home / "dagster_home" / "workspace.yaml")
        self._spawn("dagster-webserver", [str(bin_dir / "dagster-webserver"), "-w", workspace,
                                          "-h", "127.0.0.1", "-p", str(self.dagster_port)])  # fmt: skip
        self._spawn("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace])
        self._spawn("finops-api", [sys.executable, "-m", "finops_cli", "serve"])
        try:
            api = f"http://127.0.0.1:{self.api_port}/finops/admin"
            ok_api = self._wait_http(f"{api}/healthz", 60)
            ok_ui = self._wait_http(f"http://127.0.0.1:{self.dagster_port}/server_info", 120)
            if not (ok_api and ok_ui):
                _say(f"a process did not come up; see the logs in {self.home / 'logs'}")
                return 1
            _say("ready:")
            _say(f"  Dagster UI       http://127.0.0.1:{self.dagster_port}")
            _say(f"  admin API        {api}/runs  (OpenAPI: {api}/openapi.json)")
            _say(f"  admin UI         {api}/ui")
            _say(f"  auth mode        {self.env['FINOPS_AUTH_MODE']}")
            _say(f"  environment      source {self.home / 'env.sh'}")
            _say("Ctrl-C stops everything.")
            while True:
                time.sleep(1)
                self._heal()
        finally:
            self._stop_children()
