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
Billed cost is scored per currency: a run's cost in a currency against the cost in
that same currency of those comparable runs that billed in it (a currency new to
the history has none, so no verdict). The arithmetic is exact (`Decimal`); only the
score, a ratio, becomes a float. Its `value` and `baseline` are one-item lists
{currency, amount} with exact decimal strings.
A duration never counts as anomalous when it differs from its baseline by less
than `MIN_DURATION_DELTA` seconds: sub-second jitter of short runs is noise.
Only successful runs get run-scope scores (a failed run's volumes are partial by
nature); blocks are scored when they succeeded.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import median
from typing import Any, Final, Literal, TypeVar

from finops_admin_plugin.models import Anomaly, AnomalyMetric, CurrencyAmount
from finops_pipeline.money import EXACT, ByCurrency, decimal_text

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
    "MetricValues",
    "RunScores",
    "ScoredBlock",
    "ScoredRun",
    "metric_values",
    "score_cost",
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


NumberMetric = Literal["durationSeconds", "relevesInserted"]
_NUMBER_METRICS: Final[tuple[NumberMetric, ...]] = ("durationSeconds", "relevesInserted")


Method = Literal["modified_z", "relative"]
_N = TypeVar("_N", float, Decimal)


def _median(values: Sequence[_N]) -> _N:
    """The median; of decimals, exact under `EXACT` (a half of a sum of decimals has an end)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _verdict(value: _N, recent: Sequence[_N]) -> tuple[_N, float, Method] | None:
    """(baseline, score, method) when `value` is unusual against `recent` (not empty), else None.

    Decimals stay exact (money); only the score, a ratio, is a float.
    """
    with decimal.localcontext(EXACT):
        if len(recent) >= MIN_HISTORY:
            center = _median(recent)
            mad = _median([abs(v - center) for v in recent])
            if mad > 0:
                z = _MAD_SCALE * float(value - center) / float(mad)
                return (center, round(z, 3), "modified_z") if abs(z) > Z_THRESHOLD else None
            baseline = center
        else:
            baseline = recent[0]
        if baseline == 0:
            change = None if value == 0 else float("inf") if value > 0 else float("-inf")
        else:
            change = float(value - baseline) / float(abs(baseline))
    if change is None or abs(change) <= FALLBACK_RATIO:
        return None
    # JSON has no infinity: a jump from 0 is reported as a 100x change.
    return baseline, round(max(min(change, 100.0), -100.0), 3), "relative"


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
    found = _verdict(float(value), recent)
    if found is None:
        return None
    baseline, score, method = found
    return Anomaly(metric=metric, scope=scope, value=value, baseline=baseline, score=score, method=method)


def _cost(currency: str, amount: Decimal) -> list[CurrencyAmount]:
    return [CurrencyAmount(currency=currency, amount=decimal_text(amount))]


def score_cost(
    scope: str, value: Mapping[str, Decimal], history: Sequence[Mapping[str, Decimal]]
) -> list[Anomaly]:
    """One `billedCost` anomaly per currency whose cost is unusual against the same currency's cost in
    `history` (comparable runs, most recent first; those without the currency are not its history).
    Never a sum across currencies. Largest cost first, ties by currency code."""
    found = []
    for currency, amount in sorted(value.items(), key=lambda item: (-item[1], item[0])):
        same = [h[currency] for h in history[:WINDOW] if currency in h]
        verdict = _verdict(amount, same) if same else None
        if verdict is not None:
            baseline, score, method = verdict
            found.append(
                Anomaly(
                    metric="billedCost",
                    scope=scope,
                    value=_cost(currency, amount),
                    baseline=_cost(currency, baseline),
                    score=score,
                    method=method,
                )
            )
    return found


# --- comparable runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValues:
    """What is scored of a run or block: two numbers, and the billed cost per currency."""

    duration_seconds: float | None
    releves_inserted: float | None
    billed_cost: ByCurrency = field(default_factory=dict)

    def number(self, metric: NumberMetric) -> float | None:
        return self.duration_seconds if metric == "durationSeconds" else self.releves_inserted


def score_scope(scope: str, values: MetricValues, history: Sequence[MetricValues]) -> list[Anomaly]:
    """Anomalies of one scope (`run` or a domain) against its comparable runs (most recent first), in
    `METRICS` order."""
    history = history[:WINDOW]
    found = []
    for metric in _NUMBER_METRICS:
        past = [v for v in (h.number(metric) for h in history) if v is not None]
        anomaly = score_metric(metric, scope, values.number(metric), past)
        if anomaly is not None:
            found.append(anomaly)
    return found + score_cost(scope, values.billed_cost, [h.billed_cost for h in history])


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
    duration_seconds: float | None, releves_inserted: int | None, billed_cost: Mapping[str, str] | None
) -> MetricValues:
    """The scored values of a stored row: `billed_cost` as the read model holds it, {currency: text}."""
    return MetricValues(
        duration_seconds,
        float(releves_inserted) if releves_inserted is not None else None,
        {currency: Decimal(amount) for currency, amount in (billed_cost or {}).items()},
    )


def score_run(
    run: ScoredRun, run_history: Sequence[MetricValues], block_history: Mapping[str, Sequence[MetricValues]]
) -> RunScores:
    """Scores of one finished run, given the metrics of its comparable runs (most recent first).

    Comparable: `RUN_HISTORY` for the run, `BLOCK_HISTORY` for a block. Only a successful run gets
    run-scope scores (a failed run's volumes are partial by nature); blocks are scored when they
    succeeded.
    """
    found = score_scope("run", run.values, run_history) if run.status == HISTORY_STATUS else []
    blocks = {
        block.domain: score_scope(block.domain, block.values, block_history.get(block.domain, ()))
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
