"""Verification of Backstage user tokens, and the caller's groups (`ent` claim or userinfo).

Backstage's auth backend signs user tokens (ES256 by default) with keys it
publishes at `<backend>/api/auth/.well-known/jwks.json`; they carry
`iss=<backend>/api/auth`, `aud=backstage`, `sub=<user entity ref>`, `iat`,
`exp`, header `typ=vnd.backstage.user` (absent on older tokens) and, unless
the deployment omits it, `ent` (the user's ownership refs, groups included).
Without `ent`, `<backend>/api/auth/v1/userinfo` answers
`{"claims": {"sub": ..., "ent": [...]}}` for the same token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from finops_admin_plugin.auth.caller import Caller, token_fingerprint
from finops_admin_plugin.auth.fetch import FetchFailed, fetch_within
from finops_admin_plugin.auth.jwks import JwksCache, retry_after
from finops_admin_plugin.auth.roles import role_for_groups
from finops_admin_plugin.http.errors import AuthenticationError, ServiceUnavailableError
from finops_admin_plugin.settings import AdminSettings

log = logging.getLogger(__name__)

__all__ = ["BACKSTAGE_AUDIENCE", "BACKSTAGE_USER_TOKEN_TYPE", "BackstageTokenVerifier"]

BACKSTAGE_AUDIENCE = "backstage"
BACKSTAGE_USER_TOKEN_TYPE = "vnd.backstage.user"
_USER_REF = re.compile(r"^(?i:user):[^:/\s]+/[^:/\s]+$")
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_USERINFO_CACHE_MAX = 10_000
# Requests waiting for a userinfo call another request with the same new token made (a page
# load sends up to six at once), over all tokens; more fail at once, so waiting requests never
# fill the server's thread pool.
MAX_USERINFO_WAITERS = 8


@dataclass
class _Flight:
    """One userinfo call under way for a token; others with the same token wait on `done`."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _UserinfoEntry:
    """A userinfo answer for one token: its groups, or the error it ended with, until `until`."""

    until: float
    groups: tuple[str, ...] = ()
    error: AuthenticationError | ServiceUnavailableError | None = None

    def answer(self) -> tuple[str, ...]:
        if self.error is not None:
            raise type(self.error)(self.error.message, headers=self.error.headers)
        return self.groups


def _reject(message: str, token: str) -> AuthenticationError:
    log.info("rejected Backstage token %s: %s", token_fingerprint(token), message)
    return AuthenticationError(message, headers=_INVALID_TOKEN)


