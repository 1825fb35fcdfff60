"""GET /sources: each configured source of cost data and, per month, its deliveries and state.

The sources are the pipeline's own (`FINOPS_SOURCES`, or one `landing` source per domain); what
they delivered and what was loaded is read from schema `finops_sources`, which the delivery
sensor and the loads write. The API lists no bucket itself: it needs no cloud credentials.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Query

from finops_admin_plugin.api.deps import ReaderDep, ResourcesDep, SettingsDep
from finops_admin_plugin.http.errors import ServiceUnavailableError
from finops_admin_plugin.mapping.sources import DEFAULT_MONTHS, map_source
from finops_admin_plugin.models.sources import SourceCollectionResponse
from finops_admin_plugin.readmodel import ReadModelUnavailable
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.sources.config import Source, SourcesFileError, landing_sources, load_sources_file
from finops_pipeline.sources.state import last_scans, source_months

__all__ = ["ConfiguredSources", "SourcesDep", "configured_sources_of", "router"]

router = APIRouter(tags=["sources"])


@dataclass(frozen=True)
class ConfiguredSources:
    sources: list[Source]
    from_file: bool
    location_known: bool  # False: no sources file and no FINOPS_LANDING_URI in the API's environment


# The sources file, read again only when it changes (its mtime and size): a request does not
# parse YAML, and an edited file is seen without a restart, as the code location sees it.
_file_cache: dict[str, tuple[tuple[int, int], list[Source]]] = {}
_file_lock = threading.Lock()


def _sources_file(path: str) -> list[Source]:
    try:
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = (-1, -1)  # load_sources_file says what is wrong
    with _file_lock:
        cached = _file_cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
    sources = load_sources_file(path)
    with _file_lock:
        _file_cache[path] = (version, sources)
    return sources


def configured_sources_of(settings: AdminSettings) -> ConfiguredSources:
    """The pipeline's sources as the admin's settings name them.

    Without a sources file the landing sources are listed even when the API does not know
    FINOPS_LANDING_URI (only the pipeline needs it): their names and domains are fixed, their
    location is then unknown (null). A sources file that cannot be used answers 503 with the
    file's own message (file:line): the code location refuses the same file.
    """
    if settings.sources_file:
        try:
            return ConfiguredSources(_sources_file(settings.sources_file), True, True)
        except SourcesFileError as exc:
            raise ServiceUnavailableError(
                f"the sources file (FINOPS_SOURCES) cannot be used: {exc}"
            ) from None
    landing = settings.landing_uri.strip()
    return ConfiguredSources(landing_sources(landing or "unknown"), False, bool(landing))


def get_configured_sources(settings: SettingsDep) -> ConfiguredSources:
    return configured_sources_of(settings)


SourcesDep = Annotated[ConfiguredSources, Depends(get_configured_sources)]


@router.get(
    "/sources",
    summary="The configured sources of cost data and, per month, their deliveries and state",
    response_model=SourceCollectionResponse,
)
def sources(
    _caller: ReaderDep,
    resources: ResourcesDep,
    configured: SourcesDep,
    limit: Annotated[
        int, Query(ge=1, le=120, description="months per source, newest first")
    ] = DEFAULT_MONTHS,
) -> SourceCollectionResponse:
    names = [s.name for s in configured.sources]
    now = datetime.now(UTC)
    try:
        with resources.store.connection() as conn:
            rows = source_months(conn, names, limit)
            scans = last_scans(conn, names)
    except psycopg.errors.UndefinedTable:
        # Schema finops_sources is created by the pipeline's first scan or load: nothing yet.
        rows, scans = [], {}
    except ReadModelUnavailable as exc:
        raise ServiceUnavailableError(str(exc)) from None
    items = [
        map_source(s, rows, scans.get(s.name), now, location_known=configured.location_known, limit=limit)
        for s in configured.sources
    ]
    return SourceCollectionResponse(items=items, sources_file=configured.from_file)
