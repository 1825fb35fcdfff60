"""Reprocess requests: rules, PostgreSQL store, the sensor's launch logic and the dry run."""

from finops_pipeline.reprocess.queue import (
    STATES,
    IdempotencyConflict,
    QueueUnavailable,
    RateLimit,
    RateLimited,
    ReprocessQueue,
    ReprocessRequest,
    Submission,
)
from finops_pipeline.reprocess.rules import CheckedRequest, RequestInvalid, check_request

__all__ = [
    "STATES",
    "CheckedRequest",
    "IdempotencyConflict",
    "QueueUnavailable",
    "RateLimit",
    "RateLimited",
    "ReprocessQueue",
    "ReprocessRequest",
    "RequestInvalid",
    "Submission",
    "check_request",
]
