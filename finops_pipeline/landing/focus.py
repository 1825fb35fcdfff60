"""FOCUS landing files -> validated record batches of `finops.releves`, ready for `COPY`.

The entry point of the landing package: `validate_file` opens a file (`sources`),
validates each of its batches (`validation`: typing by `values`, applications by
`attribution`) and yields what loads, what is rejected and what breaks a FOCUS rule.

| module | job |
|---|---|
| `sources` | opening CSV (plain, gzip) and Parquet files; headers; batches |
| `values` | typing values: text, timestamps, JSON objects, the `extra` object |
| `attribution` | tags -> applications |
| `validation` | rejects, conformance warnings and the COPY layout of one batch |
| `focus_columns` | the FOCUS columns, versions and currencies |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from finops_pipeline.landing.quality import MAX_SAMPLES, RejectSample
from finops_pipeline.landing.sources import FocusFileError, open_landing_file
from finops_pipeline.landing.validation import COPY_COLUMNS, ReadRules, ValidatedBatch, Where, validate_batch

__all__ = [
    "COPY_COLUMNS",
    "FocusFileError",
    "ReadRules",
    "ValidatedBatch",
    "validate_file",
]


def validate_file(
    handle: BinaryIO,
    file_name: str,
    domain: str,
    period: str,
    run_id: str,
    *,
    relative: str | None = None,
    rules: ReadRules | None = None,
) -> Iterator[ValidatedBatch]:
    """Every batch of one landing file, validated: what loads, dry runs and benchmarks read.

    `file_name` is what `source_file` records; `relative` (the path under the landing
    root) is what errors and samples name. Raises FocusFileError, naming the file and
    where it stopped, when the file cannot be read through.
    """
    relative = relative or file_name
    rules = rules or ReadRules()
    source = open_landing_file(handle, relative, max_row_group_bytes=rules.max_row_group_bytes)
    malformed_seen = 0
    for batch, row_group, first_line in source.batches:
        checked = validate_batch(
            batch,
            source,
            Where(relative, row_group, first_line),
            domain=domain,
            period=period,
            run_id=run_id,
            source_file=file_name,
            rules=rules,
        )
        new_malformed = source.malformed[malformed_seen:]
        malformed_seen = len(source.malformed)
        if new_malformed:
            _add_malformed(checked, new_malformed, relative)
        yield checked
    if len(source.malformed) > malformed_seen:  # rows skipped after the last batch
        tail = ValidatedBatch(rows_read=0, valid=None, focus_version=source.columns.version)
        _add_malformed(tail, source.malformed[malformed_seen:], relative)
        yield tail


def _add_malformed(checked: ValidatedBatch, lines: list[int | None], relative: str) -> None:
    checked.rows_read += len(lines)
    checked.rejected["malformed_row"] += len(lines)
    checked.samples.setdefault("malformed_row", []).extend(
        RejectSample(file=relative, line=line, column=None, value=None) for line in lines[:MAX_SAMPLES]
    )
