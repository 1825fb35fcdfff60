"""The read model's reads: run-list pages (filters, sorts, opaque keyset cursors over
`finops_admin.runs`), the CSV export, a run's stored detail and list item, and the latest loads.

A page is ONE statement: the keyset page (index scan on the sort index, `LIMIT
n+1` to know whether there is a next page) and the total of the same filters.
The total is a sum over `run_counts` (per status, trigger, periods, domains,
anomalous; kept by triggers) unless a time range or a run-id search is given:
only those count the matching runs themselves.

The cursor is `base64url(json) "." base64url(hmac)`, keyed by a secret kept in
the read model, and bound to the filters and sort it was issued for: a forged,
corrupted or reused-with-other-filters cursor is refused, never half-honoured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import ValidationError

from finops_admin_plugin.mapping.runs import MAPPING_VERSION
from finops_admin_plugin.models import LogExcerpt, RunDetailResponse
from finops_admin_plugin.readmodel.schema import SCHEMA

__all__ = [
    "SORTS",
    "CursorError",
    "CursorKey",
    "ListedRun",
    "Page",
    "RunExport",
    "RunFilters",
    "Sort",
    "StoredDetail",
    "count_and_page_sql",
    "count_runs",
    "export_currencies_sql",
    "export_rows",
    "export_sql",
    "latest_loads",
    "load_cursor_key",
    "page",
    "stored_detail",
    "stored_summary",
]

Sort = Literal["-startTime", "startTime", "-durationSeconds", "durationSeconds"]
SORTS: Final[tuple[Sort, ...]] = ("-startTime", "startTime", "-durationSeconds", "durationSeconds")
_SORT_COLUMN: Final = {"startTime": "sort_time", "durationSeconds": "duration_sort"}


class CursorError(ValueError):
    """A cursor that this server did not issue for these filters."""


@dataclass(frozen=True)
class RunFilters:
    """Validated list filters (the API turns query parameters into this)."""

    statuses: tuple[str, ...] = ()
    periods: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    trigger: str | None = None
    start_from: datetime | None = None  # inclusive
    start_before: datetime | None = None  # exclusive
    q: str | None = None
    anomalous: bool | None = None
    signature: str | None = None  # runs that failed with this failure signature
    sort: Sort = "-startTime"

    def fingerprint(self) -> str:
        """Stable digest of what a cursor depends on (not the page size)."""
        payload = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        raw = json.dumps(payload, sort_keys=True, default=list).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    @property
    def counted(self) -> bool:
        """True when `run_counts` answers the total: only its columns are filtered on."""
        return self.start_from is None and self.start_before is None and not self.q and not self.signature

    def where(self) -> tuple[sql.Composable, list[Any]]:
        """The WHERE clause on `runs`; with `counted`, it reads only columns `run_counts` has too."""
        clauses: list[sql.Composable] = []
        params: list[Any] = []
        if self.statuses:
            clauses.append(sql.SQL("status = ANY(%s)"))
            params.append(list(self.statuses))
        if self.periods:
            clauses.append(sql.SQL("periods && %s::text[]"))
            params.append(list(self.periods))
        if self.domains:
            clauses.append(sql.SQL("domains && %s::text[]"))
            params.append(list(self.domains))
        if self.trigger:
            clauses.append(sql.SQL("trigger = %s"))
            params.append(self.trigger)
        if self.start_from is not None:
            clauses.append(sql.SQL("sort_time >= %s"))
            params.append(self.start_from)
        if self.start_before is not None:
            clauses.append(sql.SQL("sort_time < %s"))
            params.append(self.start_before)
        if self.q:
            clauses.append(sql.SQL("run_id LIKE %s"))
            params.append(self.q.replace("\\", "").replace("%", "").replace("_", "") + "%")
        if self.anomalous is not None:
            clauses.append(sql.SQL("anomalous") if self.anomalous else sql.SQL("NOT anomalous"))
        if self.signature:
            clauses.append(
                sql.SQL("run_id IN (SELECT run_id FROM {}.failures WHERE signature = %s)").format(
                    sql.Identifier(SCHEMA)
                )
            )
            params.append(self.signature)
        if not clauses:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(clauses), params


@dataclass(frozen=True)
class CursorKey:
    secret: bytes = field(repr=False)

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self.secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, filters: RunFilters, sort_value: Any, run_id: str) -> str:
        value = sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value
        payload = json.dumps(
            {"f": filters.fingerprint(), "k": value, "i": run_id}, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + self._mac(payload)

    def decode(self, cursor: str, filters: RunFilters) -> tuple[Any, str]:
        """(sort value, run id) after which the next page starts."""
        body, dot, mac = cursor.partition(".")
        if not dot or not body or not mac or len(cursor) > 1000:
            raise CursorError("it is not a cursor this API issued")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise CursorError("it is not a cursor this API issued") from None
        if not hmac.compare_digest(self._mac(payload), mac):
            raise CursorError("its signature does not match (altered, or issued by another installation)")
        try:
            data = json.loads(payload)
            fingerprint, value, run_id = data["f"], data["k"], data["i"]
        except (ValueError, KeyError, TypeError):
            raise CursorError("it is not a cursor this API issued") from None
        if fingerprint != filters.fingerprint():
            raise CursorError("it was issued for other filters or another sort; restart from the first page")
        column = _SORT_COLUMN[filters.sort.lstrip("-")]
        try:
            key = datetime.fromisoformat(value) if column == "sort_time" else float(value)
        except (TypeError, ValueError):
            raise CursorError("it is not a cursor this API issued") from None
        return key, str(run_id)


def _order(sort: Sort) -> tuple[sql.Composable, str, bool]:
    descending = sort.startswith("-")
    column = _SORT_COLUMN[sort.lstrip("-")]
    direction = sql.SQL("DESC" if descending else "ASC")
    order = sql.SQL("{col} {dir}, run_id {dir}").format(col=sql.Identifier(column), dir=direction)
    return order, column, descending


def _listed(alias: str) -> sql.Composed:
    """A stored summary as the list serves it: JSON text (parsing 50 summaries into dicts and
    writing them out again cost about 1 ms a page), with its start and end time for its links. A
    summary stored before costs were per currency has one figure over every currency: it cannot be
    split, so it is listed without it (`[]`) until the projector re-projects the run. Then, for a
    failure signature, how many runs failed with it and since when (`_seen`, joined as `s`)."""
    return sql.SQL(
        "(CASE WHEN jsonb_typeof({a}.summary #> '{{volumes,billedCost}}') = 'array' THEN {a}.summary "
        "ELSE jsonb_set({a}.summary, '{{volumes,billedCost}}', '[]') END)::text, "
        "{a}.summary ->> 'startTime', {a}.summary ->> 'endTime', s.runs, s.first_seen"
    ).format(a=sql.Identifier(alias))


def _seen(alias: str) -> sql.Composed:
    """The runs and first failure of the signature of `alias`'s summary (`signature_counts`), none
    without one."""
    return sql.SQL(
        "LEFT JOIN {schema}.signature_counts s ON s.signature = {a}.summary #>> '{{errors,signature}}'"
    ).format(schema=sql.Identifier(SCHEMA), a=sql.Identifier(alias))


def count_and_page_sql(
    filters: RunFilters, limit: int, after: tuple[Any, str] | None
) -> tuple[sql.Composed, list[Any]]:
    """total, then up to `limit + 1` rows (sort value, run id, summary text, start time, end time);
    total comes on every row.

    Two shapes of page, because of how runs are spread in time:
    - most filters match a good share of all runs, spread over time: walking the
      sort index and skipping non-matching runs finds a page quickly;
    - a period, run-id or signature filter matches few runs, and a period's runs all started
      around that month: walking the sort index from the newest run would skip
      every run since (33 ms for a period 20 months back, at 100k runs). Its
      matches are collected first through the GIN/prefix index (MATERIALIZED:
      the planner may not turn it back into an index walk), then sorted.
    The page is skipped when the total is 0, which would otherwise walk the whole index.
    """
    where, params = filters.where()
    order, column, descending = _order(filters.sort)
    page_where = where
    page_params = list(params)
    if after is not None:
        comparison = sql.SQL("<" if descending else ">")
        page_where = sql.SQL("{w} AND ({col}, run_id) {cmp} (%s, %s)").format(
            w=where, col=sql.Identifier(column), cmp=comparison
        )
        page_params += [after[0], after[1]]
    total = sql.SQL(
        "SELECT coalesce(sum(n), 0)::bigint AS total FROM {schema}.run_counts WHERE {where}"
        if filters.counted
        else "SELECT count(*) AS total FROM {schema}.runs WHERE {where}"
    ).format(schema=sql.Identifier(SCHEMA), where=where)
    names = {
        "schema": sql.Identifier(SCHEMA),
        "total": total,
        "col": sql.Identifier(column),
        "page_where": page_where,
        "order": order,
        "key_order": _order_by(sql.SQL("sort_value"), descending),
        "page_order": _order_by(sql.SQL("p.sort_value"), descending, run_id=sql.SQL("p.run_id")),
    }
    if filters.periods or filters.q or filters.signature:
        query = sql.SQL(
            "WITH matching AS MATERIALIZED ("
            "  SELECT {col} AS sort_value, run_id FROM {schema}.runs WHERE {page_where}) "
            "SELECT c.total, p.sort_value, p.run_id, {listed} "
            "FROM ({total}) c "
            "LEFT JOIN LATERAL ("
            "  SELECT sort_value, run_id FROM matching WHERE c.total > 0 ORDER BY {key_order} LIMIT %s"
            ") p ON TRUE "
            "LEFT JOIN {schema}.runs r ON r.run_id = p.run_id "
            "{seen} "
            "ORDER BY {page_order}"
        ).format(**names, listed=_listed("r"), seen=_seen("r"))
        return query, [*page_params, *params, limit + 1]
    query = sql.SQL(
        "SELECT c.total, p.sort_value, p.run_id, {listed} "
        "FROM ({total}) c "
        "LEFT JOIN LATERAL ("
        "  SELECT {col} AS sort_value, run_id, summary FROM {schema}.runs"
        "  WHERE c.total > 0 AND {page_where} ORDER BY {order} LIMIT %s"
        ") p ON TRUE "
        "{seen} "
        "ORDER BY {page_order}"  # the join may reorder what the page walk returned in order
    ).format(**names, listed=_listed("p"), seen=_seen("p"))
    return query, [*params, *page_params, limit + 1]


def _order_by(key: sql.Composable, descending: bool, run_id: sql.Composable | None = None) -> sql.Composed:
    direction = sql.SQL("DESC" if descending else "ASC")
    return sql.SQL("{key} {dir}, {run_id} {dir}").format(
        key=key, dir=direction, run_id=run_id if run_id is not None else sql.SQL("run_id")
    )


def export_sql(filters: RunFilters) -> tuple[sql.Composed, list[Any]]:
    where, params = filters.where()
    order, _, _ = _order(filters.sort)
    query = sql.SQL("SELECT summary FROM {schema}.runs WHERE {where} ORDER BY {order}").format(
        schema=sql.Identifier(SCHEMA), where=where, order=order
    )
    return query, params


def export_currencies_sql(filters: RunFilters) -> tuple[sql.Composed, list[Any]]:
    """The currencies the billed cost of the matching runs is in, sorted by code."""
    where, params = filters.where()
    query = sql.SQL(
        "SELECT DISTINCT jsonb_object_keys(billed_cost) AS currency FROM {schema}.runs WHERE {where} "
        "ORDER BY 1"
    ).format(schema=sql.Identifier(SCHEMA), where=where)
    return query, params


# --- reads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedRun:
    """A run's list item as stored (a JSON object without links), and what its links are built from."""

    run_id: str
    start_time: str | None
    end_time: str | None
    json: str
    # Runs that failed with this run's failure signature, and the first of them to fail.
    seen_in_runs: int | None = None
    first_seen: datetime | None = None


