"""Failures grouped by cause: one item per failure signature (`GET /failures`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from finops_admin_plugin.models.common import ApiModel, DomainName, PageInfo

__all__ = ["FailureCollectionResponse", "FailureSignatureResponse"]


class FailureSignatureResponse(ApiModel):
    """One cause of failure and the runs it failed."""

    signature: str = Field(
        description="stable id of the cause (hash of `kind` and `text`); `GET /runs?signature=` lists "
        "its runs"
    )
    kind: str = Field(
        description="the quality gate (`empty`, `rejected_ratio`...), else the exception type "
        "(`OperationalError`...), else Dagster's kind of failure (`FAILURE`, `EXCEPTION`, `FRAMEWORK`, "
        "`INTERRUPTED`; `RUN` when no domain's block failed)"
    )
    text: str = Field(
        description="the cause with what varies between its occurrences masked: `<id>`, `<hex>`, `<time>`, "
        "`<date>`, `<period>`, `<n>`, `<ip>`, `<path>` (a path keeps the shape of its last segment)"
    )
    count: int = Field(description="runs that failed with it (in the `from`/`to` window)")
    first_seen: datetime = Field(description="when the first of those runs failed")
    last_seen: datetime = Field(description="when the latest of those runs failed")
    domains: list[DomainName] = Field(description="the domains whose block failed with it, canonical order")
    sources: list[str] = Field(
        description="the sources whose delivery launched those runs (`finops/requested_by` `source:<name>`)"
    )
    runs: list[str] = Field(description="the latest of those runs, newest first (at most 5)")


class FailureCollectionResponse(ApiModel):
    items: list[FailureSignatureResponse]
    page_info: PageInfo
    total_items: int
