"""Stored requests and dry-run previews -> API answers (pure: no I/O).

Their messages come from the batch's processes and may name server files: they are shown with
`display_paths`, like a run's errors, so no UI has to shorten paths itself.
"""

from __future__ import annotations

from urllib.parse import quote

from finops_admin_plugin.mapping.money import money_of
from finops_admin_plugin.mapping.paths import display_paths
from finops_admin_plugin.models.reprocess import (
    DryRunDelivery,
    DryRunFile,
    DryRunLanding,
    DryRunLoaded,
    DryRunLoadedRun,
    DryRunPair,
    DryRunResponse,
    DryRunTotals,
    ReprocessLinks,
    ReprocessRequestResponse,
)
from finops_admin_plugin.settings import API_BASE_PATH
from finops_pipeline.reprocess.preview import PairPreview, ReprocessPreview
from finops_pipeline.reprocess.queue import ReprocessRequest
from finops_pipeline.reprocess.rules import CheckedRequest

__all__ = ["dry_run_response", "request_link", "request_response"]


def request_link(request_id: str) -> str:
    return f"{API_BASE_PATH}/reprocess/{quote(request_id, safe='')}"


def request_response(request: ReprocessRequest) -> ReprocessRequestResponse:
    run_link = f"{API_BASE_PATH}/runs/{quote(request.run_id, safe='')}" if request.run_id else None
    return ReprocessRequestResponse(
        request_id=request.request_id,
        state=request.state,
        periods=request.periods,
        domains=request.domains,
        reason=request.reason,
        requested_by=request.requested_by,
        created_at=request.created_at,
        updated_at=request.updated_at,
        launched_at=request.launched_at,
        run_id=request.run_id,
        message=display_paths(request.message) if request.message else request.message,
        links=ReprocessLinks(self=request_link(request.request_id), run=run_link),
    )


def _pair(pair: PairPreview) -> DryRunPair:
    landing = pair.landing
    return DryRunPair(
        period=pair.period,
        domain=pair.domain,
        outcome="REPLACE" if pair.would_load else "FAIL",
        rows_to_delete=pair.loaded_rows if pair.would_load else 0,
        rows_to_insert=landing.rows_to_load,
        loaded=DryRunLoaded(
            rows=pair.loaded_rows,
            runs=[DryRunLoadedRun(run_id=run_id, rows=rows) for run_id, rows in pair.loaded_by_run.items()],
        ),
        landing=DryRunLanding(
            folder=landing.folder,
            files=[
                DryRunFile(
                    name=f.name,
                    size_bytes=f.size_bytes,
                    rows_read=f.rows_read,
                    rows_to_load=f.rows_to_load,
                    rows_rejected=f.rows_rejected,
                )
                for f in landing.files
            ],
            rows_read=landing.rows_read,
            rows_to_load=landing.rows_to_load,
            rows_rejected=landing.rows_rejected,
            rejected_by_reason=dict(sorted(landing.rejected.items())),
            billed_cost=money_of(landing.billed_cost),
            error=display_paths(landing.error) if landing.error else landing.error,
        ),
        deliveries=[
            DryRunDelivery(
                source=d.source,
                delivery_id=d.delivery_id,
                delivered_at=d.delivered_at,
                files=d.files,
                bytes=d.bytes,
                note=display_paths(d.note) if d.note else d.note,
            )
            for d in pair.deliveries
        ],
    )


def dry_run_response(checked: CheckedRequest, preview: ReprocessPreview) -> DryRunResponse:
    pairs = [_pair(p) for p in preview.pairs]
    failing = [p for p in pairs if p.outcome == "FAIL"]
    totals = DryRunTotals(
        rows_to_delete=sum(p.rows_to_delete for p in pairs),
        rows_to_insert=sum(p.rows_to_insert for p in pairs),
        rows_rejected=sum(p.landing.rows_rejected for p in pairs),
        failing_pairs=len(failing),
    )
    if failing:
        names = ", ".join(f"{p.domain} {p.period}" for p in failing)
        message = (
            f"{len(failing)} of {len(pairs)} (period, domain) pair(s) would fail and keep their rows "
            f"({names}); the materialized views would not be refreshed"
        )
    else:
        message = (
            f"{len(pairs)} (period, domain) pair(s) would be replaced: "
            f"{totals.rows_to_delete} row(s) deleted, {totals.rows_to_insert} inserted, "
            f"{totals.rows_rejected} rejected; "
            f"{len(preview.would_refresh)} materialized views refreshed"
        )
    return DryRunResponse(
        periods=checked.periods,
        domains=checked.domains,
        reason=checked.reason,
        pairs=pairs,
        materialized_views=preview.would_refresh,
        totals=totals,
        message=message,
    )
