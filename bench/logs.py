"""Log download benchmark: a 1 GiB compute log through GET /runs/{runId}/logs over real HTTP.

Here, in one run:

* a real `finops_batch` run (in process, one domain, one month) on a Dagster
  instance backed by an embedded PostgreSQL (pgserver), with local compute logs;
* its stdout capture grown to `--size-mib` MiB (1024 by default) of batch-like
  lines, written through the compute log manager's `open_log_stream`;
* the admin API started as `finops serve` (uvicorn) in its own process;
* `cat` of the capture file to /dev/null, the anchor, and the download
  (`stream=stdout`) over HTTP on loopback, its body read in 1 MiB blocks and
  counted. Each is measured from the disk (the file dropped from the page
  cache first with `posix_fadvise(DONTNEED)`, which touches no other file) and
  again from the page cache, `--repeat` times; the median is reported. A last
  download is hashed and compared with the file. For reference, the file is
  also sent over bare loopback TCP between two processes (no HTTP).
* the API process's peak RSS growth during the downloads: its peak RSS is
  reset (`/proc/<pid>/clear_refs`) after a warm-up request, then read from
  VmHWM; VmRSS is also sampled every 5 ms, and the larger growth is reported.

Targets: download throughput from local disk at least 0.5x `cat`'s; API RSS
growth under 64 MiB. Exit status 1 when a target is missed.

    .venv/bin/python bench/logs.py [--size-mib 1024] [--repeat 3] [--data-dir bench/.data]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from common import workdir
from psycopg import sql

MIB = 1024 * 1024
TARGET_VS_CAT = 0.5
TARGET_RSS_MIB = 64.0
TOKEN = "bench-logs-admin-token-0123456789"
PERIOD = "2026-11"
DOMAIN = "open"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the compute log (MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="downloads and cats (median kept)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where PostgreSQL, Dagster and the log live (default: a temporary directory, removed after)",
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.repeat < 1:
        parser.error("--size-mib and --repeat must be at least 1")
    return args


def _database(base_url: str, name: str) -> str:
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return base_url.replace("/postgres?", f"/{name}?", 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _real_run(work: Path, base_url: str) -> tuple[Any, str]:
    """A real finops_batch run; returns the instance and the run id."""
    from dagster import DagsterInstance

    from finops_pipeline.demo_data import write_demo_landing
    from finops_pipeline.warehouse.schema import ensure_schema

    warehouse = _database(base_url, "bench_logs_wh")
    ensure_schema(warehouse)
    landing = work / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    write_demo_landing(str(landing), months=1, now=datetime(2026, 11, 15, tzinfo=UTC), scale=0.1)
    os.environ["FINOPS_DATABASE_URL"] = warehouse
    os.environ["FINOPS_LANDING_URI"] = str(landing)
    storage = _database(base_url, "bench_logs_dagster").replace("postgresql://", "postgresql+psycopg2://", 1)
    home = work / "dagster_home"
    home.mkdir(exist_ok=True)
    logs_dir = work / "compute_logs"
    shutil.rmtree(logs_dir, ignore_errors=True)
    (home / "dagster.yaml").write_text(
        "storage:\n  postgres:\n"
        f'    postgres_url: "{storage}"\n'
        "compute_logs:\n  module: dagster.core.storage.local_compute_log_manager\n"
        "  class: LocalComputeLogManager\n"
        f'  config:\n    base_dir: "{logs_dir}"\n'
        "telemetry:\n  enabled: false\n"
    )
    os.environ["DAGSTER_HOME"] = str(home)
    instance = DagsterInstance.from_config(str(home))
    from finops_pipeline.contract import PLAN_STEP, TRIGGER_MANUAL, batch_tags
    from finops_pipeline.definitions import build_definitions

    result = (
        build_definitions()
        .resolve_job_def("finops_batch")
        .execute_in_process(
            instance=instance,
            run_config={
                "ops": {PLAN_STEP: {"config": {"periods": [PERIOD], "domains": [DOMAIN]}}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
            tags=batch_tags(trigger=TRIGGER_MANUAL, periods=[PERIOD], domains=[DOMAIN]),
            raise_on_error=False,
        )
    )
    if not result.success:
        raise SystemExit(f"the batch run {result.run_id} failed; see its logs")
    return instance, result.run_id


def _grow_stdout(instance: Any, run_id: str, size: int) -> Path:
    """Append batch-like lines to the run's stdout capture until it holds `size` bytes."""
    from finops_admin_plugin.dagster_reader import DagsterReader

    source = DagsterReader(instance)
    (capture,) = source.captures(run_id)
    log_key = source.log_key(run_id, capture)
    manager = instance.compute_log_manager
    metadata = manager.get_log_metadata(log_key)
    path = Path(metadata.stdout_location)
    line = (
        "finops.load domain={d} period=2026-{m:02d} rows_read={n} inserted={i} deleted={n} "
        "rejected={r} seconds={s:.3f} file=s3://landing/{d}/2026-{m:02d}/export-{n:06d}.csv.gz\n"
    )
    block = "".join(
        line.format(
            d=("open", "private", "public", "native")[n % 4], m=n % 12 + 1, n=n, i=n * 7, r=n % 13, s=n / 1e3
        )
        for n in range(20_000)
    )
    # The local compute log manager's capture is a plain file: appended to directly.
    with path.open("a", encoding="utf-8") as stream:
        written = path.stat().st_size
        while written < size:
            # Whole blocks, then a last line cut to fit: the file ends with a newline at `size` bytes.
            piece = block if written + len(block) <= size else block[: size - written - 1] + "\n"
            stream.write(piece)
            written += len(piece.encode())
    return path


