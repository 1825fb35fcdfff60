"""Access control of the admin API against a real (local) Backstage identity endpoint.

A small HTTP server on 127.0.0.1 plays the Backstage auth backend: it publishes a
JWKS and answers userinfo, and counts what it is asked. Tokens are real ES256
JWTs signed with keys generated here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm
from pydantic import ValidationError

from finops_admin_plugin.api.deps import AdminDep, CallerDep, ReaderDep
from finops_admin_plugin.app import create_app
from finops_admin_plugin.auth import (
    AuthConfigError,
    DevModeBindError,
    check_dev_mode_bind,
    token_fingerprint,
)
from finops_admin_plugin.settings import API_BASE_PATH, AdminSettings
from tests.support import free_port

ADMIN_GROUP = "group:default/finops-admin"
USER_GROUP = "group:default/finops-user"
ADMIN_TOKEN = "svc-admin-token-0123456789abcdef"
READER_TOKEN = "svc-reader-token-0123456789abcdef"
STATIC_TOKENS = json.dumps(
    [
        {"token": ADMIN_TOKEN, "subject": "component:default/finops-exporter", "role": "admin"},
        {"token": READER_TOKEN, "subject": "component:default/finops-dashboard", "role": "user"},
    ]
)


# --- a Backstage auth backend stand-in ------------------------------------------------------------


@dataclass
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex, private=ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        data = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class IdentityServer:
    """What the fake Backstage publishes and how often it was asked."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    userinfo_up: bool = True
    userinfo_ent: dict[str, list[str]] = field(default_factory=dict)
    jwks_requests: int = 0
    userinfo_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, *keys: SigningKey) -> None:
        with self.lock:
            self.keys = list(keys)
            self.userinfo_up = True
            self.userinfo_ent = {}
            self.jwks_requests = 0
            self.userinfo_requests = 0


