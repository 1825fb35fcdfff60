"""Dry run of a reprocess: what it would replace, read and refresh, changing nothing.

For each (period, domain) it reads the landing files with the same reader and
validation rules as the load (`finops_pipeline.landing.focus`), counts the rows
that would be inserted and rejected (by reason) without loading them, and
counts the rows currently in `finops.releves` by the run that loaded them.
The outcome rules are the batch's: a pair with no landing file or an unreadable
file would fail and keep its rows; the materialized views are refreshed only
when every selected pair would load.

With a sources file (FINOPS_SOURCES), each pair's files are those of the latest complete
delivery of every source of its domain, found by the same scan as the batch's
(`deliveries.resolve`, not recorded: a dry run changes nothing), and the preview says, per
source, which delivery would be loaded, or why none would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import psycopg

from finops_pipeline.constants import RELEVES_TABLE
from finops_pipeline.contract import MATERIALIZED_VIEWS
from finops_pipeline.deliveries.resolve import PairDeliveries, resolve_deliveries, scan_sources
from finops_pipeline.deliveries.store import DeliveryStore, check_delivery_files
from finops_pipeline.landing.focus import FocusFileError, ReadRules, validate_file
from finops_pipeline.landing.store import LandingFileRefused, LandingFolderMissing, LandingStore
from finops_pipeline.money import ByCurrency, add_by_currency
from finops_pipeline.sources.config import Source

__all__ = [
    "DeliveryPreview",
    "FilePreview",
    "LandingPreview",
    "PairPreview",
    "ReprocessPreview",
    "preview_landing",
    "preview_reprocess",
    "resolve_preview_deliveries",
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


@dataclass(frozen=True)
class DeliveryPreview:
    """One source of a pair's domain: the delivery the load would take, or why none."""

    source: str
    delivery_id: str | None
    delivered_at: datetime | None
    files: int
    bytes: int
    note: str | None = None  # why this source gives nothing (no complete delivery, unreachable)


@dataclass
class PairPreview:
    period: str
    domain: str
    loaded_rows: int
    loaded_by_run: dict[str, int]  # run id -> rows currently in finops.releves
    landing: LandingPreview
    deliveries: list[DeliveryPreview] = field(default_factory=list)  # [] for the landing layout

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


def preview_landing(
    store: LandingStore, domain: str, period: str, rules: ReadRules | None = None
) -> LandingPreview:
    """Read and validate (period, domain)'s landing files as the load would, without loading."""
    rules = rules or ReadRules()
    preview = LandingPreview(folder=store.folder_uri(domain, period))
    try:
        files = store.list_files(domain, period)
    except LandingFolderMissing as exc:
        preview.error = str(exc)
        return preview
    for file in files:
        item = FilePreview(name=file.name, size_bytes=file.size)
        preview.files.append(item)
        file_rules = rules
        if file.skip_other_periods:  # a file feeding two months (OCI), as the load reads it
            file_rules = replace(rules, skip_other_periods=True, home_period=file.home_period)
        try:
            with store.open(file) as handle:
                for checked in validate_file(
                    handle, file.name, domain, period, _DRY_RUN_ID, rules=file_rules
                ):
                    item.rows_read += checked.rows_read
                    item.rows_rejected += int(checked.rejected.total())
                    item.rows_to_load += checked.valid.num_rows if checked.valid is not None else 0
                    preview.rejected.update(checked.rejected)
                    preview.billed_cost = add_by_currency(preview.billed_cost, checked.billed_cost)
        except (FocusFileError, LandingFileRefused) as exc:
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


def resolve_preview_deliveries(
    sources: Sequence[Source],
    periods: list[str],
    domains: list[str],
    *,
    now: datetime,
    settle_seconds: int = 900,
) -> dict[tuple[str, str], PairDeliveries]:
    """The deliveries a reprocess of these pairs would load: the batch's own scan, unrecorded."""
    wanted = [s for s in sources if s.domain in domains]
    outcomes = scan_sources(wanted, now=now, settle_seconds=settle_seconds, since_period=min(periods))
    return resolve_deliveries(outcomes, domains, periods)


def _preview_deliveries(
    sources: Sequence[Source], pair: PairDeliveries, rules: ReadRules | None
) -> tuple[LandingPreview, list[DeliveryPreview]]:
    """A pair from its sources' deliveries: what each source gives, and the files read."""
    taken = {d.source: d for d in pair.deliveries}
    items = []
    for source in sources:
        if source.domain != pair.domain:
            continue
        delivery = taken.get(source.name)
        if delivery is not None:
            items.append(
                DeliveryPreview(
                    source.name,
                    delivery.delivery_id,
                    delivery.delivered_at,
                    len(delivery.files),
                    delivery.bytes,
                )
            )
            continue
        note = next((e for e in pair.errors if f"source {source.name} " in e), None) or next(
            (w for w in pair.waiting if w.startswith(f"{source.name}: ")), "no complete delivery"
        )
        items.append(DeliveryPreview(source.name, None, None, 0, 0, note))
    store = DeliveryStore(sources, pair.deliveries, pair.period)
    folder = store.folder_uri(pair.domain, pair.period)
    if pair.errors:
        return LandingPreview(folder=folder, error="; ".join(pair.errors)), items
    if not pair.deliveries:
        why = "; ".join(pair.waiting) or f"no source of domain {pair.domain!r} in the sources file"
        return LandingPreview(folder=folder, error=f"no complete delivery for {pair.period} ({why})"), items
    problem = check_delivery_files([s for s in sources if s.name in taken], pair.deliveries)
    if problem is not None:
        return LandingPreview(folder=folder, error=f"quality gate incomplete_delivery: {problem}"), items
    return preview_landing(store, pair.domain, pair.period, rules), items


def preview_reprocess(
    database_url: str,
    store: LandingStore | None,
    periods: list[str],
    domains: list[str],
    *,
    sources: Sequence[Source] = (),
    deliveries: dict[tuple[str, str], PairDeliveries] | None = None,
    rules: ReadRules | None = None,
) -> ReprocessPreview:
    """The whole dry run, pairs in the order of `periods` then `domains`: from the landing
    `store`, or, with a sources file, from each pair's `deliveries`
    (`resolve_preview_deliveries`)."""
    loaded = _loaded(database_url, periods, domains)
    pairs = []
    for period in periods:
        for domain in domains:
            by_run = loaded.get((period, domain), {})
            items: list[DeliveryPreview] = []
            if deliveries is not None:
                landing, items = _preview_deliveries(sources, deliveries[(period, domain)], rules)
            else:
                if store is None:
                    raise ValueError("a dry run needs the landing store or the sources' deliveries")
                landing = preview_landing(store, domain, period, rules)
            pairs.append(
                PairPreview(
                    period=period,
                    domain=domain,
                    loaded_rows=sum(by_run.values()),
                    loaded_by_run=dict(sorted(by_run.items(), key=lambda kv: (-kv[1], kv[0]))),
                    landing=landing,
                    deliveries=items,
                )
            )
    return ReprocessPreview(pairs=pairs)