def _evict(path: Path) -> None:
    """Drop this file (only) from the page cache, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # only clean pages can be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmRSS"))
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Verifier:
    """Keeps the first `skip` bytes of a body (preamble and header) and hashes the rest."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.head = bytearray()
        self.digest = hashlib.sha256()

    def __call__(self, data: memoryview) -> None:
        if len(self.head) < self.skip:
            take = min(self.skip - len(self.head), len(data))
            self.head += data[:take]
            data = data[take:]
        self.digest.update(data)


def _download(port: int, path: str, sink: Any = None) -> tuple[int, float, int]:
    """(body bytes, seconds, status); reads 1 MiB at a time and drops the data (or hands it to `sink`)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    total = 0
    while True:
        n = response.readinto(view)
        if not n:
            break
        total += n
        if sink is not None:
            sink(view[:n])
    seconds = time.perf_counter() - started
    conn.close()
    return total, seconds, response.status


# A bare TCP sender in its own process: the file in 1 MiB blocks with sendall, no HTTP, no framework.
_TCP_SENDER = """
import socket, sys
path, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with socket.create_server(("127.0.0.1", port)) as server:
    print("ready", flush=True)
    for _ in range(count):
        conn, _ = server.accept()
        with conn, open(path, "rb") as file:
            while block := file.read(1 << 20):
                conn.sendall(block)