def _handler(state: IdentityServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/api/auth/.well-known/jwks.json":
                with state.lock:
                    state.jwks_requests += 1
                    keys = [k.jwk() for k in state.keys]
                self._json(200, {"keys": keys})
            elif self.path == "/api/auth/v1/userinfo":
                with state.lock:
                    state.userinfo_requests += 1
                    up = state.userinfo_up
                if not up:
                    self._json(503, {"error": {"name": "ServiceUnavailableError", "message": "down"}})
                    return
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ")
                try:
                    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
                except jwt.PyJWTError:
                    self._json(401, {"error": {"name": "AuthenticationError", "message": "bad token"}})
                    return
                if sub not in state.userinfo_ent:
                    self._json(404, {"error": {"name": "NotFoundError", "message": "User info not found"}})
                    return
                self._json(200, {"claims": {"sub": sub, "ent": state.userinfo_ent[sub]}})
            else:
                self._json(404, {})

    return Handler


@pytest.fixture(scope="module")
def identity_server() -> Iterator[IdentityServer]:
    state = IdentityServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.new()


@pytest.fixture
def backstage(identity_server: IdentityServer, key: SigningKey) -> IdentityServer:
    identity_server.reset(key)
    return identity_server


def sign(
    key: SigningKey,
    *,
    issuer: str,
    sub: str = "user:default/alice",
    ent: list[str] | None = None,
    omit_ent: bool = False,
    overrides: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    headers: dict[str, Any] | None = None,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": "backstage",
        "iat": now,
        "exp": now + 3600,
        "ent": ent if ent is not None else [sub, ADMIN_GROUP],
        "uip": "proof",
    }
    if omit_ent:
        del payload["ent"]
    payload.update(overrides or {})
    for claim in drop:
        payload.pop(claim, None)
    header = {"kid": key.kid, "typ": "vnd.backstage.user", **(headers or {})}
    return jwt.encode(payload, key.private, algorithm="ES256", headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A JWT built by hand, for algorithms PyJWT rightly refuses to produce (none, HS256 + PEM)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# --- apps -----------------------------------------------------------------------------------------

probe = APIRouter(prefix=f"{API_BASE_PATH}/_probe")


@probe.get("/read")
def _read(caller: ReaderDep) -> dict[str, Any]:
    return {"subject": caller.subject, "role": caller.role}


@probe.get("/admin")
def _admin(caller: AdminDep) -> dict[str, Any]:
    return {"subject": caller.subject, "role": caller.role}


@probe.get("/who")
def _who(caller: CallerDep) -> dict[str, Any]:
    return {"subject": caller.subject, "role": caller.role, "groups": list(caller.groups), "via": caller.via}


def settings_from(**env: Any) -> AdminSettings:
    """Settings from variables written as in the environment (strings, JSON)."""
    return AdminSettings(**env)


def make_app(**env: Any) -> FastAPI:
    app = create_app(settings_from(**env))
    app.include_router(probe)
    return app


def backstage_client(server: IdentityServer, **env: Any) -> TestClient:
    return TestClient(make_app(FINOPS_AUTH_MODE="backstage", FINOPS_BACKSTAGE_URL=server.url, **env))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_backstage_error(response: Any, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["name"] == name
    assert body["error"]["message"]
    assert body["response"] == {"statusCode": status}
    assert body["request"]["method"] == response.request.method
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return body


# --- roles ----------------------------------------------------------------------------------------


def test_backstage_admin_may_do_everything(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage)
    token = sign(key, issuer=f"{backstage.url}/api/auth")
    for path in ("read", "admin"):
        response = client.get(f"{API_BASE_PATH}/_probe/{path}", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json() == {"subject": "user:default/alice", "role": "admin"}
    me = client.get(f"{API_BASE_PATH}/me", headers=bearer(token)).json()
    assert me["role"] == "admin" and me["via"] == "backstage" and me["devMode"] is False
    assert me["access"] == {"read": True, "logs": True, "reprocess": True}
    assert backstage.jwks_requests == 1  # keys cached across requests
    assert backstage.userinfo_requests == 0  # `ent` present: no userinfo call


def test_user_gets_nothing_by_default(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage)
    token = sign(key, issuer=f"{backstage.url}/api/auth", sub="user:default/bob", ent=[USER_GROUP])
    for path in ("read", "admin"):
        body = assert_backstage_error(
            client.get(f"{API_BASE_PATH}/_probe/{path}", headers=bearer(token)), 403, "NotAllowedError"
        )
        assert "user:default/bob" in body["error"]["message"]
    me = client.get(f"{API_BASE_PATH}/me", headers=bearer(token)).json()
    assert me["role"] == "user" and me["access"] == {"read": False, "logs": False, "reprocess": False}


def test_user_reads_only_when_configured(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage, FINOPS_USER_ACCESS="read")
    token = sign(key, issuer=f"{backstage.url}/api/auth", sub="user:default/bob", ent=[USER_GROUP])
    read = client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(token))
    assert read.status_code == 200 and read.json()["role"] == "user"
    body = assert_backstage_error(
        client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(token)), 403, "NotAllowedError"
    )
    assert "FINOPS_ADMIN_GROUPS" in body["error"]["message"]


def test_caller_in_no_group_is_denied(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage, FINOPS_USER_ACCESS="read")
    token = sign(key, issuer=f"{backstage.url}/api/auth", ent=["user:default/alice", "group:default/devs"])
    assert client.get(f"{API_BASE_PATH}/_probe/who", headers=bearer(token)).json()["role"] is None
    for path in ("read", "admin"):
        assert_backstage_error(
            client.get(f"{API_BASE_PATH}/_probe/{path}", headers=bearer(token)), 403, "NotAllowedError"
        )


@pytest.mark.parametrize(
    "group", ["group:default/finops-admin-old", "group:other/finops-admin", "Group:Default/Finops-Admin"]
)
def test_near_miss_groups_grant_nothing_unless_configured(
    backstage: IdentityServer, key: SigningKey, group: str
) -> None:
    token = sign(key, issuer=f"{backstage.url}/api/auth", ent=["user:default/alice", group])
    default = backstage_client(backstage, FINOPS_USER_ACCESS="read")
    assert_backstage_error(
        default.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(token)), 403, "NotAllowedError"
    )
    configured = backstage_client(backstage, FINOPS_ADMIN_GROUPS=f"{ADMIN_GROUP}, {group}")
    assert configured.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(token)).status_code == 200


