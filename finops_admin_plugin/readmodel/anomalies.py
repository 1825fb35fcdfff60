"""Anomaly scores of a run and of its blocks (pure: the read model supplies the history).

For each metric (duration, rows inserted, billed cost) a value is compared with
the same metric of the last `WINDOW` successful *comparable* runs that started
before it. Comparable means like with like:
- run scope: same set of domains, same trigger (CRON, DELIVERY, MANUAL), same
  number of periods and same period roles (`period_roles`: CURRENT / PREVIOUS /
  OTHER month of the run's start), so a one-month reprocess of an old month is
  never compared with a scheduled run of the current month and N-1;
- block scope: the same keys with the block's domain instead of the run's domains;
- billed cost: per currency, against the same currency's cost in those runs that
  billed in it (never a baseline mixing currencies).

No verdict below `MIN_HISTORY` comparable values: a young history says nothing.

Score: robust z-score on a log scale. With t(x) = ln(x + floor) (`FLOORS`: one
second, 100 rows, one currency unit: a tiny baseline does not turn noise into a
large ratio), z = (t(x) - median(t)) / (1.4826 * MAD(t)), where 1.4826 * MAD
estimates the standard deviation of normal noise and is at least `MIN_SIGMA`
(a history of identical values has MAD 0). Flagged when |z| > `Z_THRESHOLD`
(3.5: about 1 in 2,000 values of log-normal noise) *and* the value is at least
`MIN_RATIO` times (or at most 1 / `MIN_RATIO` of) the baseline, the median of the
compared values (x1.4 for rows and cost, x3 for durations): a change of a few
percent is never worth a look, even in a very steady history, and slow runs up
to x2.5 are ordinary. Log scale because volumes, durations and costs vary by factors:
x3 and x1/3 are the same distance from the baseline.
A duration never counts as anomalous when it differs from its baseline by less
than `MIN_DURATION_DELTA` seconds: sub-second jitter of short runs is noise.
The arithmetic of costs is exact (`Decimal`); only the score becomes a float.
Only successful runs get run-scope scores (a failed run's volumes are partial by
nature); blocks are scored when they succeeded.
`bench/anomalies.py` measures the flag rates on a synthetic history (docs/benchmarks.md).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

from finops_admin_plugin.models import Anomaly, AnomalyMetric, CurrencyAmount
from finops_pipeline.money import EXACT, ByCurrency, decimal_text
from finops_pipeline.periods import period_role

__all__ = [
    "BLOCK_HISTORY",
    "FLOORS",
    "HISTORY_STATUS",
    "METRICS",
    "MIN_DURATION_DELTA",
    "MIN_HISTORY",
    "MIN_RATIO",
    "MIN_SIGMA",
    "RUN_HISTORY",
    "SCORED_RUN_STATUSES",
    "SHOWN_RUN_IDS",
    "WINDOW",
    "Z_THRESHOLD",
    "Comparable",
    "MetricValues",
    "RunScores",
    "ScoredBlock",
    "ScoredRun",
    "metric_values",
    "period_roles",
    "score_cost",
    "score_in_order",
    "score_metric",
    "score_run",
    "score_scope",
]

METRICS: Final[tuple[AnomalyMetric, ...]] = ("durationSeconds", "relevesInserted", "billedCost")
WINDOW: Final = 20
MIN_HISTORY: Final = 8
Z_THRESHOLD: Final = 3.5
MIN_SIGMA: Final = 0.05  # on the log scale: a spread below 5 % is taken as 5 %
# How far from the baseline a value must be, as a factor either way, besides its z-score: a batch
# twice as slow as usual happens (a busy warehouse); three times is worth a look.
MIN_RATIO: Final[Mapping[AnomalyMetric, float]] = {
    "durationSeconds": 3.0,
    "relevesInserted": 1.4,
    "billedCost": 1.4,
}
MIN_DURATION_DELTA: Final = 1.0
SHOWN_RUN_IDS: Final = 5  # the most recent compared runs named in an anomaly
_MAD_TO_SIGMA: Final = 1.4826
FLOORS: Final[Mapping[AnomalyMetric, float]] = {
    "durationSeconds": 1.0,
    "relevesInserted": 100.0,
    "billedCost": 1.0,
}


NumberMetric = Literal["durationSeconds", "relevesInserted"]
_NUMBER_METRICS: Final[tuple[NumberMetric, ...]] = ("durationSeconds", "relevesInserted")
_METHOD: Final = "robust_log_z"
_N = TypeVar("_N", float, Decimal)


def period_roles(periods: Iterable[str], run_start: datetime) -> str:
    """The roles of a run's periods relative to its start, sorted, comma separated
    (`CURRENT,PREVIOUS` for a scheduled run): part of what makes runs comparable.
    The read model's migration 9 computes the same text in SQL for stored runs."""
    return ",".join(sorted(period_role(p, run_start) for p in periods))


