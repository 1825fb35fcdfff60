"""A slow or hung Backstage cannot stall the API: the JWKS and userinfo replayed as hostile servers.

A small TCP server on 127.0.0.1 plays the Backstage auth backend, answering normally, one byte
at a time (trickle), or never (hang). The API runs in a real uvicorn server (the `finops
serve` configuration) with a short identity deadline; callers whose key and groups are cached,
and `/healthz`, must be answered at once whatever the identity endpoints do.
"""

from __future__ import annotations

import http.client
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from finops_admin_plugin.settings import API_BASE_PATH
from tests.admin.auth.test_auth import ADMIN_GROUP, SigningKey, sign
from tests.support import free_port, stop_group

BIN = Path(sys.executable).parent
IDENTITY_TIMEOUT = 4.0
FAILURE_CACHE = 10.0
# "At once": under a second, or, on a machine so loaded that the same burst of cached callers
# with a healthy Backstage already takes longer, three times that (see `quick_limit`).
QUICK = 1.0
TRICKLE_INTERVAL = 0.25


@dataclass
class Identity:
    """What the hostile Backstage publishes, how it answers, and what it was asked."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    ent: dict[str, list[str]] = field(default_factory=dict)
    mode: dict[str, str] = field(default_factory=dict)  # "jwks" / "userinfo" -> ok | trickle | hang
    delay: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    active: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)  # most calls under way at once
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, *keys: SigningKey) -> None:
        with self.lock:
            self.keys, self.ent, self.mode, self.delay = list(keys), {}, {}, 0.0
            self.requests, self.active, self.peak = Counter(), Counter(), Counter()

    def answer(self, which: str | None, headers: dict[str, str]) -> tuple[int, bytes]:
        if which == "jwks":
            return 200, json.dumps({"keys": [k.jwk() for k in self.keys]}).encode()
        if which == "userinfo":
            token = headers.get("authorization", "").removeprefix("Bearer ")
            sub = jwt.decode(token, options={"verify_signature": False})["sub"]
            if sub not in self.ent:
                return 404, b'{"error": {"name": "NotFoundError", "message": "no user info"}}'
            return 200, json.dumps({"claims": {"sub": sub, "ent": self.ent[sub]}}).encode()
        return 404, b"{}"


class _Handler(socketserver.StreamRequestHandler):
    server: _IdentityServer

    def handle(self) -> None:
        state = self.server.state
        line = self.rfile.readline(65537)
        if not line:
            return
        headers: dict[str, str] = {}
        while (header := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        path = line.split()[1].decode()
        which = "jwks" if path.endswith("/jwks.json") else "userinfo" if path.endswith("/userinfo") else None
        name = which or "other"
        with state.lock:
            # The counters of this test: a call of an earlier test, still trickling or hung when
            # `reset` replaced them, must not make the new ones go below zero when it ends.
            active = state.active
            state.requests[name] += 1
            active[name] += 1
            state.peak[name] = max(state.peak[name], active[name])
            mode = state.mode.get(which or "", "ok")
            status, body = state.answer(which, headers)
        try:
            self._respond(state, mode, status, body)
        finally:
            with state.lock:
                active[name] -= 1

    def _respond(self, state: Identity, mode: str, status: int, body: bytes) -> None:
        raw = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n"
        ).encode() + body
        try:
            if mode == "hang":
                state.stop.wait()
            elif mode == "trickle":  # status line, headers and body, one byte at a time
                for byte in raw:
                    if state.stop.wait(TRICKLE_INTERVAL):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            else:
                if state.delay:
                    state.stop.wait(state.delay)
                self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the API gave up: what we want
            pass


class _IdentityServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: Identity) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@pytest.fixture(scope="module")
def identity() -> Iterator[Identity]:
    state = Identity()
    server = _IdentityServer(state)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def key(identity: Identity) -> SigningKey:
    signing = SigningKey.new()
    identity.reset(signing)
    return signing


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    port: int
    issuer: str

    def get(self, path: str, token: str | None = None) -> tuple[int, float, Answer]:
        # http.client, not httpx: a client per request would build an SSL context each time,
        # and the test's CPU use would show up as API latency (both share this process).
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        # Timed from the open connection: on a loaded machine a connection can wait in the
        # kernel's accept queue (a dropped SYN costs a 1 s retransmit), which says nothing of
        # how the API answers.
        conn.connect()
        started = time.monotonic()
        try:
            conn.request("GET", f"{API_BASE_PATH}{path}", headers=headers)
            response = conn.getresponse()
            answer = Answer(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
            )
        finally:
            conn.close()
        return answer.status_code, time.monotonic() - started, answer


@pytest.fixture
def api(identity: Identity, tmp_path: Path) -> Iterator[Api]:
    """`finops serve` in a process of its own: the test's own threads share no interpreter
    lock with it, so what is measured is the API's latency, not the test's."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FINOPS_", "DAGSTER_"))}
    env.update(
        {
            "FINOPS_AUTH_MODE": "backstage",
            "FINOPS_BACKSTAGE_URL": identity.url,
            "FINOPS_IDENTITY_TIMEOUT_SECONDS": str(IDENTITY_TIMEOUT),
            "FINOPS_IDENTITY_FAILURE_CACHE_SECONDS": str(FAILURE_CACHE),
            # Every unknown key id may refetch: the worst case for a flood of random ones.
            "FINOPS_JWKS_MIN_REFETCH_SECONDS": "0",
        }
    )
    log_path = tmp_path / "api.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(BIN / "finops"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Api(port, f"{identity.url}/api/auth")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            served.get("/healthz")  # 503 without a database: up all the same
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