class BackstageTokenVerifier:
    def __init__(self, settings: AdminSettings, *, clock: Callable[[], float] = time.time) -> None:
        base = settings.backstage_url
        self.settings = settings
        self.issuer = f"{base}/api/auth"
        self.userinfo_url = f"{base}/api/auth/v1/userinfo"
        self.jwks = JwksCache(
            f"{base}/api/auth/.well-known/jwks.json",
            algorithms=settings.jwt_algorithms,
            min_refetch_seconds=settings.jwks_min_refetch_seconds,
            max_age_seconds=settings.jwks_max_age_seconds,
            timeout_seconds=settings.identity_timeout_seconds,
            failure_cache_seconds=settings.identity_failure_cache_seconds,
        )
        self._clock = clock
        self._userinfo_lock = threading.Lock()
        # Keyed by sha256(token): the token itself is never kept.
        self._userinfo_cache: dict[str, _UserinfoEntry] = {}
        self._userinfo_flights: dict[str, _Flight] = {}
        self._userinfo_waiters = 0
        self.userinfo_calls = 0

    def authenticate(self, token: str) -> Caller:
        claims = self._verified_claims(token)
        subject = claims["sub"]
        if "ent" in claims:
            groups = self._ent(claims["ent"], token)
        else:
            groups = self._userinfo_groups(token, subject, float(claims["exp"]))
        return Caller(
            subject=subject, role=role_for_groups(groups, self.settings), groups=groups, via="backstage"
        )

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise _reject("malformed bearer token: not a JWT", token) from None
        typ = header.get("typ")
        if typ is not None and typ != BACKSTAGE_USER_TOKEN_TYPE:
            raise _reject(f"token type {str(typ)[:64]!r} is not a Backstage user token", token)
        alg = header.get("alg")
        if alg not in self.settings.jwt_algorithms:
            raise _reject(
                f"token algorithm {str(alg)[:16]!r} is not accepted (FINOPS_JWT_ALGORITHMS: "
                f"{', '.join(self.settings.jwt_algorithms)})",
                token,
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _reject("token header has no key id (kid)", token)
        key = self.jwks.get_key(kid)
        if key is None:
            raise _reject(f"token is signed with key {kid[:64]!r}, which Backstage does not publish", token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.settings.jwt_algorithms,
                audience=BACKSTAGE_AUDIENCE,
                issuer=self.issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except ExpiredSignatureError:
            raise _reject("token has expired; sign in to Backstage again", token) from None
        except ImmatureSignatureError:
            raise _reject("token is not valid yet (iat or nbf in the future); check clocks", token) from None
        except InvalidIssuerError:
            raise _reject(f"token was not issued by {self.issuer}", token) from None
        except InvalidAudienceError:
            raise _reject(f"token audience is not {BACKSTAGE_AUDIENCE!r}", token) from None
        except InvalidSignatureError:
            raise _reject("token signature does not verify with Backstage's key", token) from None
        except MissingRequiredClaimError as exc:
            raise _reject(f"token lacks the {exc.claim!r} claim", token) from None
        except (InvalidAlgorithmError, InvalidIssuedAtError) as exc:
            raise _reject(f"invalid token: {exc}", token) from None
        except PyJWTError as exc:
            raise _reject(f"invalid token ({type(exc).__name__})", token) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _USER_REF.match(subject):
            raise _reject("token subject is not a user entity ref (user:<namespace>/<name>)", token)
        return claims

    @staticmethod
    def _ent(value: Any, token: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(ref, str) for ref in value):
            raise _reject("token 'ent' claim is not a list of entity refs", token)
        return tuple(value)

    def _userinfo_groups(self, token: str, subject: str, expires_at: float) -> tuple[str, ...]:
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        with self._userinfo_lock:
            now = self._clock()
            cached = self._userinfo_cache.get(key)
            if cached is not None and cached.until > now:
                return cached.answer()
            flight = self._userinfo_flights.get(key)
            if flight is None:
                if len(self._userinfo_flights) >= self.settings.userinfo_max_concurrent:
                    raise ServiceUnavailableError(
                        f"cannot read the caller's groups yet: {len(self._userinfo_flights)} calls to "
                        f"Backstage userinfo are under way (FINOPS_USERINFO_MAX_CONCURRENT); try again in a "
                        f"moment",
                        headers=retry_after(1),
                    )
                flight = self._userinfo_flights[key] = _Flight(started=now)
                leader = True
            elif self._userinfo_waiters >= MAX_USERINFO_WAITERS:
                raise self._userinfo_busy(flight, now)
            else:
                self._userinfo_waiters += 1
                leader = False
        if leader:
            return self._lead_userinfo(key, token, subject, expires_at, flight)
        # The same token's other requests (a page load sends several) wait for that one call.
        # The call ends by its deadline; the margin covers the caching that follows it.
        remaining = flight.started + self.settings.identity_timeout_seconds - self._clock()
        flight.done.wait(max(remaining, 0.0) + 0.5)
        with self._userinfo_lock:
            self._userinfo_waiters -= 1
            cached = self._userinfo_cache.get(key)
            now = self._clock()
            if cached is not None and cached.until > now:
                return cached.answer()
            raise self._userinfo_busy(flight, now)

    def _lead_userinfo(
        self, key: str, token: str, subject: str, expires_at: float, flight: _Flight
    ) -> tuple[str, ...]:
        entry: _UserinfoEntry | None = None
        try:
            groups = self._fetch_userinfo(token, subject)
            now = self._clock()
            ttl = self.settings.userinfo_cache_seconds
            entry = _UserinfoEntry(until=min(expires_at, now + ttl), groups=groups)
        except (AuthenticationError, ServiceUnavailableError) as exc:
            now = self._clock()
            failure_ttl = self.settings.identity_failure_cache_seconds
            if isinstance(exc, ServiceUnavailableError):
                exc.headers.update(retry_after(failure_ttl))
            # Remembered briefly: a token Backstage refused, or an outage, is not asked again
            # by each of the caller's next requests.
            entry = _UserinfoEntry(until=min(expires_at, now + failure_ttl), error=exc)
            raise
        finally:
            with self._userinfo_lock:
                if entry is not None:
                    self._store(key, entry, self._clock())
                self._userinfo_flights.pop(key, None)
            flight.done.set()
        return groups

    def _userinfo_busy(self, flight: _Flight, now: float) -> ServiceUnavailableError:
        wait = flight.started + self.settings.identity_timeout_seconds - now
        return ServiceUnavailableError(
            f"cannot read the caller's groups yet: Backstage userinfo {self.userinfo_url} is being asked "
            f"for this token; try again in {max(1, math.ceil(wait))} s",
            headers=retry_after(wait),
        )

    def _store(self, key: str, entry: _UserinfoEntry, now: float) -> None:
        cache = self._userinfo_cache
        cache.pop(key, None)  # re-inserted last: the oldest entries are evicted first
        cache[key] = entry
        if len(cache) > _USERINFO_CACHE_MAX:
            for stale in [k for k, e in cache.items() if e.until <= now]:
                del cache[stale]
            while len(cache) > _USERINFO_CACHE_MAX:
                del cache[next(iter(cache))]

    def _fetch_userinfo(self, token: str, subject: str) -> tuple[str, ...]:
        self.userinfo_calls += 1
        url = self.userinfo_url
        try:
            response = fetch_within(
                url,
                headers={"Authorization": f"Bearer {token}"},
                deadline_seconds=self.settings.identity_timeout_seconds,
            )
        except FetchFailed as exc:
            log.warning("Backstage userinfo %s: %s", url, exc.reason)
            raise ServiceUnavailableError(
                f"cannot read the caller's groups: Backstage userinfo {url} failed: {exc.reason}; "
                f"check that the Backstage backend is up"
            ) from None
        if response.status_code in (401, 403):
            raise _reject("Backstage no longer accepts this token (userinfo refused it)", token)
        if response.status_code == 404:
            # Backstage has no stored identity for this user: known user, no groups.
            log.info("Backstage userinfo has no entry for %s", subject)
            return ()
        if response.status_code != 200:
            log.warning("Backstage userinfo %s answered HTTP %s", url, response.status_code)
            raise ServiceUnavailableError(
                f"cannot read the caller's groups: Backstage userinfo {url} answered HTTP "
                f"{response.status_code}"
            )
        try:
            claims = json.loads(response.body)["claims"]
            info_subject = claims.get("sub")
            ent = claims.get("ent", [])
            if not isinstance(ent, list) or not all(isinstance(ref, str) for ref in ent):
                raise TypeError("'ent' is not a list of strings")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServiceUnavailableError(
                f"cannot read the caller's groups: Backstage userinfo {url} answered an unexpected body "
                f"({type(exc).__name__})"
            ) from exc
        if info_subject != subject:
            raise _reject("Backstage userinfo describes another user than the token's subject", token)
        return tuple(ent)