@dataclass(frozen=True)
class Page:
    runs: list[ListedRun]
    next_after: tuple[Any, str] | None  # (sort value, run id) of the last item when there is more
    total: int

    @property
    def items(self) -> list[dict[str, Any]]:
        """The list items, without links, parsed (the API serves `runs`' JSON text as it is)."""
        return [json.loads(run.json) for run in self.runs]


def load_cursor_key(conn: psycopg.Connection) -> CursorKey | None:
    """The key that signs list cursors, or None before the schema's migrations ran."""
    row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'cursor_key'").fetchone()
    return CursorKey(bytes.fromhex(row[0])) if row is not None else None


def page(conn: psycopg.Connection, filters: RunFilters, limit: int, after: tuple[Any, str] | None) -> Page:
    query, params = count_and_page_sql(filters, limit, after)
    rows = conn.execute(query, params).fetchall()
    total = int(rows[0][0]) if rows else 0
    found = [r for r in rows if r[2] is not None]
    next_after = None
    if len(found) > limit:
        found = found[:limit]
        next_after = (found[-1][1], found[-1][2])
    runs = [
        ListedRun(run_id=r[2], start_time=r[4], end_time=r[5], json=r[3], seen_in_runs=r[6], first_seen=r[7])
        for r in found
    ]
    return Page(runs=runs, next_after=next_after, total=total)


