"""Long-lived objects the routers use: the read model, the Dagster source, the projector.

Built lazily (never at import time) and closed by the app's lifespan. A
missing `FINOPS_DATABASE_URL` or `DAGSTER_HOME` does not stop the app from
starting: the endpoints that need them answer 503 saying what to set.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated

from dagster import DagsterInstance
from fastapi import Depends, Request

from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.errors import ServiceUnavailableError
from finops_admin_plugin.leader import Leadership
from finops_admin_plugin.links import LinkConfig
from finops_admin_plugin.readmodel import Projector, ReadModel, ReadModelUnavailable
from finops_admin_plugin.readmodel.schema import LOCK_CLASS
from finops_admin_plugin.settings import AdminSettings

__all__ = ["AdminResources", "ResourcesDep", "get_resources"]

log = logging.getLogger(__name__)


class AdminResources:
    def __init__(
        self,
        settings: AdminSettings,
        *,
        dagster_instance: DagsterInstance | None = None,
        projector_interval: float | None = 1.0,
    ) -> None:
        self.settings = settings
        self.links = LinkConfig.from_settings(settings)
        self.projector_interval = projector_interval
        self._instance = dagster_instance
        self._lock = threading.Lock()
        self._store: ReadModel | None = None
        self._source: DagsterReader | None = None
        self.projector: Projector | None = None
        self.leadership: Leadership | None = None

    @property
    def store(self) -> ReadModel:
        with self._lock:
            if self._store is None:
                if not self.settings.database_url:
                    raise ServiceUnavailableError(
                        "the run list needs its read model: set FINOPS_DATABASE_URL to a PostgreSQL URL"
                    )
                self._store = ReadModel(self.settings.database_url)
            return self._store

    @property
    def source(self) -> DagsterReader:
        with self._lock:
            if self._source is None:
                if self._instance is not None:
                    self._source = DagsterReader(self._instance)
                elif not self.settings.dagster_home:
                    raise ServiceUnavailableError(
                        "runs come from Dagster: set DAGSTER_HOME to the folder holding dagster.yaml"
                    )
                else:
                    self._source = DagsterReader.from_home(self.settings.dagster_home)
            return self._source

    def start(self) -> None:
        """Create the read model's tables and start following Dagster (errors are logged, not raised)."""
        try:
            self.store.open()
        except (ServiceUnavailableError, ReadModelUnavailable) as exc:
            log.warning("admin read model not started: %s", getattr(exc, "message", exc))
            return
        if self.projector_interval is None:
            return
        try:
            source = self.source
        except ServiceUnavailableError as exc:
            log.warning("read model projector not started: %s", exc.message)
            return
        except Exception:
            log.exception("read model projector not started: the Dagster instance cannot be opened")
            return
        # The projector is once-only work: the replica holding the leader lock runs it.
        self.leadership = Leadership(
            self.settings.database_url, LOCK_CLASS, interval=min(1.0, self.projector_interval)
        )
        self.leadership.start()
        self.projector = Projector(
            source, self.store, interval=self.projector_interval, leadership=self.leadership
        )
        self.projector.start()

    def stop(self) -> None:
        if self.projector is not None:
            self.projector.stop()
            self.projector = None
        if self.leadership is not None:
            self.leadership.stop()
            self.leadership = None
        if self._store is not None:
            self._store.close()
        if self._source is not None:
            self._source.close()

    def dagster_check(self) -> str:
        try:
            return self.source.check()
        except ServiceUnavailableError as exc:
            return f"unavailable: {exc.message}"
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"


def get_resources(request: Request) -> AdminResources:
    resources: AdminResources | None = getattr(request.app.state, "finops", None)
    if resources is None:  # pragma: no cover - create_app always sets it
        raise ServiceUnavailableError("the admin resources are not configured")
    return resources


ResourcesDep = Annotated[AdminResources, Depends(get_resources)]
