"""Backstage's signing keys (JWKS), cached, refetched on an unknown key id at a bounded rate.

A token naming an unknown `kid` may be the first one signed with a rotated key,
so it triggers a refetch, but at most one per `min_refetch_seconds`: tokens
with random key ids cannot turn this API into a request flood against Backstage.

Nothing a slow Backstage does can stall callers whose key is cached: the lock guards the
cache only, never the network call; one fetch at a time (single flight), done within
`timeout_seconds` in all; while it runs, other callers are answered from the cache or told
at once to retry (503 with Retry-After). A failed fetch is remembered for
`failure_cache_seconds`, during which no other fetch starts, whatever key ids arrive.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from finops_admin_plugin.auth.fetch import FetchFailed, fetch_within
from finops_admin_plugin.http.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

__all__ = ["JwksCache", "retry_after"]

# Before the first successful fetch nobody has a cached key, so a few callers may wait for
# the fetch under way instead of failing (a page load sends several requests at once); more
# than this many fail at once, so waiting threads never fill the server's thread pool.
MAX_COLD_WAITERS = 4


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header for a 503: whole seconds, at least one."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        algorithms: list[str],
        min_refetch_seconds: float,
        max_age_seconds: float,
        timeout_seconds: float,
        failure_cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._algorithms = set(algorithms)
        self._min_refetch = min_refetch_seconds
        self._max_age = max(max_age_seconds, min_refetch_seconds)
        self._timeout = timeout_seconds
        self._failure_cache = failure_cache_seconds
        self._clock = clock
        # Guards the fields below, for microseconds at a time: never held over a fetch.
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._last_error: str | None = None
        self._failed_at = 0.0
        self._in_flight: threading.Event | None = None
        self._cold_waiters = 0
        self.fetch_count = 0

    def get_key(self, kid: str) -> PyJWK | None:
        """The key named `kid`, or None when Backstage does not publish it.

        Raises ServiceUnavailableError (with Retry-After) when the JWKS cannot be fetched, or
        is being fetched, and no fresh answer is cached: an unreachable identity service is
        never taken for "no such key".
        """
        with self._lock:
            now = self._clock()
            if self._fresh(now) and kid in self._keys:
                return self._keys[kid]
            in_flight = self._in_flight
            if in_flight is None:
                if not self._may_fetch(now):
                    if self._last_error is not None:
                        raise self._unavailable(now)
                    return self._keys.get(kid)
                self._in_flight = threading.Event()
                self._last_attempt = now
            elif kid in self._keys:
                return self._keys[kid]  # past its age, still published a moment ago: the refresh is under way
            elif self._fetched_at is not None or self._cold_waiters >= MAX_COLD_WAITERS:
                raise self._busy(now)
            else:
                self._cold_waiters += 1
        if in_flight is None:
            return self._lead_fetch(kid, now)
        return self._wait_for_first_fetch(kid, in_flight)

    def _lead_fetch(self, kid: str, started: float) -> PyJWK | None:
        keys: dict[str, PyJWK] | None = None
        error: ServiceUnavailableError | None = None
        try:
            keys = self._fetch()
        except ServiceUnavailableError as exc:
            error = exc
        finally:
            with self._lock:
                done = self._in_flight
                self._in_flight = None
                if keys is not None:
                    self._keys, self._fetched_at, self._last_error = keys, started, None
                else:
                    self._last_error = error.message if error is not None else "JWKS fetch interrupted"
                    self._failed_at = self._clock()
                unavailable = self._unavailable(self._clock()) if keys is None else None
            if done is not None:
                done.set()
        if unavailable is not None:
            raise unavailable
        return keys.get(kid) if keys is not None else None

    def _wait_for_first_fetch(self, kid: str, in_flight: threading.Event) -> PyJWK | None:
        try:
            # The fetch ends by its deadline; the margin covers the bookkeeping that follows it.
            remaining = (self._last_attempt or 0.0) + self._timeout - self._clock()
            in_flight.wait(max(remaining, 0.0) + 0.5)
        finally:
            with self._lock:
                self._cold_waiters -= 1
        with self._lock:
            now = self._clock()
            if self._fresh(now):
                return self._keys.get(kid)
            if self._last_error is not None and self._in_flight is None:
                raise self._unavailable(now)
            raise self._busy(now)

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._max_age

    def _may_fetch(self, now: float) -> bool:
        if self._last_error is not None:
            return now - self._failed_at >= self._failure_cache
        # A stale cache is always older than the interval (max age >= min refetch), so it refetches too.
        return self._last_attempt is None or now - self._last_attempt >= self._min_refetch

    def _unavailable(self, now: float) -> ServiceUnavailableError:
        wait = self._failed_at + self._failure_cache - now
        return ServiceUnavailableError(
            f"{self._last_error}; next attempt in {max(wait, 0.0):.0f} s", headers=retry_after(wait)
        )

    def _busy(self, now: float) -> ServiceUnavailableError:
        wait = (self._last_attempt or now) + self._timeout - now
        return ServiceUnavailableError(
            f"cannot verify tokens yet: Backstage's signing keys ({self.url}) are being fetched; "
            f"try again in {max(1, math.ceil(wait))} s",
            headers=retry_after(wait),
        )

    def _fetch(self) -> dict[str, PyJWK]:
        self.fetch_count += 1
        try:
            response = fetch_within(self.url, deadline_seconds=self._timeout)
        except FetchFailed as exc:
            log.warning("Backstage JWKS %s: %s", self.url, exc.reason)
            raise ServiceUnavailableError(
                f"cannot verify tokens: Backstage JWKS {self.url} failed: {exc.reason}; "
                f"check FINOPS_BACKSTAGE_URL and that the Backstage backend is up"
            ) from None
        if response.status_code != 200:
            log.warning("Backstage JWKS %s answered HTTP %s", self.url, response.status_code)
            raise ServiceUnavailableError(
                f"cannot verify tokens: Backstage JWKS {self.url} answered HTTP {response.status_code}"
            )
        try:
            body = json.loads(response.body)
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