@dataclass(frozen=True)
class RunExport:
    """The runs of an export and the currencies of their billed cost (the CSV's cost columns)."""

    currencies: list[str]
    rows: Iterator[dict[str, Any]]


def export_rows(conn: psycopg.Connection, filters: RunFilters, batch: int) -> Iterator[Any]:
    """The currencies of the runs matching `filters` (a sorted list, yielded first), then every such
    run, in order, streamed with a server-side cursor. One snapshot for both: a run stored meanwhile
    cannot bring a currency the columns miss."""
    query, params = export_sql(filters)
    currencies_query, currencies_params = export_currencies_sql(filters)
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield [row[0] for row in conn.execute(currencies_query, currencies_params)]
        with conn.cursor(name="finops_export") as cur:
            cur.itersize = batch
            cur.execute(query, params)
            for (summary,) in cur:
                yield summary


@dataclass(frozen=True)
class StoredDetail:
    """A run's detail as the read model stores it."""

    detail: RunDetailResponse
    active: bool  # queued or running: the stored detail may be behind Dagster
    # The failure excerpt of an ended FAILED run (None for the others, or when no step is to blame);
    # `excerpt_stored` is False for a run projected before excerpts were stored.
    excerpt: LogExcerpt | None
    excerpt_stored: bool


