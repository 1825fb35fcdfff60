"""Which databases the API's `DatabaseGate` watches: the read model's and Dagster's storage."""

from __future__ import annotations

from finops_admin_plugin.availability import DAGSTER_STORAGE, READ_MODEL, DatabaseGate
from finops_admin_plugin.errors import ServiceUnavailableError
from finops_admin_plugin.resources import AdminResources
from finops_admin_plugin.settings import AdminSettings

__all__ = ["database_gate"]


def database_gate(settings: AdminSettings, resources: AdminResources) -> DatabaseGate:
    def read_model_url() -> str | None:
        return settings.database_url or None

    def dagster_url() -> str | None:
        try:
            instance = resources.source.instance
        except ServiceUnavailableError:  # DAGSTER_HOME not set: the routes say so themselves
            return None
        url = getattr(instance.run_storage, "postgres_url", None)
        return str(url) if url else None

    return DatabaseGate({READ_MODEL: read_model_url, DAGSTER_STORAGE: dagster_url})
