"""Backstage's signing keys (JWKS), cached, refetched on an unknown key id at a bounded rate.

A token naming an unknown `kid` may be the first one signed with a rotated key,
so it triggers a refetch, but at most one per `min_refetch_seconds`: tokens
with random key ids cannot turn this API into a request flood against Backstage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from finops_admin_plugin.http.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

__all__ = ["JwksCache"]

# After a failed fetch, try again sooner than the normal interval: a Backstage
# restart should not lock every user out for a full minute. Still bounded.
_FAILURE_RETRY_SECONDS = 5.0


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        algorithms: list[str],
        min_refetch_seconds: float,
        max_age_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._algorithms = set(algorithms)
        self._min_refetch = min_refetch_seconds
        self._max_age = max(max_age_seconds, min_refetch_seconds)
        self._timeout = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_error: str | None = None
        self.fetch_count = 0

    def get_key(self, kid: str) -> PyJWK | None:
        """The key named `kid`, or None when Backstage does not publish it.

        Raises ServiceUnavailableError when the JWKS cannot be fetched and no
        fresh answer is cached: an unreachable identity service is never taken
        for "no such key".
        """
        with self._lock:
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < self._max_age
            if fresh and kid in self._keys:
                return self._keys[kid]
            if self._may_fetch(now):
                self._last_attempt = now
                try:
                    self._keys = self._fetch()
                except ServiceUnavailableError as exc:
                    self._last_error = exc.message
                    raise
                self._fetched_at = now
                self._last_error = None
                return self._keys.get(kid)
            if self._last_error is not None:
                wait = (self._last_attempt or now) + self._interval() - now
                raise ServiceUnavailableError(f"{self._last_error}; next attempt in {max(wait, 0.0):.0f} s")
            return self._keys.get(kid)

    def _interval(self) -> float:
        if self._last_error is not None:
            return min(self._min_refetch, _FAILURE_RETRY_SECONDS)
        return self._min_refetch

    def _may_fetch(self, now: float) -> bool:
        # A stale cache is always older than the interval (max age >= min refetch), so it refetches too.
        return self._last_attempt is None or now - self._last_attempt >= self._interval()

    def _fetch(self) -> dict[str, PyJWK]:
        self.fetch_count += 1
        try:
            response = httpx.get(self.url, timeout=self._timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            log.warning("Backstage JWKS %s unreachable: %s", self.url, type(exc).__name__)
            raise ServiceUnavailableError(
                f"cannot verify tokens: Backstage JWKS {self.url} is unreachable ({type(exc).__name__}); "
                f"check FINOPS_BACKSTAGE_URL and that the Backstage backend is up"
            ) from exc
        if response.status_code != 200:
            log.warning("Backstage JWKS %s answered HTTP %s", self.url, response.status_code)
            raise ServiceUnavailableError(
                f"cannot verify tokens: Backstage JWKS {self.url} answered HTTP {response.status_code}"
            )
        try:
            body = response.json()
            raw_keys = body["keys"]
            if not isinstance(raw_keys, list):
                raise TypeError("'keys' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceUnavailableError(
                f"cannot verify tokens: Backstage JWKS {self.url} is not a JSON Web Key Set ({exc})"
            ) from exc
        keys = self._usable_keys(raw_keys)
        log.info("fetched Backstage JWKS %s: %d usable key(s)", self.url, len(keys))
        return keys

    def _usable_keys(self, raw_keys: list[Any]) -> dict[str, PyJWK]:
        # An empty set is legitimate: Backstage creates its first key with its first token.
        keys: dict[str, PyJWK] = {}
        for raw in raw_keys:
            if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str):
                continue
            if raw.get("use", "sig") != "sig":
                continue
            try:
                key = PyJWK(raw)
            except PyJWTError as exc:
                log.warning("skipping JWKS key %r: %s", raw.get("kid"), exc)
                continue
            if key.algorithm_name not in self._algorithms:
                log.warning(
                    "skipping JWKS key %r: algorithm %s is not in FINOPS_JWT_ALGORITHMS",
                    raw["kid"],
                    key.algorithm_name,
                )
                continue
            keys[raw["kid"]] = key
        return keys