def stored_detail(conn: psycopg.Connection, run_id: str) -> StoredDetail | None:
    """The stored detail of a run, or None when the read model has not seen it.

    A FAILED run's detail says how many runs failed with its signature, and since when: read in
    the same query from `signature_counts` (never stored in the detail, which every new failure
    of that cause would make stale).
    """
    # As text, validated once by pydantic's JSON parser: no dicts built only to be validated.
    row = conn.execute(
        f"SELECT d.detail::text, r.active, d.excerpt::text, r.mapping_version >= %s, s.runs, s.first_seen "
        f"FROM {SCHEMA}.runs r JOIN {SCHEMA}.run_details d USING (run_id) "
        f"LEFT JOIN {SCHEMA}.signature_counts s ON s.signature = d.detail #>> '{{errors,signature}}' "
        f"WHERE r.run_id = %s",
        (MAPPING_VERSION, run_id),
    ).fetchone()
    if row is None:
        return None
    try:
        detail = RunDetailResponse.model_validate_json(row[0])
    except ValidationError:
        if row[3]:
            raise
        # Stored by an older mapping whose shape this one no longer reads (a float billedCost
        # before mapping 3): answered from Dagster, like a run not projected yet, until the
        # projector re-projects it.
        return None
    if row[4] is not None and detail.errors.signature is not None:
        errors = detail.errors.model_copy(update={"seen_in_runs": int(row[4]), "first_seen": row[5]})
        detail = detail.model_copy(update={"errors": errors})
    return StoredDetail(
        detail=detail,
        active=bool(row[1]),
        excerpt=LogExcerpt.model_validate_json(row[2]) if row[2] is not None else None,
        excerpt_stored=bool(row[3]),
    )


def stored_summary(conn: psycopg.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT summary FROM {SCHEMA}.runs WHERE run_id = %s", (run_id,)).fetchone()
    return row[0] if row else None


def latest_loads(conn: psycopg.Connection, periods: Sequence[str]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT DISTINCT ON (period, domain) period, domain, run_id, loaded_at, releves_inserted, "
            f"rows_read FROM {SCHEMA}.period_loads WHERE period = ANY(%s) "
            "ORDER BY period, domain, loaded_at DESC",
            (list(periods),),
        ).fetchall()


def count_runs(conn: psycopg.Connection) -> int:
    row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.runs").fetchone()
    return int(row[0]) if row else 0
