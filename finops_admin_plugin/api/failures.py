"""GET /failures: failures grouped by cause, the most recently seen first.

Each item is one failure signature (`readmodel.signature`): how many runs failed with it, when
first and last, in which domains and for which sources, and the latest of those runs. The run
list filtered with `signature=` lists them all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from finops_admin_plugin.api.deps import ReaderDep, ResourcesDep, _instant
from finops_admin_plugin.http.errors import InputError, ServiceUnavailableError, shown
from finops_admin_plugin.models import FailureCollectionResponse, FailureSignatureResponse, PageInfo
from finops_admin_plugin.readmodel import CursorError, ReadModelUnavailable
from finops_admin_plugin.readmodel.failures import FailureFilters, decode_cursor, encode_cursor

__all__ = ["FailureFiltersDep", "get_failure_filters", "router"]

router = APIRouter(tags=["failures"])


def get_failure_filters(
    from_: Annotated[
        str | None, Query(alias="from", description="failed at or after: ISO date or datetime (UTC)")
    ] = None,
    to: Annotated[
        str | None, Query(description="failed at or before: ISO datetime, or a date (the whole day)")
    ] = None,
) -> FailureFilters:
    failed_from = _instant("from", from_, upper_bound=False) if from_ is not None else None
    failed_before = _instant("to", to, upper_bound=True) if to is not None else None
    if failed_from is not None and failed_before is not None and failed_from >= failed_before:
        raise InputError(f"from ({shown(from_ or '')}) is after to ({shown(to or '')})")
    return FailureFilters(failed_from=failed_from, failed_before=failed_before)


FailureFiltersDep = Annotated[FailureFilters, Depends(get_failure_filters)]


@router.get(
    "/failures",
    summary="Failures grouped by cause: runs per signature, first and last seen, domains, sources",
    response_model=FailureCollectionResponse,
)
def list_failures(
    _caller: ReaderDep,
    resources: ResourcesDep,
    filters: FailureFiltersDep,
    limit: Annotated[int, Query(ge=1, le=200, description="page size, 1-200")] = 50,
    cursor: Annotated[str | None, Query(description="`pageInfo.nextCursor` of the previous page")] = None,
) -> FailureCollectionResponse:
    try:
        key = resources.store.cursor_key()
        after = None
        if cursor is not None:
            try:
                after = decode_cursor(key, cursor, filters)
            except CursorError as exc:
                raise InputError(f"cursor is not valid: {exc}; got {shown(cursor, 40)}") from None
        page = resources.store.failure_page(filters, limit, after)
    except ReadModelUnavailable as exc:
        raise ServiceUnavailableError(str(exc)) from None
    next_cursor = encode_cursor(key, filters, *page.next_after) if page.next_after else None
    return FailureCollectionResponse(
        items=[FailureSignatureResponse.model_validate(item) for item in page.items],
        page_info=PageInfo(next_cursor=next_cursor),
        total_items=page.total,
    )
