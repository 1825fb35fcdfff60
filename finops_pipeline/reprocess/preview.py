"""Dry run of a reprocess: what it would replace, read and refresh, changing nothing.

For each (period, domain) it reads the landing files with the same reader and
validation rules as the load (`finops_pipeline.landing.focus`), counts the rows
that would be inserted and rejected (by reason) without loading them, and
counts the rows currently in `finops.releves` by the run that loaded them.
The outcome rules are the batch's: a pair with no landing file or an unreadable
file would fail and keep its rows; the materialized views are refreshed only
when every selected pair would load.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import psycopg

from finops_pipeline.constants import RELEVES_TABLE
from finops_pipeline.contract import MATERIALIZED_VIEWS
from finops_pipeline.landing.focus import FocusFileError, validate_file
from finops_pipeline.landing.store import LandingFolderMissing, LandingStore
from finops_pipeline.money import ByCurrency, add_by_currency

__all__ = [
    "FilePreview",
    "LandingPreview",
    "PairPreview",
    "ReprocessPreview",
    "preview_landing",
    "preview_reprocess",
]

_DRY_RUN_ID = "dry-run"  # stands for the run id inside validation; never written anywhere


@dataclass
class FilePreview:
    name: str
    size_bytes: int
    rows_read: int = 0
    rows_to_load: int = 0
    rows_rejected: int = 0


@dataclass
class LandingPreview:
    folder: str
    files: list[FilePreview] = field(default_factory=list)
    rows_read: int = 0
    rows_to_load: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    billed_cost: ByCurrency = field(default_factory=dict)  # exact, per billing currency
    error: str | None = None  # why the load of this pair would fail

    @property
    def rows_rejected(self) -> int:
        return int(self.rejected.total())


@dataclass
class PairPreview:
    period: str
    domain: str
    loaded_rows: int
    loaded_by_run: dict[str, int]  # run id -> rows currently in finops.releves
    landing: LandingPreview

    @property
    def would_load(self) -> bool:
        return self.landing.error is None


@dataclass
class ReprocessPreview:
    pairs: list[PairPreview]

    @property
    def would_refresh(self) -> list[str]:
        """The MVs refreshed at the end: all of them, or none when a pair would fail."""
        return list(MATERIALIZED_VIEWS) if all(p.would_load for p in self.pairs) else []


def preview_landing(store: LandingStore, domain: str, period: str) -> LandingPreview:
    """Read and validate (period, domain)'s landing files as the load would, without loading."""
    preview = LandingPreview(folder=store.folder_uri(domain, period))
    try:
        files = store.list_files(domain, period)
    except LandingFolderMissing as exc:
        preview.error = str(exc)
        return preview
    for file in files:
        item = FilePreview(name=file.name, size_bytes=file.size)
        preview.files.append(item)
        try:
            with store.open(file) as handle:
                for checked in validate_file(handle, file.name, domain, period, _DRY_RUN_ID):
                    item.rows_read += checked.rows_read
                    item.rows_rejected += int(checked.rejected.total())
                    item.rows_to_load += checked.valid.num_rows if checked.valid is not None else 0
                    preview.rejected.update(checked.rejected)
                    preview.billed_cost = add_by_currency(preview.billed_cost, checked.billed_cost)
        except FocusFileError as exc:
            preview.error = str(exc)
        preview.rows_read += item.rows_read
        preview.rows_to_load += item.rows_to_load
    if preview.error is not None:
        # The load's transaction would roll back: nothing of this pair would change.
        preview.rows_to_load = 0
    return preview


def _loaded(
    database_url: str, periods: list[str], domains: list[str]
) -> dict[tuple[str, str], dict[str, int]]:
    found: dict[tuple[str, str], dict[str, int]] = {}
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (RELEVES_TABLE,)).fetchone()
        if row is None or row[0] is None:
            return found  # never loaded: the first batch run creates the warehouse schema
        rows = conn.execute(
            f"SELECT period, domain, dagster_run_id, count(*) FROM {RELEVES_TABLE} "
            "WHERE period = ANY(%s) AND domain = ANY(%s) GROUP BY 1, 2, 3",
            (periods, domains),
        ).fetchall()
    for period, domain, run_id, count in rows:
        found.setdefault((period, domain), {})[run_id] = int(count)
    return found


def preview_reprocess(
    database_url: str, store: LandingStore, periods: list[str], domains: list[str]
) -> ReprocessPreview:
    """The whole dry run, pairs in the order of `periods` then `domains`."""
    loaded = _loaded(database_url, periods, domains)
    pairs = []
    for period in periods:
        for domain in domains:
            by_run = loaded.get((period, domain), {})
            pairs.append(
                PairPreview(
                    period=period,
                    domain=domain,
                    loaded_rows=sum(by_run.values()),
                    loaded_by_run=dict(sorted(by_run.items(), key=lambda kv: (-kv[1], kv[0]))),
                    landing=preview_landing(store, domain, period),
                )
            )
    return ReprocessPreview(pairs=pairs)
