"""Anomaly scores of a run and of its blocks (pure: the read model supplies the history).

For each metric (duration, rows inserted, billed cost) a value is compared with
the same metric of the last `WINDOW` successful *comparable* runs that started
before it:
- run scope: same set of domains and same number of periods;
- block scope: same domain and same number of periods, successful block.

With at least `MIN_HISTORY` values: modified z-score 0.6745 * (x - median) / MAD,
flagged when |z| > 3.5 (Iglewicz and Hoaglin). When the MAD is 0 (identical
history, common for row counts) the z-score is undefined; the value is then
compared with the median like the fallback below.
With fewer values: relative change to the previous comparable run, flagged
beyond ±50 %.
A duration never counts as anomalous when it differs from its baseline by less
than `MIN_DURATION_DELTA` seconds: sub-second jitter of short runs is noise.
Only successful runs get run-scope scores (a failed run's volumes are partial by
nature); blocks are scored when they succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Final

from finops_admin_plugin.models import Anomaly, AnomalyMetric

__all__ = [
    "FALLBACK_RATIO",
    "METRICS",
    "MIN_DURATION_DELTA",
    "MIN_HISTORY",
    "WINDOW",
    "Z_THRESHOLD",
    "MetricHistory",
    "score_metric",
    "score_scope",
]

METRICS: Final[tuple[AnomalyMetric, ...]] = ("durationSeconds", "relevesInserted", "billedCost")
WINDOW: Final = 10
MIN_HISTORY: Final = 4
Z_THRESHOLD: Final = 3.5
FALLBACK_RATIO: Final = 0.5
MIN_DURATION_DELTA: Final = 1.0
_MAD_SCALE: Final = 0.6745


@dataclass(frozen=True)
class MetricHistory:
    """A metric's values in comparable runs, most recent first."""

    metric: AnomalyMetric
    values: Sequence[float]


def _relative(value: float, baseline: float) -> float | None:
    if baseline == 0:
        return None if value == 0 else float("inf") if value > 0 else float("-inf")
    return (value - baseline) / abs(baseline)


def score_metric(
    metric: AnomalyMetric, scope: str, value: float | None, history: Sequence[float]
) -> Anomaly | None:
    """An `Anomaly` when `value` is unusual against `history` (most recent first), else None."""
    if value is None:
        return None
    recent = [float(v) for v in history[:WINDOW] if v is not None]
    if not recent:
        return None
    if metric == "durationSeconds" and abs(value - median(recent)) < MIN_DURATION_DELTA:
        return None
    if len(recent) >= MIN_HISTORY:
        center = median(recent)
        mad = median(abs(v - center) for v in recent)
        if mad > 0:
            z = _MAD_SCALE * (value - center) / mad
            if abs(z) > Z_THRESHOLD:
                return Anomaly(
                    metric=metric,
                    scope=scope,
                    value=value,
                    baseline=center,
                    score=round(z, 3),
                    method="modified_z",
                )
            return None
        baseline = center
    else:
        baseline = recent[0]
    change = _relative(value, baseline)
    if change is None or abs(change) <= FALLBACK_RATIO:
        return None
    # JSON has no infinity: a jump from 0 is reported as a 100x change.
    shown = max(min(change, 100.0), -100.0)
    return Anomaly(
        metric=metric, scope=scope, value=value, baseline=baseline, score=round(shown, 3), method="relative"
    )


def score_scope(
    scope: str, values: dict[AnomalyMetric, float | None], histories: Sequence[MetricHistory]
) -> list[Anomaly]:
    """Anomalies of one scope (`run` or a domain), in `METRICS` order."""
    by_metric = {h.metric: h.values for h in histories}
    found = []
    for metric in METRICS:
        anomaly = score_metric(metric, scope, values.get(metric), by_metric.get(metric, ()))
        if anomaly is not None:
            found.append(anomaly)
    return found