def test_group_variables_are_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_ADMIN_GROUPS", "group:default/a, group:ops/b")
    monkeypatch.setenv("FINOPS_USER_GROUPS", "")
    monkeypatch.setenv("FINOPS_JWT_ALGORITHMS", "ES256,RS256")
    settings = AdminSettings()
    assert settings.admin_groups == ["group:default/a", "group:ops/b"]
    assert settings.user_groups == []
    assert settings.jwt_algorithms == ["ES256", "RS256"]


# --- 401 for every kind of bad credential ---------------------------------------------------------


def _bad_credentials(url: str, key: SigningKey, stranger: SigningKey) -> dict[str, dict[str, str]]:
    issuer = f"{url}/api/auth"
    now = int(time.time())
    claims = {"iss": issuer, "sub": "user:default/alice", "aud": "backstage", "iat": now, "exp": now + 600}
    claims_with_ent = {**claims, "ent": [ADMIN_GROUP]}
    return {
        "no header": {},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "empty bearer": {"Authorization": "Bearer "},
        "bare scheme": {"Authorization": "Bearer"},
        "not a jwt": bearer("not-a-jwt"),
        "alg none": bearer(handmade({"alg": "none", "kid": key.kid}, claims_with_ent, None)),
        "hs256 with public key": bearer(
            handmade(
                {"alg": "HS256", "kid": key.kid, "typ": "vnd.backstage.user"},
                claims_with_ent,
                key.public_pem(),
            )
        ),
        "expired": bearer(sign(key, issuer=issuer, overrides={"iat": now - 7200, "exp": now - 3600})),
        "iat in the future": bearer(
            sign(key, issuer=issuer, overrides={"iat": now + 3600, "exp": now + 7200})
        ),
        "nbf in the future": bearer(sign(key, issuer=issuer, overrides={"nbf": now + 3600})),
        "wrong issuer": bearer(sign(key, issuer="http://evil.example/api/auth")),
        "wrong audience": bearer(sign(key, issuer=issuer, overrides={"aud": "other"})),
        "wrong typ": bearer(sign(key, issuer=issuer, headers={"typ": "vnd.backstage.limited-user"})),
        "another key set, same kid": bearer(
            sign(SigningKey(kid=key.kid, private=stranger.private), issuer=issuer)
        ),
        "another key set": bearer(sign(stranger, issuer=issuer)),
        "no exp": bearer(sign(key, issuer=issuer, drop=("exp",))),
        "no iat": bearer(sign(key, issuer=issuer, drop=("iat",))),
        "subject not a user": bearer(sign(key, issuer=issuer, sub="group:default/finops-admin")),
        "ent not a list": bearer(sign(key, issuer=issuer, overrides={"ent": ADMIN_GROUP})),
        "unknown service token": bearer("svc-unknown-token-0123456789abcdef"),
    }


def test_bad_credentials_answer_401(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage)
    cases = _bad_credentials(backstage.url, key, SigningKey.new())
    for name, headers in cases.items():
        for path in ("read", "admin", "who"):
            response = client.get(f"{API_BASE_PATH}/_probe/{path}", headers=headers)
            assert response.status_code == 401, f"{name} on {path}: {response.status_code} {response.text}"
            assert_backstage_error(response, 401, "AuthenticationError")
    # The untyped form of older Backstage tokens still passes, with the right audience.
    old_style = sign(key, issuer=f"{backstage.url}/api/auth", headers={"typ": None})
    assert jwt.get_unverified_header(old_style).get("typ") is None
    assert client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(old_style)).status_code == 200


# --- JWKS: caching, rate limit, rotation, outages -------------------------------------------------


