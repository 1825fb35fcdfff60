"""Failures grouped by cause: the signatures of FAILED runs (`failures` table) and their reads.

A FAILED run is stored with one `failures` row per signature it failed with: one per failed
block (the domains sharing a cause are merged into one row), or, when no block failed (the plan
or the views' refresh did), one for the run. `GET /failures` aggregates those rows per
signature; the run list and detail read how many runs share a run's signature, and since when.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from finops_admin_plugin.models import RunDetailResponse
from finops_admin_plugin.readmodel.query import CursorError, CursorKey
from finops_admin_plugin.readmodel.schema import SCHEMA
from finops_admin_plugin.readmodel.signature import failure_cause, failure_signature
from finops_pipeline.contract import DOMAINS

__all__ = [
    "LATEST_RUNS",
    "FailureFilters",
    "FailurePage",
    "RunFailure",
    "SignatureStats",
    "decode_cursor",
    "encode_cursor",
    "failure_rows",
    "failures_page",
    "run_failures",
    "signature_stats",
    "signed",
]

LATEST_RUNS: Final = 5  # run ids listed per signature, newest first
RUN_KIND: Final = "RUN"  # a run that failed outside any domain's block (plan, views' refresh)
SOURCE_PREFIX: Final = "source:"


@dataclass(frozen=True)
class RunFailure:
    """One cause a FAILED run failed with, and the domains it struck in that run."""

    signature: str
    kind: str
    text: str
    message: str  # as the run shows it (unmasked)
    domains: tuple[str, ...]


def run_failures(detail: RunDetailResponse) -> list[RunFailure]:
    """The signatures of a FAILED run (none for any other status), first failure first."""
    if detail.status != "FAILED":
        return []
    found: dict[str, RunFailure] = {}
    blocks = [b for b in detail.blocks if b.status == "FAILED" and b.errors]
    for block in blocks:
        error = block.errors[0]
        gate = next((q.gate for q in block.quality if q.gate), None)
        kind, cause = failure_cause(error.kind, error.message, gate)
        signature, text = failure_signature(kind, cause)
        known = found.get(signature)
        domains = (known.domains if known else ()) + (block.domain,)
        found[signature] = RunFailure(
            signature, kind, text, known.message if known else error.message, domains
        )
    if not found:
        message = detail.errors.message or "run failed (Dagster recorded no cause)"
        kind, cause = failure_cause(RUN_KIND, message)
        signature, text = failure_signature(kind, cause)
        found[signature] = RunFailure(signature, kind, text, message, tuple(detail.domains))
    failures = list(found.values())
    # The run's own message (its earliest failure) first: that is the signature its summary shows.
    failures.sort(key=lambda f: f.message != detail.errors.message)
    return failures


def signed(detail: RunDetailResponse) -> tuple[RunDetailResponse, list[RunFailure]]:
    """The detail with `errors.signature` set (a FAILED run's first cause), and its failures."""
    failures = run_failures(detail)
    if not failures:
        return detail, failures
    errors = detail.errors.model_copy(update={"signature": failures[0].signature})
    return detail.model_copy(update={"errors": errors}), failures


def failure_rows(detail: RunDetailResponse, failures: Sequence[RunFailure]) -> list[tuple[Any, ...]]:
    """`failures` rows: run_id, signature, kind, text, domains, source, failed_at."""
    launched_by = detail.launched_by or ""
    source = launched_by[len(SOURCE_PREFIX) :] if launched_by.startswith(SOURCE_PREFIX) else None
    failed_at = detail.end_time or detail.start_time or detail.created_time
    return [
        (detail.run_id, f.signature, f.kind, f.text, list(f.domains), source, failed_at) for f in failures
    ]


FAILURE_COLUMNS: Final = "run_id, signature, kind, text, domains, source, failed_at"

# --- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureFilters:
    failed_from: datetime | None = None  # inclusive
    failed_before: datetime | None = None  # exclusive

    def fingerprint(self) -> str:
        raw = json.dumps(
            ["failures", self.failed_from and self.failed_from.isoformat(),
             self.failed_before and self.failed_before.isoformat()]
        ).encode()  # fmt: skip
        return hashlib.sha256(raw).hexdigest()[:16]

    def where(self) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = [sql.SQL("TRUE")]
        params: list[Any] = []
        if self.failed_from is not None:
            clauses.append(sql.SQL("failed_at >= %s"))
            params.append(self.failed_from)
        if self.failed_before is not None:
            clauses.append(sql.SQL("failed_at < %s"))
            params.append(self.failed_before)
        return sql.SQL(" AND ").join(clauses), params


def _mac(key: CursorKey, payload: bytes) -> str:
    digest = hmac.new(key.secret, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(key: CursorKey, filters: FailureFilters, last_seen: datetime, signature: str) -> str:
    payload = json.dumps(
        {"f": filters.fingerprint(), "k": last_seen.isoformat(), "s": signature}, separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _mac(key, payload)


def decode_cursor(key: CursorKey, cursor: str, filters: FailureFilters) -> tuple[datetime, str]:
    """(last seen, signature) after which the next page starts; `CursorError` for any other cursor."""
    body, dot, mac = cursor.partition(".")
    if not dot or not body or not mac or len(cursor) > 1000:
        raise CursorError("it is not a cursor this API issued")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("it is not a cursor this API issued") from None
    if not hmac.compare_digest(_mac(key, payload), mac):
        raise CursorError("its signature does not match (altered, or issued by another installation)")
    try:
        data = json.loads(payload)
        fingerprint, value, signature = data["f"], data["k"], data["s"]
        last_seen = datetime.fromisoformat(value)
    except (ValueError, KeyError, TypeError):
        raise CursorError("it is not a cursor this API issued") from None
    if fingerprint != filters.fingerprint():
        raise CursorError("it was issued for other filters; restart from the first page")
    return last_seen, str(signature)


@dataclass(frozen=True)
class FailurePage:
    items: list[dict[str, Any]]
    next_after: tuple[datetime, str] | None
    total: int


def failures_page(
    conn: psycopg.Connection, filters: FailureFilters, limit: int, after: tuple[datetime, str] | None
) -> FailurePage:
    """Signatures seen in the window, last seen first: runs, first/last seen, domains, sources, runs."""
    where, params = filters.where()
    page_where: sql.Composable = sql.SQL("TRUE")
    page_params: list[Any] = []
    if after is not None:
        page_where = sql.SQL("(last_seen, signature) < (%s, %s)")
        page_params = [after[0], after[1]]
    query = sql.SQL(
        "WITH f AS MATERIALIZED (SELECT * FROM {schema}.failures WHERE {where}), "
        "g AS (SELECT signature, min(kind) AS kind, min(text) AS text, count(DISTINCT run_id) AS runs, "
        "  min(failed_at) AS first_seen, max(failed_at) AS last_seen, "
        "  (array_agg(run_id ORDER BY failed_at DESC, run_id DESC))[1:%s] AS latest, "
        "  array_remove(array_agg(DISTINCT source), NULL) AS sources "
        "  FROM f GROUP BY signature), "
        "d AS (SELECT signature, array_agg(DISTINCT domain) AS domains FROM f, unnest(f.domains) AS domain "
        "  GROUP BY signature) "
        "SELECT (SELECT count(*) FROM g) AS total, g.signature, g.kind, g.text, g.runs, g.first_seen, "
        "  g.last_seen, coalesce(d.domains, '{{}}'), g.sources, g.latest "
        "FROM g LEFT JOIN d USING (signature) WHERE {page_where} "
        "ORDER BY g.last_seen DESC, g.signature DESC LIMIT %s"
    ).format(schema=sql.Identifier(SCHEMA), where=where, page_where=page_where)
    rows = conn.execute(query, [*params, LATEST_RUNS, *page_params, limit + 1]).fetchall()
    total = int(rows[0][0]) if rows else _count(conn, filters)
    order = {d: i for i, d in enumerate(DOMAINS)}
    items = [
        {
            "signature": r[1],
            "kind": r[2],
            "text": r[3],
            "count": int(r[4]),
            "first_seen": r[5],
            "last_seen": r[6],
            "domains": sorted(r[7], key=lambda d: order.get(d, len(order))),
            "sources": sorted(r[8]),
            "runs": list(r[9]),
        }
        for r in rows
    ]
    next_after = None
    if len(items) > limit:
        items = items[:limit]
        next_after = (items[-1]["last_seen"], items[-1]["signature"])
    return FailurePage(items=items, next_after=next_after, total=total)


def _count(conn: psycopg.Connection, filters: FailureFilters) -> int:
    where, params = filters.where()
    query = sql.SQL("SELECT count(DISTINCT signature) FROM {schema}.failures WHERE {where}").format(
        schema=sql.Identifier(SCHEMA), where=where
    )
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class SignatureStats:
    runs: int
    first_seen: datetime


def signature_stats(conn: psycopg.Connection, signatures: Sequence[str]) -> dict[str, SignatureStats]:
    """How many runs failed with each signature, and since when (every stored run, no window)."""
    if not signatures:
        return {}
    rows = conn.execute(
        f"SELECT signature, runs, first_seen FROM {SCHEMA}.signature_counts WHERE signature = ANY(%s)",
        (list(dict.fromkeys(signatures)),),
    ).fetchall()
    return {r[0]: SignatureStats(int(r[1]), r[2]) for r in rows}
