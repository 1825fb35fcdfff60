"""`AdminResources`: every long-lived object of the admin API, held in one container.

The settings, the authenticator, the database gate, the read model, the Dagster reader, the
projector and its leadership, the reprocess queue. Built lazily where they open connections
(never at import time) and closed by the app's lifespan. A missing `FINOPS_DATABASE_URL` or
`DAGSTER_HOME` does not stop the app from starting: the endpoints that need them answer 503
saying what to set. Routes reach the container through `api.deps.ResourcesDep`.
"""

from __future__ import annotations

import logging
import threading

from dagster import DagsterInstance

from finops_admin_plugin.auth.authenticator import Authenticator
from finops_admin_plugin.auth.devmode import check_dev_mode_bind
from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.http.availability import DatabaseGate, database_gate
from finops_admin_plugin.http.errors import ServiceUnavailableError
from finops_admin_plugin.links import LinkConfig
from finops_admin_plugin.logs.followers import FollowerSlots
from finops_admin_plugin.readmodel import Projector, ReadModel, ReadModelUnavailable
from finops_admin_plugin.readmodel.leader import Leadership
from finops_admin_plugin.readmodel.schema import LOCK_CLASS
from finops_admin_plugin.settings import AdminSettings
from finops_pipeline.reprocess.queue import ReprocessQueue

__all__ = ["AdminResources"]

log = logging.getLogger(__name__)

REPROCESS_POOL_SIZE = 4


class AdminResources:
    """Raises AuthConfigError or DevModeBindError for a broken or unsafe auth setup, so a
    misconfigured API never serves."""

    def __init__(
        self,
        settings: AdminSettings,
        *,
        dagster_instance: DagsterInstance | None = None,
        projector_interval: float | None = 1.0,
    ) -> None:
        check_dev_mode_bind(settings)
        self.settings = settings
        self.authenticator = Authenticator(settings)
        self.links = LinkConfig.from_settings(settings)
        self.log_followers = FollowerSlots()
        self.projector_interval = projector_interval
        self._instance = dagster_instance
        self._lock = threading.Lock()
        self._store: ReadModel | None = None
        self._source: DagsterReader | None = None
        self._reprocess: ReprocessQueue | None = None
        self.projector: Projector | None = None
        self.leadership: Leadership | None = None
        self.gate: DatabaseGate = database_gate(settings.database_url, self._dagster_instance)

    @property
    def dagster_configured(self) -> bool:
        return self._instance is not None or bool(self.settings.dagster_home)

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

    @property
    def reprocess_queue(self) -> ReprocessQueue:
        with self._lock:
            if self._reprocess is None:
                if not self.settings.database_url:
                    raise ServiceUnavailableError(
                        "reprocess requests are kept in PostgreSQL: set FINOPS_DATABASE_URL for the admin API"
                    )
                # A few connections per API process: writes for one caller queue in the process
                # and never hold a connection while they wait (see ReprocessQueue).
                self._reprocess = ReprocessQueue(self.settings.database_url, pool_size=REPROCESS_POOL_SIZE)
            return self._reprocess

    def _dagster_instance(self) -> DagsterInstance | None:
        try:
            return self.source.instance
        except ServiceUnavailableError:  # DAGSTER_HOME not set: the routes say so themselves
            return None

    def start(self) -> None:
        """Open the gate, create the read model's tables and start following Dagster (errors are
        logged, not raised)."""
        self.gate.start()
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
        self.gate.stop()
        if self.projector is not None:
            self.projector.stop()
            self.projector = None
        if self.leadership is not None:
            self.leadership.stop()
            self.leadership = None
        if self._store is not None:
            self._store.close()
        if self._reprocess is not None:
            self._reprocess.close()
            self._reprocess = None
        if self._source is not None:
            self._source.close()

    def dagster_check(self) -> str:
        try:
            return self.source.check()
        except ServiceUnavailableError as exc:
            return f"unavailable: {exc.message}"
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