def test_random_kids_do_not_flood_backstage(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage)  # default minimum refetch interval (60 s)
    issuer = f"{backstage.url}/api/auth"
    started = time.monotonic()
    for _ in range(1000):
        forged = sign(SigningKey(kid=uuid.uuid4().hex, private=key.private), issuer=issuer)
        response = client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(forged))
        assert response.status_code == 401
    elapsed = time.monotonic() - started
    assert backstage.jwks_requests <= 2, backstage.jwks_requests
    # The real key still works from the cache, without another fetch.
    ok = client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(sign(key, issuer=issuer)))
    assert ok.status_code == 200
    assert backstage.jwks_requests <= 2
    print(f"1000 random-kid requests: {backstage.jwks_requests} JWKS fetch(es), {elapsed:.1f} s")


def test_rotated_key_is_accepted_on_first_use(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage, FINOPS_JWKS_MIN_REFETCH_SECONDS=0.5)
    issuer = f"{backstage.url}/api/auth"
    assert (
        client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(sign(key, issuer=issuer))).status_code
        == 200
    )
    assert backstage.jwks_requests == 1
    rotated = SigningKey.new()
    backstage.keys = [rotated, key]
    time.sleep(0.6)  # past the minimum interval since the last fetch
    first_use = client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(sign(rotated, issuer=issuer)))
    assert first_use.status_code == 200, first_use.text
    assert backstage.jwks_requests == 2
    # Within the interval an unknown key id is refused without asking Backstage again.
    unknown = sign(SigningKey.new(), issuer=issuer)
    assert client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(unknown)).status_code == 401
    assert backstage.jwks_requests == 2


def test_unreachable_jwks_is_503_not_401(key: SigningKey) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = TestClient(
        make_app(FINOPS_AUTH_MODE="backstage", FINOPS_BACKSTAGE_URL=dead, FINOPS_IDENTITY_TIMEOUT_SECONDS=2)
    )
    token = sign(key, issuer=f"{dead}/api/auth")
    body = assert_backstage_error(
        client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(token)), 503, "ServiceUnavailableError"
    )
    assert "jwks.json" in body["error"]["message"]
    # Still 503 (not a silent 401) while the retry delay runs.
    assert_backstage_error(
        client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(token)), 503, "ServiceUnavailableError"
    )


# --- groups from userinfo -------------------------------------------------------------------------


def test_userinfo_down_without_ent_is_503(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage)
    backstage.userinfo_up = False
    token = sign(key, issuer=f"{backstage.url}/api/auth", omit_ent=True)
    body = assert_backstage_error(
        client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(token)), 503, "ServiceUnavailableError"
    )
    assert "userinfo" in body["error"]["message"]
    assert backstage.userinfo_requests == 1


def test_userinfo_groups_are_used_and_cached(backstage: IdentityServer, key: SigningKey) -> None:
    client = backstage_client(backstage, FINOPS_USER_ACCESS="read")
    issuer = f"{backstage.url}/api/auth"
    backstage.userinfo_ent = {
        "user:default/alice": ["user:default/alice", ADMIN_GROUP],
        "user:default/bob": ["user:default/bob", USER_GROUP],
    }
    alice = sign(key, issuer=issuer, omit_ent=True)
    for _ in range(5):
        response = client.get(f"{API_BASE_PATH}/_probe/who", headers=bearer(alice))
        assert response.status_code == 200
        assert response.json()["groups"] == ["user:default/alice", ADMIN_GROUP]
    assert client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(alice)).status_code == 200
    assert backstage.userinfo_requests == 1  # one call for all requests with the same token
    bob = sign(key, issuer=issuer, sub="user:default/bob", omit_ent=True)
    assert client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(bob)).status_code == 200
    assert client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(bob)).status_code == 403
    assert backstage.userinfo_requests == 2
    # Backstage without stored info for a user: authenticated, no role.
    carol = sign(key, issuer=issuer, sub="user:default/carol", omit_ent=True)
    assert_backstage_error(
        client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(carol)), 403, "NotAllowedError"
    )


# --- static service tokens ------------------------------------------------------------------------


