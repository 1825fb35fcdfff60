"""Failure signatures of real messages: what varies is masked, what names the cause stays.

The messages are the ones this project's runs carry (`finops_pipeline.warehouse.gates`, the load
op's wrapper in `finops_pipeline.ops.loads`, the loader's lock conflict) and those of the libraries
it calls (psycopg's OperationalError, botocore's S3 errors), as `mapping.runs.one_line` leaves them.
"""

from __future__ import annotations

import pytest

from finops_admin_plugin.readmodel.signature import SIGNATURE_LENGTH, failure_cause, failure_signature

# (Dagster kind, message, gate of the period or None) -> (kind, masked text)
CASES = [
    pytest.param(
        "FAILURE",
        "Native: 1 of 1 period(s) failed, keeping their previous rows. 2026-01: quality gate empty: no row "
        "in 0 landing file(s) (header only or empty); the previous 0 row(s) are kept. Check the export, "
        "then launch again.",
        "empty",
        "empty",
        "no row in <n> landing file(s) (header only or empty); the previous <n> row(s) are kept. Check the "
        "export, then launch again.",
        id="gate-empty",
    ),
    pytest.param(
        "FAILURE",
        "Open: 1 of 2 period(s) failed, keeping their previous rows. 2025-11: quality gate rejected_ratio: "
        "37 of 1204 row(s) rejected (3.07%, above FINOPS_MAX_REJECTED_RATIO 1%; top reasons: invalid_cost "
        "30, missing_value:BillingCurrency 7; first: open/2025-11/focus-2025-11.csv line 12, column "
        "BilledCost); the previous 1190 row(s) are kept. | 2025-12: 1180 rows loaded (1175 replaced)",
        "rejected_ratio",
        "rejected_ratio",
        "<n> of <n> row(s) rejected (<n>%, above FINOPS_MAX_REJECTED_RATIO <n>%; top reasons: invalid_cost "
        "<n>, missing_value:BillingCurrency <n>; first: <path>/focus-<period>.csv line <n>, column "
        "BilledCost); the previous <n> row(s) are kept.",
        id="gate-rejected-ratio-other-period-loaded",
    ),
    pytest.param(
        "FAILURE",
        "Public: 1 of 1 period(s) failed, keeping their previous rows. 2026-02: quality gate all_rejected: "
        "every one of the 52 row(s) read was rejected (top reasons: billing_period_outside_month 52; first: "
        "public/2026-02/part-00003-9f2c1ab4e0.parquet row 0 (row group 1), column BillingPeriodStart); "
        "the previous 48 row(s) are kept. Fix the export, then launch again.",
        "all_rejected",
        "all_rejected",
        "every one of the <n> row(s) read was rejected (top reasons: billing_period_outside_month <n>; "
        "first: <path>/part-<n>-<hex>.parquet row <n> (row group <n>), column BillingPeriodStart); the "
        "previous <n> row(s) are kept. Fix the export, then launch again.",
        id="gate-all-rejected-parquet",
    ),
    pytest.param(
        "FAILURE",
        "Private: 1 of 1 period(s) failed, keeping their previous rows. 2026-03: quality gate shrink: the "
        "load would replace 9000 row(s) with 120 (98.67% fewer, above FINOPS_MAX_SHRINK_RATIO 50%); the "
        "previous 9000 row(s) are kept. If the drop is expected, launch again with allow_shrink: true in "
        "the plan_batch config.",
        "shrink",
        "shrink",
        "the load would replace <n> row(s) with <n> (<n>% fewer, above FINOPS_MAX_SHRINK_RATIO <n>%); the "
        "previous <n> row(s) are kept. If the drop is expected, launch again with allow_shrink: true in "
        "the plan_batch config.",
        id="gate-shrink",
    ),
    pytest.param(
        "FAILURE",
        "Native: 1 of 1 period(s) failed, keeping their previous rows. 2026-01: quality gate "
        "unreadable_file: native/2026-01/broken.csv: cannot read the header line: invalid UTF-8 at byte "
        "17; the previous rows are kept",
        "unreadable_file",
        "unreadable_file",
        "<path>/broken.csv: cannot read the header line: invalid UTF-<n> at byte <n>; the previous rows "
        "are kept",
        id="gate-unreadable-file",
    ),
    pytest.param(
        "FAILURE",
        "Open: 1 of 1 period(s) failed, keeping their previous rows. 2026-01: domain 'open', period "
        "2026-01 is being loaded by run 3f9c2d1e-8a7b-4c6d-9e0f-1a2b3c4d5e6f (pid 48211); waited 60s. Let "
        "that run finish, then launch this one again.",
        None,
        "FAILURE",
        "domain 'open', period <period> is being loaded by run <id> (pid <n>); waited <n>s. Let that run "
        "finish, then launch this one again.",
        id="load-lock-conflict",
    ),
    pytest.param(
        "EXCEPTION",
        'OperationalError: connection to server at "10.20.0.7", port 5432 failed: Connection timed out',
        None,
        "OperationalError",
        'connection to server at "<ip>", port <n> failed: Connection timed out',
        id="psycopg-connect-timeout",
    ),
    pytest.param(
        "EXCEPTION",
        "OperationalError: consuming input failed: server closed the connection unexpectedly",
        None,
        "OperationalError",
        "consuming input failed: server closed the connection unexpectedly",
        id="psycopg-connection-lost",
    ),
    pytest.param(
        "EXCEPTION",
        "QueryCanceled: canceling statement due to statement timeout",
        None,
        "QueryCanceled",
        "canceling statement due to statement timeout",
        id="psycopg-statement-timeout",
    ),
    pytest.param(
        "EXCEPTION",
        "ClientError: An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation: The "
        "specified bucket does not exist",
        None,
        "ClientError",
        "An error occurred (NoSuchBucket) when calling the ListObjectsV2 operation: The specified bucket "
        "does not exist",
        id="s3-no-such-bucket",
    ),
    pytest.param(
        "EXCEPTION",
        'EndpointConnectionError: Could not connect to the endpoint URL: "http://minio:9000/finops-landing'
        '?list-type=2&prefix=native%2F2026-01%2F"',
        None,
        "EndpointConnectionError",
        'Could not connect to the endpoint URL: "http://minio:<n>/finops-landing?<query>"',
        id="s3-endpoint-unreachable",
    ),
    pytest.param(
        "FRAMEWORK",
        "the run ended (FAILED) while this step was running",
        None,
        "FRAMEWORK",
        "the run ended (FAILED) while this step was running",
        id="interrupted",
    ),
    pytest.param(
        "RUN",
        "ValueError: landing s3://finops-landing/prod/native/2026-01/_SUCCESS is refused at 2026-02-03T06:00:"
        "12.5Z by request 0d9e8f7a6b5c",
        None,
        "ValueError",
        "landing s3://finops-landing/<path>/_SUCCESS is refused at <time> by request <hex>",
        id="uri-time-hex",
    ),
]


