"""Reprocess requests: rules, PostgreSQL store, the sensor's launch logic and the dry run."""

from finops_pipeline.reprocess.rules import CheckedRequest, RequestInvalid, check_request
from finops_pipeline.reprocess.store import (
    STATES,
    IdempotencyConflict,
    RateLimit,
    RateLimited,
    ReprocessRequest,
    ReprocessStore,
    StoreUnavailable,
    Submission,
)

__all__ = [
    "STATES",
    "CheckedRequest",
    "IdempotencyConflict",
    "RateLimit",
    "RateLimited",
    "ReprocessRequest",
    "ReprocessStore",
    "RequestInvalid",
    "StoreUnavailable",
    "Submission",
    "check_request",
]