def test_static_mode(backstage: IdentityServer, key: SigningKey) -> None:
    client = TestClient(make_app(FINOPS_AUTH_MODE="static", FINOPS_STATIC_TOKENS=STATIC_TOKENS))
    admin = client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(ADMIN_TOKEN))
    assert admin.status_code == 200
    assert admin.json() == {"subject": "component:default/finops-exporter", "role": "admin"}
    assert client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(READER_TOKEN)).status_code == 403
    assert client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(READER_TOKEN)).status_code == 403
    for wrong in (ADMIN_TOKEN[:-1], ADMIN_TOKEN + "x", ADMIN_TOKEN.upper()):
        assert_backstage_error(
            client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(wrong)), 401, "AuthenticationError"
        )
    # A Backstage token means nothing in static mode, and no Backstage is asked.
    backstage_token = sign(key, issuer=f"{backstage.url}/api/auth")
    assert client.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(backstage_token)).status_code == 401
    assert backstage.jwks_requests == 0
    with_read = TestClient(
        make_app(FINOPS_AUTH_MODE="static", FINOPS_STATIC_TOKENS=STATIC_TOKENS, FINOPS_USER_ACCESS="read")
    )
    assert with_read.get(f"{API_BASE_PATH}/_probe/read", headers=bearer(READER_TOKEN)).status_code == 200


def test_backstage_mode_also_accepts_service_tokens(backstage: IdentityServer) -> None:
    client = backstage_client(backstage, FINOPS_STATIC_TOKENS=STATIC_TOKENS)
    who = client.get(f"{API_BASE_PATH}/_probe/who", headers=bearer(ADMIN_TOKEN)).json()
    assert who == {
        "subject": "component:default/finops-exporter",
        "role": "admin",
        "groups": [],
        "via": "static",
    }
    assert backstage.jwks_requests == 0  # matched before any token verification


# --- configuration --------------------------------------------------------------------------------


def test_misconfiguration_fails_app_creation() -> None:
    with pytest.raises(AuthConfigError, match="FINOPS_BACKSTAGE_URL"):
        create_app(AdminSettings(FINOPS_AUTH_MODE="backstage"))
    with pytest.raises(AuthConfigError, match="FINOPS_STATIC_TOKENS"):
        create_app(AdminSettings(FINOPS_AUTH_MODE="static"))
    with pytest.raises(ValidationError, match="FINOPS_JWT_ALGORITHMS"):
        settings_from(FINOPS_JWT_ALGORITHMS="HS256")
    with pytest.raises(ValidationError, match="FINOPS_JWT_ALGORITHMS"):
        settings_from(FINOPS_JWT_ALGORITHMS="none")
    with pytest.raises(ValidationError, match="FINOPS_BACKSTAGE_URL"):
        AdminSettings(FINOPS_BACKSTAGE_URL="backstage:7007")
    with pytest.raises(ValidationError, match="FINOPS_STATIC_TOKENS"):
        settings_from(FINOPS_STATIC_TOKENS="[{not json")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.10", "backstage.example.com", ""])
def test_dev_mode_refuses_non_loopback(host: str) -> None:
    settings = AdminSettings(FINOPS_AUTH_MODE="dev", FINOPS_API_HOST=host)
    with pytest.raises(DevModeBindError, match="loopback"):
        check_dev_mode_bind(settings)
    with pytest.raises(DevModeBindError, match="FINOPS_API_HOST"):
        create_app(settings)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"])
def test_dev_mode_on_loopback(host: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        app = make_app(FINOPS_AUTH_MODE="dev", FINOPS_API_HOST=host)
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "FINOPS_AUTH_MODE=dev" in r.message
    ]
    assert len(warnings) == 1
    assert app.state.finops.settings.auth_mode == "dev"
    client = TestClient(app, base_url="http://127.0.0.1")
    who = client.get(f"{API_BASE_PATH}/_probe/admin")  # no credentials at all
    assert who.status_code == 200 and who.json() == {"subject": "user:default/dev", "role": "admin"}
    me = client.get(f"{API_BASE_PATH}/me").json()
    assert me["devMode"] is True and me["authMode"] == "dev" and me["via"] == "dev"


