"""Anomaly scores of stored runs: the metrics `anomalies` scores are read from the read model, and
the anomalies found are written back into the run's list item and detail JSON.

`score_stored_run` scores one run that just finished against its stored history
(`anomalies.RUN_HISTORY` / `BLOCK_HISTORY` select it); `rescore_all` scores
every run in one pass over the stored metrics after a reindex. A test holds
their scores equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from finops_admin_plugin.models import Anomaly
from finops_admin_plugin.readmodel.anomalies import (
    BLOCK_HISTORY,
    HISTORY_STATUS,
    RUN_HISTORY,
    MetricValues,
    ScoredBlock,
    ScoredRun,
    metric_values,
    score_in_order,
    score_run,
)
from finops_admin_plugin.readmodel.schema import SCHEMA

__all__ = ["rescore_all", "score_stored_run"]

_SET_RUN_ANOMALIES: Final = (
    f"UPDATE {SCHEMA}.runs SET anomalous = %s, summary = jsonb_set(summary, '{{anomalies}}', %s) "
    "WHERE run_id = %s"
)
_SET_DETAIL: Final = f"UPDATE {SCHEMA}.run_details SET detail = %s WHERE run_id = %s"
_RUN_HISTORY_SQL: Final = RUN_HISTORY.history_sql(SCHEMA)
_BLOCK_HISTORY_SQL: Final = BLOCK_HISTORY.history_sql(SCHEMA)


def _attach_anomalies(
    detail: dict[str, Any], run_found: list[Anomaly], by_domain: dict[str, list[Anomaly]]
) -> tuple[list[Anomaly], list[dict[str, Any]]]:
    """Put each block's anomalies into `detail`; return the run's (its own + its blocks') and their JSON."""
    found = list(run_found)
    for block_json in detail.get("blocks", []):
        block = by_domain.get(block_json["domain"], [])
        block_json["anomalies"] = [a.model_dump(by_alias=True, mode="json") for a in block]
        found += block
    items = [a.model_dump(by_alias=True, mode="json") for a in found]
    detail["anomalies"] = items
    return found, items


def _values(row: dict[str, Any]) -> MetricValues:
    return metric_values(
        row["duration_seconds"], row["releves_inserted"], row["billed_cost"], row["run_id"], row["sort_time"]
    )


def _scored_run(row: dict[str, Any], blocks: Sequence[dict[str, Any]]) -> ScoredRun:
    return ScoredRun(
        run_id=row["run_id"],
        status=row["status"],
        domains=tuple(row["domains"]),
        period_count=row["period_count"],
        sort_time=row["sort_time"],
        values=_values(row),
        blocks=tuple(ScoredBlock(b["domain"], b["status"], _values(b)) for b in blocks),
        trigger=row["trigger"],
        period_roles=row["period_roles"],
    )


def score_stored_run(conn: psycopg.Connection, run_id: str) -> list[Anomaly]:
    """Compute and store the anomalies of a finished run against the comparable runs stored before it."""
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute(
        f"SELECT r.run_id, r.status, r.trigger, r.domains, r.period_count, r.period_roles, r.sort_time, "
        f"r.duration_seconds, "
        f"r.releves_inserted, r.billed_cost, d.detail FROM {SCHEMA}.runs r "
        f"JOIN {SCHEMA}.run_details d USING (run_id) WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    if row is None:
        return []
    blocks = cur.execute(
        f"SELECT run_id, sort_time, domain, status, duration_seconds, releves_inserted, billed_cost "
        f"FROM {SCHEMA}.blocks "
        "WHERE run_id = %s ORDER BY domain",
        (run_id,),
    ).fetchall()
    run = _scored_run(row, blocks)
    run_history: list[MetricValues] = []
    if run.status == HISTORY_STATUS:
        run_history = [
            _values(h) for h in cur.execute(_RUN_HISTORY_SQL, RUN_HISTORY.history_params(run)).fetchall()
        ]
    block_history: dict[str, list[MetricValues]] = {}
    for block in run.blocks:
        if block.status != HISTORY_STATUS:
            continue
        params = BLOCK_HISTORY.history_params(run, block.domain)
        block_history[block.domain] = [_values(h) for h in cur.execute(_BLOCK_HISTORY_SQL, params).fetchall()]
    scores = score_run(run, run_history, block_history)
    detail = row["detail"]
    found, items = _attach_anomalies(detail, scores.run, scores.blocks)
    cur.execute(_SET_RUN_ANOMALIES, (bool(found), Jsonb(items), run_id))
    cur.execute(_SET_DETAIL, (Jsonb(detail), run_id))
    return found


def rescore_all(conn: psycopg.Connection) -> int:
    """Score every finished run, oldest first (after a reindex); returns how many were flagged.

    One pass over the stored metrics (`anomalies.score_in_order`) instead of several queries
    per run. Only flagged runs are written: a reindex stores every run with no anomalies.
    """
    cur = conn.cursor(row_factory=dict_row)
    blocks_of: dict[str, list[dict[str, Any]]] = {}
    for block in cur.execute(
        f"SELECT run_id, sort_time, domain, status, duration_seconds, releves_inserted, billed_cost "
        f"FROM {SCHEMA}.blocks ORDER BY run_id, domain"
    ):
        blocks_of.setdefault(block["run_id"], []).append(block)
    runs = [
        _scored_run(row, blocks_of.get(row["run_id"], []))
        for row in cur.execute(
            f"SELECT run_id, status, trigger, domains, period_count, period_roles, sort_time, "
            "duration_seconds, "
            f"releves_inserted, billed_cost FROM {SCHEMA}.runs ORDER BY sort_time, run_id"
        ).fetchall()
    ]
    flagged = [(s.run_id, s.run, s.blocks) for s in score_in_order(runs) if s.flagged]
    for start in range(0, len(flagged), 500):
        _store_anomalies(conn, flagged[start : start + 500])
    return len(flagged)


def _store_anomalies(
    conn: psycopg.Connection, flagged: Sequence[tuple[str, list[Anomaly], dict[str, list[Anomaly]]]]
) -> None:
    """Write computed anomalies into runs and details exactly as `score_stored_run` does."""
    details: dict[str, dict[str, Any]] = {
        row[0]: row[1]
        for row in conn.execute(
            f"SELECT run_id, detail FROM {SCHEMA}.run_details WHERE run_id = ANY(%s)",
            ([f[0] for f in flagged],),
        )
    }
    run_updates = []
    detail_updates = []
    for run_id, run_found, by_domain in flagged:
        detail = details[run_id]
        found, items = _attach_anomalies(detail, run_found, by_domain)
        run_updates.append((bool(found), Jsonb(items), run_id))
        detail_updates.append((Jsonb(detail), run_id))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_SET_RUN_ANOMALIES, run_updates)
        cur.executemany(_SET_DETAIL, detail_updates)