"""


def _tcp_baseline(path: Path, repeat: int) -> list[float]:
    """Seconds to move the file over loopback TCP between two processes, from the page cache."""
    port = _free_port()
    sender = subprocess.Popen(
        [sys.executable, "-c", _TCP_SENDER, str(path), str(port), str(repeat)], stdout=subprocess.PIPE
    )
    try:
        assert sender.stdout is not None and sender.stdout.readline().strip() == b"ready"
        buffer = memoryview(bytearray(MIB))
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", port)) as conn:
                while conn.recv_into(buffer):
                    pass
            seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        sender.wait(timeout=30)


def _cat(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _start_api(work: Path, base_url: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        FINOPS_DATABASE_URL=_database(base_url, "bench_logs_admin"),
        FINOPS_AUTH_MODE="static",
        FINOPS_STATIC_TOKENS=json.dumps(
            [{"token": TOKEN, "subject": "component:default/bench", "role": "admin"}]
        ),
    )
    finops = Path(sys.executable).with_name("finops")
    command = [str(finops)] if finops.exists() else [sys.executable, "-m", "finops_cli"]
    log = open(work / "api.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"finops serve exited ({process.returncode}); see {work / 'api.log'}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/finops/admin/healthz")
            if conn.getresponse().status in (200, 503):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("finops serve did not answer within 60 s")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    size = args.size_mib * MIB
    print(f"Log download benchmark: {size / MIB:,.0f} MiB stdout capture, {os.cpu_count()} CPUs", flush=True)
    warnings.filterwarnings("ignore")
    with workdir(args.data_dir, "finops-bench-logs-") as work:
        import pgserver

        server = pgserver.get_server(work / "pg", cleanup_mode="stop")
        base_url = server.get_uri()
        instance, run_id = _real_run(work, base_url)
        started = time.perf_counter()
        path = _grow_stdout(instance, run_id, size)
        print(
            f"run {run_id}: stdout capture {path.stat().st_size:,} bytes, written in "
            f"{time.perf_counter() - started:.1f}s ({path})",
            flush=True,
        )
        instance.dispose()

        port = _free_port()
        api = _start_api(work, base_url, port)
        try:
            url = f"/finops/admin/runs/{run_id}/logs?stream=stdout"
            # Warm-up: imports, Dagster instance, database connections; not measured.
            _, _, status = _download(port, f"/finops/admin/runs/{run_id}/logs?stream=events")
            if status != 200:
                raise SystemExit(f"warm-up download answered {status}; see {work / 'api.log'}")
            rss_before = _status_kib(api.pid, "VmRSS")
            try:
                Path(f"/proc/{api.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
                hwm_reset = True
            except OSError:
                hwm_reset = False
            timings: dict[str, list[float]] = {
                key: [] for key in ("cat_disk", "http_disk", "cat_cache", "http_cache")
            }
            body = 0
            with RssSampler(api.pid) as sampler:
                for _ in range(args.repeat):
                    _evict(path)
                    timings["cat_disk"].append(_cat(path))
                    timings["cat_cache"].append(_cat(path))
                    _evict(path)
                    for key in ("http_disk", "http_cache"):
                        body, seconds, status = _download(port, url)
                        if status != 200:
                            raise SystemExit(f"download answered {status}")
                        timings[key].append(seconds)
                timings["tcp_cache"] = _tcp_baseline(path, args.repeat)
                verifier = Verifier(body - path.stat().st_size)
                checked, _, _ = _download(port, url, verifier)
            hwm = _status_kib(api.pid, "VmHWM") if hwm_reset else 0
        finally:
            api.terminate()
            api.wait(timeout=30)
            server.cleanup()

        # The body is a short preamble and the section header, then the file byte for byte.
        expected = hashlib.sha256()
        with path.open("rb") as file:
            while chunk := file.read(MIB):
                expected.update(chunk)
        header = bytes(verifier.head).decode("utf-8", errors="replace")
        identical = (
            checked == body
            and verifier.digest.digest() == expected.digest()
            and header.endswith(" | stdout (file key " + path.stem + ") =====\n")
        )
        file_size = path.stat().st_size
        rates = {key: file_size / statistics.median(values) / MIB for key, values in timings.items()}
        growth_mib = max(hwm - rss_before if hwm_reset else 0, sampler.peak_kib - rss_before) / 1024
        labels = {
            "cat_disk": "cat > /dev/null, from disk",
            "http_disk": "GET .../logs?stream=stdout over HTTP, from disk",
            "cat_cache": "cat > /dev/null, from the page cache",
            "http_cache": "GET .../logs?stream=stdout over HTTP, from the page cache",
            "tcp_cache": "bare TCP on loopback (sendall/recv_into, no HTTP), from the page cache",
        }
        print()
        print("| reader | median s (min-max) | MiB/s |")
        print("|---|---:|---:|")
        for key, label in labels.items():
            values = timings[key]
            print(
                f"| {label} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) "
                f"| {rates[key]:,.0f} |"
            )
        print()
        print(
            f"response body: {body:,} bytes = {verifier.skip} bytes of preamble and header + the file; "
            f"content {'identical to the file (sha256)' if identical else 'DIFFERENT from the file'}"
        )
        print(
            f"API process RSS: {rss_before / 1024:.1f} MiB before, "
            f"peak {max(hwm, sampler.peak_kib) / 1024:.1f} MiB "
            f"(VmHWM {'reset' if hwm_reset else 'not resettable'}; VmRSS sampled every 5 ms)"
        )
        ratio = rates["http_disk"] / rates["cat_disk"]
        ok_rate = ratio >= TARGET_VS_CAT
        ok_rss = growth_mib < TARGET_RSS_MIB
        print(
            f"- download / cat, from disk = {ratio:.2f}x (target >= {TARGET_VS_CAT}x): "
            f"{'met' if ok_rate else 'MISSED'}"
        )
        print(
            f"- download / cat, from the page cache = "
            f"{rates['http_cache'] / rates['cat_cache']:.2f}x (no target)"
        )
        print(
            f"- API peak RSS growth = {growth_mib:.1f} MiB (target < {TARGET_RSS_MIB:.0f} MiB): "
            f"{'met' if ok_rss else 'MISSED'}"
        )
        return 0 if ok_rate and ok_rss and identical else 1


if __name__ == "__main__":
    sys.exit(main())
