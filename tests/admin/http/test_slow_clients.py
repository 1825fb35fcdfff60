"""`finops serve` against slow and idle clients: head and body deadlines, the connection cap.

The real server runs as a process (`finops serve`, static tokens, no database: none of these
requests needs one) with an open-files limit of 200, short deadlines, and the default
connection cap, which the server lowers to fit that limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, stop_group

BIN = Path(sys.executable).parent
BASE = "/finops/admin"
TOKEN = "svc-admin-token-0123456789abcdef"
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
OPEN_FILES = 200


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def get(self, path: str = "/me", *, timeout: float = 10.0) -> tuple[int, float]:
        """One normal request on a new connection: its status and how long it took."""
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(
                f"GET {BASE}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                f"Connection: close\r\n\r\n".encode()
            )
            status, _ = parse(read_all(sock))
        return status, time.monotonic() - started


def read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def parse(raw: bytes) -> tuple[int, dict[str, Any] | None]:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        return 0, None
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if body else None


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("slow_clients")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FINOPS_", "DAGSTER_"))}
    env.update(
        {
            "FINOPS_AUTH_MODE": "static",
            "FINOPS_STATIC_TOKENS": json.dumps(
                [{"token": TOKEN, "subject": "component:default/exporter", "role": "admin"}]
            ),
            "FINOPS_API_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
            "FINOPS_API_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        }
    )
    log_path = root / "api.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(BIN / "finops"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limit_open_files,
        )
    served = Server(port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if served.get(timeout=2)[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        stop_group(process)
        pytest.fail("finops serve did not come up:\n" + log_path.read_text()[-3000:])
    try:
        yield served
    finally:
        stop_group(process)


def test_connection_cap_fits_the_open_files_limit(server: Server) -> None:
    log = server.log.read_text()
    assert "does not fit the open-files limit (200): at most 100 connections" in log, log[-2000:]


def test_slowloris_heads_are_cut_at_the_head_timeout(server: Server) -> None:
    """Connections trickling a request head one byte at a time get a 408 after the head timeout;
    normal requests are served meanwhile."""
    count = 60
    ended: list[float] = []
    answers: list[tuple[int, dict[str, Any] | None]] = []
    lock = threading.Lock()
    head = f"GET {BASE}/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {'a' * 200}\r\n\r\n".encode()

    def slow() -> None:
        with server.connect() as sock:
            started = time.monotonic()
            try:
                for byte in head:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = parse(read_all(sock))
            with lock:
                ended.append(time.monotonic() - started)
                answers.append(answer)

    threads = [threading.Thread(target=slow) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    normal = [server.get() for _ in range(10)]
    for thread in threads:
        thread.join(30)
    assert all(status == 200 for status, _ in normal), normal
    assert max(took for _, took in normal) < 1.0, normal
    assert len(ended) == count
    assert max(ended) < HEAD_TIMEOUT + 1.0, sorted(ended)[-5:]
    for status, body in answers:
        assert status == 408, answers[:3]
        assert body is not None and body["error"]["name"] == "RequestTimeoutError"
        assert body["response"] == {"statusCode": 408}
        assert "request line and headers" in body["error"]["message"]
    print(f"{count} trickling heads: closed after {min(ended):.2f}-{max(ended):.2f} s; "
          f"normal requests {max(took for _, took in normal):.3f} s at most")  # fmt: skip


def test_silent_connections_cannot_take_every_file(server: Server) -> None:
    """180 connections that send nothing, with 200 open files allowed: normal requests are
    still served (the oldest silent connections make room), and the silent ones are closed
    without an answer after the head timeout."""
    socks = []
    try:
        for _ in range(180):
            socks.append(server.connect())
        normal = [server.get() for _ in range(30)]
        assert [status for status, _ in normal] == [200] * 30, normal
        assert max(took for _, took in normal) < 1.0
        time.sleep(HEAD_TIMEOUT + 0.5)
        closed = 0
        for sock in socks:
            sock.settimeout(2)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except (ConnectionResetError, TimeoutError):
                pass
        assert closed == len(socks), f"{closed} of {len(socks)} silent connections closed"
    finally:
        for sock in socks:
            sock.close()
    assert server.get()[0] == 200


def test_short_body_gets_408_within_the_body_timeout(server: Server) -> None:
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(
            f"POST {BASE}/runs/reprocess HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{".encode()
        )
        status, body = parse(read_all(sock))
        took = time.monotonic() - started
    assert status == 408
    assert body is not None
    assert body["error"]["name"] == "RequestTimeoutError"
    assert "request body" in body["error"]["message"]
    assert body["request"] == {"method": "POST", "url": f"{BASE}/runs/reprocess"}
    assert body["response"] == {"statusCode": 408}
    assert BODY_TIMEOUT - 0.2 < took < BODY_TIMEOUT + 1.0, took
    # The server is fine afterwards.
    assert server.get()[0] == 200


def test_a_kept_alive_connection_gets_the_head_timeout_too(server: Server) -> None:
    with server.connect() as sock:
        request = f"GET {BASE}/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        sock.sendall(request.encode())
        first = b""
        while b"}" not in first:
            first += sock.recv(65536)
        assert parse(first)[0] == 200
        started = time.monotonic()
        sock.sendall(b"GET " + BASE.encode())  # then nothing more
        status, body = parse(read_all(sock))
        took = time.monotonic() - started
    assert status == 408 and body is not None and body["error"]["name"] == "RequestTimeoutError"
    assert took < HEAD_TIMEOUT + 1.0


def test_requests_in_time_are_unaffected(server: Server) -> None:
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: server.get(), range(100)))
    assert all(status == 200 for status, _ in results)
