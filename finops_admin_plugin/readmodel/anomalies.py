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

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Final

from finops_admin_plugin.models import Anomaly, AnomalyMetric

__all__ = [
    "BLOCK_HISTORY",
    "FALLBACK_RATIO",
    "HISTORY_STATUS",
    "METRICS",
    "MIN_DURATION_DELTA",
    "MIN_HISTORY",
    "RUN_HISTORY",
    "SCORED_RUN_STATUSES",
    "WINDOW",
    "Z_THRESHOLD",
    "Comparable",
    "MetricHistory",
    "MetricValues",
    "RunScores",
    "ScoredBlock",
    "ScoredRun",
    "metric_values",
    "score_in_order",
    "score_metric",
    "score_run",
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


# --- comparable runs --------------------------------------------------------------------------------

MetricValues = dict[AnomalyMetric, float | None]
SCORED_RUN_STATUSES: Final = ("SUCCESS", "FAILED", "CANCELED")  # finished runs get scores
HISTORY_STATUS: Final = "SUCCESS"  # only successful runs and blocks are history (and get scopes scored)


@dataclass(frozen=True)
class ScoredBlock:
    domain: str
    status: str
    values: MetricValues


@dataclass(frozen=True)
class ScoredRun:
    """What scoring reads of a run: its comparability keys, its metrics and its blocks'."""

    run_id: str
    status: str
    domains: tuple[str, ...]
    period_count: int
    sort_time: Any
    values: MetricValues
    blocks: tuple[ScoredBlock, ...] = ()


@dataclass(frozen=True)
class Comparable:
    """Which earlier runs (or blocks) are the history a value is scored against: the ONE definition.

    History of a run (or of one of its blocks): the last `WINDOW` rows with status
    `HISTORY_STATUS`, equal `keys`, that started strictly before it. `score_in_order`
    groups by `key`; the read model selects a single run's history with `history_sql`.
    """

    table: str  # of the read model, whose columns are named by `keys`
    keys: tuple[str, ...]

    def key(self, run: ScoredRun, domain: str | None = None) -> tuple[Any, ...]:
        """The values of `keys` for `run` (or for its block of `domain`)."""
        fields = {"domains": tuple(run.domains), "period_count": run.period_count, "domain": domain}
        return tuple(fields[k] for k in self.keys)

    def history_sql(self, schema: str) -> str:
        """Metrics of the history of one run (or block), most recent first; parameters by `history_params`."""
        keys = " AND ".join(f"{k} = %({k})s" for k in self.keys)
        return (
            f"SELECT duration_seconds, releves_inserted, billed_cost FROM {schema}.{self.table} "
            f"WHERE status = %(history_status)s AND {keys} AND sort_time < %(before)s "
            "AND run_id <> %(run_id)s ORDER BY sort_time DESC LIMIT %(window)s"
        )

    def history_params(self, run: ScoredRun, domain: str | None = None) -> dict[str, Any]:
        # psycopg sends a list, not a tuple, as a PostgreSQL array.
        values = (list(v) if isinstance(v, tuple) else v for v in self.key(run, domain))
        params: dict[str, Any] = dict(zip(self.keys, values, strict=True))
        params.update(history_status=HISTORY_STATUS, before=run.sort_time, run_id=run.run_id, window=WINDOW)
        return params


# A run is compared with runs of the same domains and number of periods; a block with blocks of the
# same domain and number of periods (its run's).
RUN_HISTORY: Final = Comparable("runs", ("domains", "period_count"))
BLOCK_HISTORY: Final = Comparable("blocks", ("domain", "period_count"))


@dataclass(frozen=True)
class RunScores:
    run_id: str
    run: list[Anomaly]
    blocks: dict[str, list[Anomaly]]

    @property
    def flagged(self) -> bool:
        return bool(self.run) or any(self.blocks.values())


def metric_values(
    duration_seconds: float | None, releves_inserted: int | None, billed_cost: float | None
) -> MetricValues:
    return {
        "durationSeconds": duration_seconds,
        "relevesInserted": float(releves_inserted) if releves_inserted is not None else None,
        "billedCost": billed_cost,
    }


def _histories(values: Sequence[MetricValues]) -> list[MetricHistory]:
    return [
        MetricHistory(metric, [v for v in (item[metric] for item in values) if v is not None])
        for metric in METRICS
    ]


def score_run(
    run: ScoredRun, run_history: Sequence[MetricValues], block_history: Mapping[str, Sequence[MetricValues]]
) -> RunScores:
    """Scores of one finished run, given the metrics of its comparable runs (most recent first).

    Comparable: `RUN_HISTORY` for the run, `BLOCK_HISTORY` for a block. Only a successful run gets
    run-scope scores (a failed run's volumes are partial by nature); blocks are scored when they
    succeeded.
    """
    found = (
        score_scope("run", run.values, _histories(run_history[:WINDOW]))
        if run.status == HISTORY_STATUS
        else []
    )
    blocks = {
        block.domain: score_scope(
            block.domain, block.values, _histories(block_history.get(block.domain, ())[:WINDOW])
        )
        for block in run.blocks
        if block.status == HISTORY_STATUS
    }
    return RunScores(run.run_id, found, blocks)


def score_in_order(runs: Sequence[ScoredRun]) -> Iterator[RunScores]:
    """Scores of every finished run, in one pass over `runs` sorted by start time.

    The same scores as `score_run` with each run's history read separately: runs starting at
    the same instant are not each other's history.
    """
    run_history: dict[tuple[Any, ...], list[MetricValues]] = {}
    block_history: dict[tuple[Any, ...], list[MetricValues]] = {}
    index = 0
    while index < len(runs):
        end = index
        while end < len(runs) and runs[end].sort_time == runs[index].sort_time:
            end += 1
        group = runs[index:end]
        for run in group:
            if run.status not in SCORED_RUN_STATUSES:
                continue
            history = run_history.get(RUN_HISTORY.key(run), [])
            blocks = {
                b.domain: block_history.get(BLOCK_HISTORY.key(run, b.domain), [])[::-1] for b in run.blocks
            }
            yield score_run(run, history[::-1], blocks)
        for run in group:
            if run.status == HISTORY_STATUS:
                run_history.setdefault(RUN_HISTORY.key(run), []).append(run.values)
            for block in run.blocks:
                if block.status == HISTORY_STATUS:
                    block_history.setdefault(BLOCK_HISTORY.key(run, block.domain), []).append(block.values)
        index = end
