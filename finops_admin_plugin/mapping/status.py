"""Dagster run status -> admin run status (the DESIGN.md table)."""

from __future__ import annotations

import logging
from typing import Any, Final

from dagster import DagsterRunStatus

from finops_admin_plugin.models import RunStatus

__all__ = ["ACTIVE_STATUSES", "map_run_status"]

log = logging.getLogger(__name__)

_BY_DAGSTER: Final[dict[str, RunStatus]] = {
    DagsterRunStatus.QUEUED.value: "QUEUED",
    DagsterRunStatus.NOT_STARTED.value: "QUEUED",
    DagsterRunStatus.STARTING.value: "RUNNING",
    DagsterRunStatus.STARTED.value: "RUNNING",
    DagsterRunStatus.CANCELING.value: "RUNNING",
    DagsterRunStatus.SUCCESS.value: "SUCCESS",
    DagsterRunStatus.FAILURE.value: "FAILED",
    DagsterRunStatus.CANCELED.value: "CANCELED",
}

ACTIVE_STATUSES: Final = frozenset({"QUEUED", "RUNNING"})

_reported_unknown: set[str] = set()


def map_run_status(status: DagsterRunStatus | str | Any) -> RunStatus:
    """The admin status of a Dagster status; anything unknown is UNKNOWN (logged once per value).

    Dagster adds statuses now and then (MANAGED, SUSPENDED today): one field
    degrades, the page still renders.
    """
    value = status.value if isinstance(status, DagsterRunStatus) else str(status)
    mapped = _BY_DAGSTER.get(value)
    if mapped is not None:
        return mapped
    if value not in _reported_unknown:
        _reported_unknown.add(value)
        log.warning("Dagster run status %r has no admin equivalent; shown as UNKNOWN", value)
    return "UNKNOWN"