def test_dev_mode_check_ignores_other_modes() -> None:
    check_dev_mode_bind(AdminSettings(FINOPS_AUTH_MODE="static", FINOPS_API_HOST="0.0.0.0"))
    with pytest.raises(DevModeBindError):
        check_dev_mode_bind(AdminSettings(FINOPS_AUTH_MODE="dev"), host="0.0.0.0")


# --- public endpoints and logs --------------------------------------------------------------------


def test_health_and_openapi_stay_public(backstage: IdentityServer) -> None:
    client = backstage_client(backstage)
    health = client.get(f"{API_BASE_PATH}/healthz")
    assert health.status_code in (200, 503)  # no database here; what matters: never 401/403
    assert health.status_code not in (401, 403)
    spec = client.get(f"{API_BASE_PATH}/openapi.json")
    assert spec.status_code == 200
    scheme = spec.json()["components"]["securitySchemes"]["BackstageToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_tokens_never_reach_the_logs(
    backstage: IdentityServer, key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = f"{backstage.url}/api/auth"
    backstage.userinfo_ent = {"user:default/alice": [ADMIN_GROUP]}
    tokens = [
        sign(key, issuer=issuer),
        sign(key, issuer=issuer, omit_ent=True),
        sign(key, issuer="http://evil.example/api/auth"),
        sign(key, issuer=issuer, overrides={"exp": int(time.time()) - 3600}),
        sign(SigningKey.new(), issuer=issuer),
        "svc-unknown-token-0123456789abcdef",
        ADMIN_TOKEN,
    ]
    with caplog.at_level(logging.DEBUG):
        client = backstage_client(backstage, FINOPS_STATIC_TOKENS=STATIC_TOKENS)
        statuses = [
            client.get(f"{API_BASE_PATH}/_probe/admin", headers=bearer(t)).status_code for t in tokens
        ]
        backstage.userinfo_up = False
        statuses.append(
            client.get(
                f"{API_BASE_PATH}/_probe/admin",
                headers=bearer(sign(key, issuer=issuer, sub="user:default/x", omit_ent=True)),
            ).status_code
        )
    assert statuses == [200, 200, 401, 401, 401, 401, 200, 503]
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for token in tokens:
        assert token not in text
        assert token.split(".")[-1] not in text  # not even a JWT's signature part
    assert token_fingerprint(tokens[2]) in text  # rejections are logged, by fingerprint


# --- the real routers: roles on every operation the OpenAPI document lists ------------------------

ME_PATH = f"{API_BASE_PATH}/me"


def _protected_operations(client: TestClient) -> list[tuple[str, str]]:
    document = client.get(f"{API_BASE_PATH}/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") and path not in (ME_PATH, f"{API_BASE_PATH}/_probe/who")
    ]


def _admin_only(method: str, path: str) -> bool:
    return path.endswith(("/logs", "/_probe/admin")) or (method == "POST" and "reprocess" in path)


def test_real_operations_enforce_roles(backstage: IdentityServer, key: SigningKey) -> None:
    issuer = f"{backstage.url}/api/auth"
    nobody = sign(key, issuer=issuer, sub="user:default/nobody", ent=["group:default/devs"])
    user = sign(key, issuer=issuer, sub="user:default/bob", ent=[USER_GROUP])
    default = backstage_client(backstage)
    reading = backstage_client(backstage, FINOPS_USER_ACCESS="read")
    operations = _protected_operations(default)
    assert ("GET", f"{API_BASE_PATH}/_probe/admin") in operations  # the list really is the document's
    for method, path in operations:
        url = path.replace("{runId}", "run-1").replace("{requestId}", "req-1")
        body = {} if method == "POST" else None
        for client, token, why in ((default, nobody, "no role"), (default, user, "user, access none")):
            response = client.request(method, url, headers=bearer(token), json=body)
            assert response.status_code == 403, (
                f"{why}: {method} {path} -> {response.status_code} {response.text}"
            )
            assert_backstage_error(response, 403, "NotAllowedError")
        if _admin_only(method, path):
            response = reading.request(method, url, headers=bearer(user), json=body)
            assert response.status_code == 403, f"user: {method} {path} -> {response.status_code}"
