"""Processes and clients of the API benchmark: embedded PostgreSQL, the admin API, dagster-webserver.

Both HTTP servers run as separate processes on 127.0.0.1, one uvicorn worker
each, without access logs; the benchmark talks to them over keep-alive HTTP/1.1
connections (`http.client`), so a figure is what a client on the same machine
waits for: request, handler, database, response body.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

__all__ = [
    "RUNS_QUERY",
    "HttpClient",
    "Server",
    "create_database",
    "free_port",
    "start_postgres",
    "write_dagster_yaml",
]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
BIN: Final = Path(sys.executable).parent

# The page Dagster's UI run list asks for, plus what a FinOps list needs from each run:
# status, times and tags, and per-step status, times, attempts and materializations.
RUNS_QUERY: Final = """
query FinopsBenchRuns($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs {
      results {
        runId
        status
        creationTime
        startTime
        endTime
        tags { key value }
        stepStats {
          stepKey
          status
          startTime
          endTime
          attempts { startTime endTime }
          materializations { timestamp assetKey { path } }
        }
      }
    }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres(work: Path) -> tuple[Any, str]:
    """An embedded PostgreSQL 16 (pgserver) under `work/pg`; returns (server, URL of `postgres`)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    server = pgserver.get_server(work / "pg", cleanup_mode="stop")
    base_url = server.get_uri()
    with psycopg.connect(base_url, autocommit=True) as conn:
        # Bulk loads write several GB of WAL at 100k runs: fewer forced checkpoints while loading.
        # Both are reloadable settings and change nothing for the read queries measured.
        conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
        conn.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
        conn.execute("SELECT pg_reload_conf()")
    return server, base_url


def create_database(base_url: str, name: str) -> str:
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return base_url.replace("/postgres?", f"/{name}?", 1)


def drop_database(base_url: str, name: str) -> None:
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def write_dagster_yaml(home: Path, storage_url: str) -> None:
    """A Postgres-backed Dagster instance (dagster-postgres needs the psycopg2 driver in the URL)."""
    home.mkdir(parents=True, exist_ok=True)
    url = storage_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    (home / "dagster.yaml").write_text(
        f'storage:\n  postgres:\n    postgres_url: "{url}"\ntelemetry:\n  enabled: false\n'
    )


@dataclass
class Server:
    """A server subprocess, stopped (SIGINT, then SIGKILL) by `stop`."""

    name: str
    args: list[str]
    env: Mapping[str, str]
    port: int
    ready_path: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, timeout: float = 120.0) -> None:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.args, env={**os.environ, **self.env}, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.process.returncode} before answering; "
                    f"see {self.log_path}:\n{self._tail()}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.ready_path)
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_path} within {timeout:.0f} s; see {self.log_path}"
        )

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def admin_api(port: int, env: Mapping[str, str], log_path: Path) -> Server:
    """The admin API as `finops serve` runs it (uvicorn on the bounded h11 protocol of
    `finops_admin_plugin.http.server`, settings from the environment), without access logs."""
    program = (
        "import uvicorn\n"
        "from finops_admin_plugin.app import create_app\n"
        "from finops_admin_plugin.http.server import server_config\n"
        f"config = server_config(create_app(), '127.0.0.1', {port}, log_level='warning', access_log=False)\n"
        "uvicorn.Server(config).run()\n"
    )
    return Server("admin API", [sys.executable, "-c", program], env, port, "/finops/admin/healthz", log_path)


def dagster_webserver(port: int, env: Mapping[str, str], log_path: Path) -> Server:
    """dagster-webserver on the same instance, with the FinOps code location (workspace.yaml)."""
    executable = shutil.which("dagster-webserver", path=str(BIN)) or str(BIN / "dagster-webserver")
    args = [
        executable,
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
        "--uvicorn-log-level",
        "warning",
    ]
    return Server("dagster-webserver", args, env, port, "/server_info", log_path)


class HttpClient:
    """One keep-alive connection; `timed_*` return (seconds until the whole body was read, body)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[float, bytes]:
        try:
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the idle keep-alive connection (uvicorn's 5 s, reached when the
            # machine is loaded): timed again on a fresh connection.
            self.conn.close()
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(
                f"{method} {path} on port {self.port} answered {response.status}: {data[:500]!r}"
            )
        return elapsed, data

    def timed_get(self, path: str) -> tuple[float, bytes]:
        return self._send("GET", path, None, {"Accept": "application/json"})

    def timed_graphql(self, variables: dict[str, Any]) -> tuple[float, bytes]:
        body = json.dumps({"query": RUNS_QUERY, "variables": variables}).encode()
        return self._send("POST", "/graphql", body, {"Content-Type": "application/json"})

    def close(self) -> None:
        self.conn.close()