Result = tuple[int, float, Answer]


def run_all(
    calls: dict[str, list[Callable[[], Result]]], *, head_start: float = 0.3
) -> dict[str, list[Result]]:
    """Run every call at once, the "first" group `head_start` seconds before the others (so a
    fetch is under way when they arrive); their results by group."""
    futures: dict[str, list[Future[Result]]] = {}
    total = sum(len(group) for group in calls.values())
    with ThreadPoolExecutor(total) as pool:
        futures["first"] = [pool.submit(call) for call in calls.get("first", [])]
        time.sleep(head_start)
        for name, group in calls.items():
            if name != "first":
                futures[name] = [pool.submit(call) for call in group]
        return {name: [f.result() for f in group] for name, group in futures.items()}


def quick_limit(api: Api, cached: str | None) -> float:
    """How long "at once" may take on this machine now: as many requests from cached callers
    (or to /healthz alone, before any key is cached), with a healthy Backstage, set the pace."""
    calls: dict[str, list[Callable[[], Result]]] = {"healthz": [lambda: api.get("/healthz")] * 3}
    if cached is not None:
        calls["cached"] = [lambda: api.get("/me", cached)] * 40
    else:
        calls["healthz"] *= 7
    results = run_all(calls, head_start=0)
    baseline = slowest([result for group in results.values() for result in group])
    print(f"baseline (healthy Backstage, {sum(map(len, calls.values()))} requests): slowest {baseline:.3f} s")
    # At most half the identity deadline: a caller that waited for the fetch still fails.
    return min(max(QUICK, 3 * baseline), IDENTITY_TIMEOUT / 2)


def slowest(results: list[Result]) -> float:
    return max(took for _, took, _ in results)


def assert_fast_503s(results: list[Result], within: float) -> None:
    for status, took, response in results:
        assert status == 503, response.text
        body = response.json()
        assert body["error"]["name"] == "ServiceUnavailableError"
        assert int(response.headers["retry-after"]) >= 1
        assert took < within, took


# --- JWKS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_slow_jwks_stalls_neither_cached_callers_nor_healthz(
    identity: Identity, key: SigningKey, api: Api, mode: str
) -> None:
    cached = sign(key, issuer=api.issuer)
    assert api.get("/me", cached)[0] == 200
    assert identity.requests["jwks"] == 1
    quick = quick_limit(api, cached)
    identity.mode["jwks"] = mode

    forged = [
        sign(SigningKey(kid=uuid.uuid4().hex, private=key.private), issuer=api.issuer) for _ in range(21)
    ]

    def random_kid(token: str) -> Callable[[], Result]:
        return lambda: api.get("/me", token)

    results = run_all(
        {
            "first": [random_kid(forged[0])],
            "random": [random_kid(t) for t in forged[1:11]],
            "cached": [lambda: api.get("/me", cached)] * 20,
            "healthz": [lambda: api.get("/healthz")] * 3,
        }
    )
    assert [status for status, _, _ in results["cached"]] == [200] * 20
    assert slowest(results["cached"]) < quick, slowest(results["cached"])
    assert slowest(results["healthz"]) < quick, slowest(results["healthz"])
    # The one fetch ends at its deadline, however the JWKS trickles; the others did not wait.
    assert_fast_503s(results["first"], within=IDENTITY_TIMEOUT + 1.0)
    assert_fast_503s(results["random"], within=quick)
    assert identity.requests["jwks"] == 2  # the warm-up, and one fetch for 11 unknown key ids
    assert identity.peak["jwks"] == 1
    # The failure is remembered: more unknown key ids are answered at once, Backstage not asked.
    again = [random_kid(t)() for t in forged[11:]]
    assert_fast_503s(again, within=quick)
    assert identity.requests["jwks"] == 2
    assert api.get("/me", cached)[0] == 200
    print(
        f"JWKS {mode}: 20 cached callers answered within {slowest(results['cached']):.3f} s, "
        f"/healthz within {slowest(results['healthz']):.3f} s; the fetch gave up after "
        f"{slowest(results['first']):.2f} s"
    )


