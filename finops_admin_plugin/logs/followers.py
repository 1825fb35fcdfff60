"""Open log followers (`GET /runs/{runId}/logs?follow=true`): at most N per caller, and a gauge.

A follower is a response that may stay open for the length of a run, so each caller gets a few
(`FINOPS_LOG_FOLLOWERS_PER_CALLER`): a page left open in many tabs, or a script that reconnects
in a loop, cannot take every connection of the API.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Final

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["FOLLOWERS_GAUGE", "RETRY_AFTER_SECONDS", "FollowerSlot", "FollowerSlots", "followers_exposition"]

FOLLOWERS_GAUGE: Final = "finops_log_followers_open"
# A follower ends within seconds of its run, so a refused caller may soon have a free slot.
RETRY_AFTER_SECONDS: Final = 10


class FollowerSlot:
    """One caller's open follower; `release` is idempotent (the response's end and a disconnect
    may both call it)."""

    def __init__(self, slots: FollowerSlots, subject: str) -> None:
        self._slots = slots
        self._subject = subject
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._slots._release(self._subject)


class FollowerSlots:
    """Followers open, by caller (counted here, in this API process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # /metrics reads the count from a worker thread
        self._open: dict[str, int] = {}

    def acquire(self, subject: str, limit: int) -> FollowerSlot | None:
        """A slot for `subject`, or None when it already has `limit` followers open."""
        with self._lock:
            count = self._open.get(subject, 0)
            if count >= limit:
                return None
            self._open[subject] = count + 1
        return FollowerSlot(self, subject)

    def _release(self, subject: str) -> None:
        with self._lock:
            count = self._open.get(subject, 0) - 1
            if count > 0:
                self._open[subject] = count
            else:
                self._open.pop(subject, None)

    def open_count(self, subject: str | None = None) -> int:
        """Followers open (of `subject`, or of every caller)."""
        with self._lock:
            return self._open.get(subject, 0) if subject is not None else sum(self._open.values())


class _FollowersCollector(Collector):
    def __init__(self, slots: FollowerSlots) -> None:
        self.slots = slots

    def collect(self) -> Iterator[Metric]:
        # No caller label: the callers' names would make one series per person.
        yield GaugeMetricFamily(
            FOLLOWERS_GAUGE,
            "Log streams being followed (GET /runs/{runId}/logs?follow=true responses open).",
            value=self.slots.open_count(),
        )


def followers_exposition(slots: FollowerSlots) -> bytes:
    """The gauge in Prometheus' text format, to append to the API's /metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FollowersCollector(slots))
    return generate_latest(registry)
