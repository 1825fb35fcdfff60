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
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
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
from finops_admin_plugin.auth.jwks import JwksCache
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
        )
        self._clock = clock
        self._userinfo_lock = threading.Lock()
        # sha256(token) -> (groups, token expiry): the token itself is never kept.
        self._userinfo_cache: dict[str, tuple[tuple[str, ...], float]] = {}
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
        cache_key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = self._clock()
        with self._userinfo_lock:
            cached = self._userinfo_cache.get(cache_key)
            if cached is not None and cached[1] > now:
                return cached[0]
        groups = self._fetch_userinfo(token, subject)
        with self._userinfo_lock:
            self._store(cache_key, groups, expires_at, now)
        return groups

    def _store(self, key: str, groups: tuple[str, ...], expires_at: float, now: float) -> None:
        cache = self._userinfo_cache
        cache[key] = (groups, expires_at)
        if len(cache) > _USERINFO_CACHE_MAX:
            for stale in [k for k, (_, exp) in cache.items() if exp <= now]:
                del cache[stale]
            while len(cache) > _USERINFO_CACHE_MAX:
                del cache[next(iter(cache))]

    def _fetch_userinfo(self, token: str, subject: str) -> tuple[str, ...]:
        self.userinfo_calls += 1
        url = self.userinfo_url
        try:
            response = httpx.get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.settings.identity_timeout_seconds,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            log.warning("Backstage userinfo %s unreachable: %s", url, type(exc).__name__)
            raise ServiceUnavailableError(
                f"cannot read the caller's groups: Backstage userinfo {url} is unreachable "
                f"({type(exc).__name__}); check that the Backstage backend is up"
            ) from exc
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
            claims = response.json()["claims"]
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
