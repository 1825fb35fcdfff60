"""The admin read model: runs derived from Dagster, in PostgreSQL schema `finops_admin`.

It is a cache: `reindex(settings)` rebuilds it from Dagster storage at any time
(`finops reindex`), and a `Projector` keeps it current while the API runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.readmodel.pool import ReadModelUnavailable
from finops_admin_plugin.readmodel.projector import Projector
from finops_admin_plugin.readmodel.query import SORTS, CursorError, ListedRun, Page, RunFilters, Sort
from finops_admin_plugin.readmodel.store import ReadModel

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from finops_admin_plugin.settings import AdminSettings

__all__ = [
    "SORTS",
    "CursorError",
    "ListedRun",
    "Page",
    "Projector",
    "ReadModel",
    "ReadModelUnavailable",
    "RunFilters",
    "Sort",
    "reindex",
]


def reindex(settings: AdminSettings, instance: DagsterInstance | None = None) -> int:
    """Rebuild the read model from Dagster; returns the number of FinOps runs projected.

    Uses `settings.database_url` for the read model and, unless `instance` is
    given, the Dagster instance of `settings.dagster_home`. Safe while API
    processes run: their projectors wait for the rebuild to finish.
    """
    source = (
        DagsterReader(instance) if instance is not None else DagsterReader.from_home(settings.dagster_home)
    )
    store = ReadModel(settings.database_url, max_connections=2)
    try:
        store.open()
        return Projector(source, store).reindex()
    finally:
        store.close()
        source.close()
