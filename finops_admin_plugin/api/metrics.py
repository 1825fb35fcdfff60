"""GET /metrics: Prometheus exposition of the batch's state (the queries: `readmodel.metrics`).

Protected like the rest of the API: Prometheus scrapes it with a static service
token of role admin (`FINOPS_STATIC_TOKENS`; docs/kubernetes.md shows the
ServiceMonitor's bearer token).
"""

from __future__ import annotations

import psycopg
import sqlalchemy.exc
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from finops_admin_plugin.api.deps import AdminDep, ResourcesDep
from finops_admin_plugin.api.sources import configured_sources_of
from finops_admin_plugin.dagster_reader import DagsterReader
from finops_admin_plugin.http.errors import ServiceUnavailableError
from finops_admin_plugin.logs.followers import followers_exposition
from finops_admin_plugin.readmodel import ReadModelUnavailable
from finops_admin_plugin.readmodel.metrics import render

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="The batch's state for Prometheus: loads, quality gates, runs, MVs, read-model lag, daemon",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics(_caller: AdminDep, resources: ResourcesDep) -> Response:
    try:
        store = resources.store
        try:
            source: DagsterReader | None = resources.source
        except ServiceUnavailableError:
            source = None  # the read model's metrics still answer; Dagster's are left out
        try:
            sources = configured_sources_of(resources.settings).sources
        except ServiceUnavailableError:
            sources = []  # a sources file that cannot be used: GET /sources says why
        body = await run_in_threadpool(render, store, source, sources)
    except (ReadModelUnavailable, psycopg.Error, sqlalchemy.exc.SQLAlchemyError) as exc:
        raise ServiceUnavailableError(
            f"metrics need the read model and Dagster's storage, which do not answer ({type(exc).__name__})"
        ) from None
    body += followers_exposition(resources.log_followers)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