@pytest.mark.parametrize(("dagster_kind", "message", "gate", "kind", "masked"), CASES)
def test_real_messages_are_masked_to_their_cause(
    dagster_kind: str, message: str, gate: str | None, kind: str, masked: str
) -> None:
    found_kind, cause = failure_cause(dagster_kind, message, gate)
    signature, text = failure_signature(found_kind, cause)
    assert (found_kind, text) == (kind, masked)
    assert len(signature) == SIGNATURE_LENGTH
    assert all(c in "0123456789abcdef" for c in signature)


def test_the_same_cause_in_other_runs_periods_and_files_has_one_signature() -> None:
    def signature_of(domain: str, period: str, previous: int, file: str) -> str:
        message = (
            f"{domain}: 1 of 2 period(s) failed, keeping their previous rows. {period}: quality gate "
            f"all_rejected: every one of the {previous + 3} row(s) read was rejected (top reasons: "
            f"invalid_cost {previous + 3}; first: {domain.lower()}/{period}/{file} line 2, "
            "column BilledCost); "
            f"the previous {previous} row(s) are kept. Fix the export, then launch again."
        )
        return failure_signature(*failure_cause("FAILURE", message, "all_rejected"))[0]

    first = signature_of("Native", "2026-01", 10, "focus-2026-01.csv")
    assert signature_of("Native", "2025-12", 7, "focus-2025-12.csv") == first
    assert signature_of("Open", "2026-02", 0, "focus-2026-02.csv") == first
    # Another file shape, another gate, another kind: other causes.
    assert signature_of("Native", "2026-01", 10, "export.parquet") != first
    assert failure_signature("rejected_ratio", "x")[0] != failure_signature("all_rejected", "x")[0]
    assert failure_signature("FAILURE", "x")[0] != failure_signature("EXCEPTION", "x")[0]


def test_signatures_are_stable_across_releases() -> None:
    # Stored in the read model and in links (`?signature=`): a change here changes every id.
    assert failure_signature("empty", "no row in <n> landing file(s)") == (
        failure_signature("empty", "no row in 12 landing file(s)")[0],
        "no row in <n> landing file(s)",
    )
    assert failure_signature("FAILURE", "boom") == ("a412b25ef3fa", "boom")