def test_hung_jwks_on_a_cold_cache_is_bounded(identity: Identity, key: SigningKey, api: Api) -> None:
    quick = quick_limit(api, None)
    identity.mode["jwks"] = "hang"
    token = sign(key, issuer=api.issuer)
    results = run_all(
        {
            "first": [lambda: api.get("/me", token)],
            "others": [lambda: api.get("/me", token)] * 15,
            "healthz": [lambda: api.get("/healthz")] * 5,
        },
        head_start=0.1,
    )
    assert_fast_503s(results["first"] + results["others"], within=IDENTITY_TIMEOUT + 1.0)
    assert slowest(results["healthz"]) < quick
    assert identity.requests["jwks"] == 1


# --- userinfo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["trickle", "hang"])
def test_slow_userinfo_stalls_neither_cached_callers_nor_healthz(
    identity: Identity, key: SigningKey, api: Api, mode: str
) -> None:
    cached = sign(key, issuer=api.issuer)  # groups in its `ent` claim
    assert api.get("/me", cached)[0] == 200
    quick = quick_limit(api, cached)
    identity.mode["userinfo"] = mode
    new_tokens = [sign(key, issuer=api.issuer, sub=f"user:default/u{i}", omit_ent=True) for i in range(20)]

    def first_request(token: str) -> Callable[[], Result]:
        return lambda: api.get("/me", token)

    results = run_all(
        {
            "first": [first_request(t) for t in new_tokens[:4]],
            "new": [first_request(t) for t in new_tokens[4:]],
            "cached": [lambda: api.get("/me", cached)] * 20,
            "healthz": [lambda: api.get("/healthz")] * 3,
        }
    )
    assert [status for status, _, _ in results["cached"]] == [200] * 20
    assert slowest(results["cached"]) < quick, slowest(results["cached"])
    assert slowest(results["healthz"]) < quick, slowest(results["healthz"])
    assert_fast_503s(results["first"], within=IDENTITY_TIMEOUT + 1.0)
    # At most 4 calls at once (FINOPS_USERINFO_MAX_CONCURRENT); the other new tokens wait for none.
    assert_fast_503s(results["new"], within=quick)
    assert identity.peak["userinfo"] <= 4
    calls = identity.requests["userinfo"]
    # Each failed token is remembered briefly: asked again, it is answered at once.
    assert_fast_503s([api.get("/me", t) for t in new_tokens[:4]], within=quick)
    assert identity.requests["userinfo"] == calls
    print(
        f"userinfo {mode}: 20 new tokens answered within {slowest(results['first'] + results['new']):.2f} s "
        f"({identity.requests['userinfo']} calls), cached callers within {slowest(results['cached']):.3f} s, "
        f"/healthz within {slowest(results['healthz']):.3f} s"
    )


def test_parallel_requests_with_a_new_token_make_one_userinfo_call(
    identity: Identity, key: SigningKey, api: Api
) -> None:
    assert api.get("/me", sign(key, issuer=api.issuer))[0] == 200  # keys cached
    identity.ent = {"user:default/alice": ["user:default/alice", ADMIN_GROUP]}
    identity.delay = 0.5  # a slow but working Backstage
    token = sign(key, issuer=api.issuer, omit_ent=True)
    results = run_all({"first": [lambda: api.get("/me", token)] * 6}, head_start=0)
    for status, _, response in results["first"]:
        assert status == 200, response.text
        assert response.json()["role"] == "admin"
    assert identity.requests["userinfo"] == 1
    assert api.get("/me", token)[0] == 200
    assert identity.requests["userinfo"] == 1