def _median(values: Sequence[_N]) -> _N:
    """The median; of decimals, exact under `EXACT` (a half of a sum of decimals has an end)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _verdict(metric: AnomalyMetric, value: _N, past: Sequence[_N]) -> tuple[_N, float] | None:
    """(baseline, score) when `value` is unusual against `past`, else None (also when too short)."""
    if len(past) < MIN_HISTORY:
        return None
    floor = FLOORS[metric]
    logs = [math.log(float(p) + floor) for p in past]
    center = _median(logs)
    sigma = max(_MAD_TO_SIGMA * _median([abs(v - center) for v in logs]), MIN_SIGMA)
    distance = math.log(float(value) + floor) - center
    z = distance / sigma
    if abs(z) <= Z_THRESHOLD or abs(distance) < math.log(MIN_RATIO[metric]):
        return None
    with decimal.localcontext(EXACT):
        baseline: _N = _median(past)
    if metric == "durationSeconds" and abs(float(value) - float(baseline)) < MIN_DURATION_DELTA:
        return None
    return baseline, round(z, 3)


def _anomaly(
    metric: AnomalyMetric,
    scope: str,
    value: Any,
    baseline: Any,
    score: float,
    sources: Sequence[MetricValues | None],
) -> Anomaly:
    """`sources`: the compared runs (None for a bare number), most recent first."""
    times = [s.sort_time for s in sources if s is not None and s.sort_time is not None]
    return Anomaly(
        metric=metric,
        scope=scope,
        value=value,
        baseline=baseline,
        score=score,
        method=_METHOD,
        threshold=Z_THRESHOLD,
        compared_runs=len(sources),
        compared_run_ids=[s.run_id for s in sources[:SHOWN_RUN_IDS] if s is not None and s.run_id],
        compared_from=min(times) if times else None,
        compared_to=max(times) if times else None,
    )


def score_metric(
    metric: NumberMetric,
    scope: str,
    value: float | None,
    history: Sequence[float] | Sequence[MetricValues],
) -> Anomaly | None:
    """An `Anomaly` when `value` is unusual against `history` (comparable runs' values or metrics,
    most recent first), else None."""
    if value is None:
        return None
    # Plain lists, no object per value: scoring a reindex runs this for every run, scope and metric.
    attribute = "duration_seconds" if metric == "durationSeconds" else "releves_inserted"
    past: list[float] = []
    sources: list[MetricValues | None] = []
    for h in history[:WINDOW]:
        if isinstance(h, MetricValues):
            number = getattr(h, attribute)
            if number is not None:
                past.append(number)
                sources.append(h)
        elif h is not None:
            past.append(float(h))
            sources.append(None)
    found = _verdict(metric, float(value), past)
    if found is None:
        return None
    baseline, score = found
    return _anomaly(metric, scope, value, baseline, score, sources)


def _cost(currency: str, amount: Decimal) -> list[CurrencyAmount]:
    return [CurrencyAmount(currency=currency, amount=decimal_text(amount))]


def score_cost(
    scope: str,
    value: Mapping[str, Decimal],
    history: Sequence[Mapping[str, Decimal]] | Sequence[MetricValues],
) -> list[Anomaly]:
    """One `billedCost` anomaly per currency whose cost is unusual against the same currency's cost in
    `history` (comparable runs, most recent first; those without the currency are not its history).
    Never a sum across currencies. Largest cost first, ties by currency code."""
    found = []
    recent = [
        h if isinstance(h, MetricValues) else MetricValues(None, None, dict(h)) for h in history[:WINDOW]
    ]
    for currency, amount in sorted(value.items(), key=lambda item: (-item[1], item[0])):
        sources = [h for h in recent if currency in h.billed_cost]
        verdict = _verdict("billedCost", amount, [h.billed_cost[currency] for h in sources])
        if verdict is not None:
            baseline, score = verdict
            found.append(
                _anomaly(
                    "billedCost", scope, _cost(currency, amount), _cost(currency, baseline), score, sources
                )
            )
    return found


# --- comparable runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValues:
    """What is scored of a run or block: two numbers, and the billed cost per currency; as history,
    also which run it comes from (named in the anomalies it is compared for)."""

    duration_seconds: float | None
    releves_inserted: float | None
    billed_cost: ByCurrency = field(default_factory=dict)
    run_id: str = ""
    sort_time: datetime | None = None

    def number(self, metric: NumberMetric) -> float | None:
        return self.duration_seconds if metric == "durationSeconds" else self.releves_inserted


def score_scope(scope: str, values: MetricValues, history: Sequence[MetricValues]) -> list[Anomaly]:
    """Anomalies of one scope (`run` or a domain) against its comparable runs (most recent first), in
    `METRICS` order."""
    history = history[:WINDOW]
    found = []
    for metric in _NUMBER_METRICS:
        anomaly = score_metric(metric, scope, values.number(metric), history)
        if anomaly is not None:
            found.append(anomaly)
    return found + score_cost(scope, values.billed_cost, history)


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
    trigger: str = ""
    period_roles: str = ""


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
        fields = {
            "domains": tuple(run.domains),
            "period_count": run.period_count,
            "domain": domain,
            "trigger": run.trigger,
            "period_roles": run.period_roles,
        }
        return tuple(fields[k] for k in self.keys)

    def history_sql(self, schema: str) -> str:
        """Metrics of the history of one run (or block), most recent first; parameters by `history_params`."""
        keys = " AND ".join(f"{k} = %({k})s" for k in self.keys)
        return (
            "SELECT run_id, sort_time, duration_seconds, releves_inserted, billed_cost "
            f"FROM {schema}.{self.table} "
            f"WHERE status = %(history_status)s AND {keys} AND sort_time < %(before)s "
            "AND run_id <> %(run_id)s ORDER BY sort_time DESC LIMIT %(window)s"
        )

    def history_params(self, run: ScoredRun, domain: str | None = None) -> dict[str, Any]:
        # psycopg sends a list, not a tuple, as a PostgreSQL array.
        values = (list(v) if isinstance(v, tuple) else v for v in self.key(run, domain))
        params: dict[str, Any] = dict(zip(self.keys, values, strict=True))
        params.update(history_status=HISTORY_STATUS, before=run.sort_time, run_id=run.run_id, window=WINDOW)
        return params


# A run is compared with runs of the same domains, trigger, number of periods and period roles; a
# block with blocks of the same domain and the same keys of their runs.
RUN_HISTORY: Final = Comparable("runs", ("domains", "trigger", "period_count", "period_roles"))
BLOCK_HISTORY: Final = Comparable("blocks", ("domain", "trigger", "period_count", "period_roles"))


@dataclass(frozen=True)
class RunScores:
    run_id: str
    run: list[Anomaly]
    blocks: dict[str, list[Anomaly]]

    @property
    def flagged(self) -> bool:
        return bool(self.run) or any(self.blocks.values())


def metric_values(
    duration_seconds: float | None,
    releves_inserted: int | None,
    billed_cost: Mapping[str, str] | None,
    run_id: str = "",
    sort_time: datetime | None = None,
) -> MetricValues:
    """The scored values of a stored row: `billed_cost` as the read model holds it, {currency: text}."""
    return MetricValues(
        duration_seconds,
        float(releves_inserted) if releves_inserted is not None else None,
        {currency: Decimal(amount) for currency, amount in (billed_cost or {}).items()},
        run_id,
        sort_time,
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
            # Only the last WINDOW are compared: reversing whole histories made a reindex quadratic.
            history = run_history.get(RUN_HISTORY.key(run), [])
            blocks = {
                b.domain: block_history.get(BLOCK_HISTORY.key(run, b.domain), [])[-WINDOW:][::-1]
                for b in run.blocks
            }
            yield score_run(run, history[-WINDOW:][::-1], blocks)
        for run in group:
            if run.status == HISTORY_STATUS:
                run_history.setdefault(RUN_HISTORY.key(run), []).append(run.values)
            for block in run.blocks:
                if block.status == HISTORY_STATUS:
                    block_history.setdefault(BLOCK_HISTORY.key(run, block.domain), []).append(block.values)
        index = end
