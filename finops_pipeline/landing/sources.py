"""Opening a landing file: CSV (plain or gzip) or Parquet, its header, and its batches.

CSV columns are all read as strings (`ConvertOptions.column_types`, never inferred
from a sample), with empty fields and unquoted `NULL` as nulls. Parquet's types are
taken as they are. Either way the batches' columns are the header's names, a
duplicated name renamed `Name#2`; FOCUS 1.0 to 1.4 headers are mapped to the 1.2
column names (`focus_columns`).

Memory is bounded by settings, not by the file's shape. CSV is read in blocks of
`CSV_BLOCK_SIZE`. Parquet is read row group by row group, each in slices of about
`PARQUET_BATCH_BYTES` (from the row group's own size and row count), through a buffer of
`PARQUET_BUFFER_BYTES` per column instead of whole column chunks (Arrow's default): a
file with one 1.7 GiB row group took a load to 2,404 MiB that way. A row group larger
than `max_row_group_bytes` uncompressed (FINOPS_MAX_ROW_GROUP_BYTES) is refused before
any row is read: a page of it could still be as large. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from finops_pipeline.landing.focus_columns import detect_version, map_column_names

__all__ = [
    "CSV_BLOCK_SIZE",
    "MAX_ROW_GROUP_BYTES",
    "PARQUET_BATCH_BYTES",
    "PARQUET_BATCH_ROWS",
    "PARQUET_BUFFER_BYTES",
    "FileColumns",
    "FocusFileError",
    "OpenedFile",
    "open_landing_file",
]

CSV_BLOCK_SIZE: Final = 8 << 20
PARQUET_BATCH_ROWS: Final = 131_072  # at most, per batch; fewer for wide rows
PARQUET_BATCH_BYTES: Final = 8 << 20  # uncompressed bytes a Parquet batch aims at, as CSV_BLOCK_SIZE
_PARQUET_MIN_BATCH_ROWS: Final = 1024
# Read-ahead of each column's stream: FOCUS files have about 60 columns, so ~60 MiB at most.
PARQUET_BUFFER_BYTES: Final = 1 << 20
# Default of FINOPS_MAX_ROW_GROUP_BYTES: providers write row groups of hundreds of MiB.
MAX_ROW_GROUP_BYTES: Final = 4 << 30
_HEADER_MAX_BYTES: Final = 1 << 20


class FocusFileError(ValueError):
    """A landing file that cannot be read through (not CSV/Parquet, truncated, not UTF-8...)."""


@dataclass(frozen=True)
class FileColumns:
    """What a file's header says: its batch column names and where each FOCUS column is."""

    unique: list[str]  # the header's names, duplicates renamed Name#2...: the batches' columns
    focus: dict[str, str]  # FOCUS 1.2 name -> batch column
    extra: list[tuple[str, str]]  # (name in the file, batch column) kept in `extra`
    duplicated: list[str]  # FOCUS columns the header names twice
    version: str

    @classmethod
    def of(cls, header: list[str]) -> FileColumns:
        unique: list[str] = []
        seen: Counter[str] = Counter()
        for name in header:
            seen[name] += 1
            unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
        focus: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        duplicated: list[str] = []
        for original, column, target in zip(header, unique, map_column_names(header), strict=True):
            if target is None:
                extra.append((original, column))
            elif target in focus:
                duplicated.append(target)
            else:
                focus[target] = column
        return cls(unique, focus, extra, sorted(set(duplicated)), detect_version(header))


@dataclass
class OpenedFile:
    """One opened landing file: its columns and a stream of (batch, row group, first line/row)."""

    relative: str
    columns: FileColumns
    batches: Iterator[tuple[pa.RecordBatch, int | None, int]]
    malformed: list[int | None] = field(default_factory=list)  # CSV rows skipped: wrong field count


def safe_reason(exc: BaseException) -> str:
    """Arrow's message without any file content (quoted values, row text)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"(Expected \d+ columns, got \d+).*", r"\1", text)
    return text[:200]


def open_landing_file(
    handle: BinaryIO, relative: str, *, max_row_group_bytes: int = MAX_ROW_GROUP_BYTES
) -> OpenedFile:
    """The file's header and batches; by its name: `.parquet`, `.gz` (gzip CSV), else CSV.

    Raises FocusFileError for a Parquet row group over `max_row_group_bytes` uncompressed."""
    lower = relative.lower()
    if lower.endswith(".parquet"):
        return _open_parquet(handle, relative, max_row_group_bytes)
    return _open_csv(handle, relative, gzipped=lower.endswith(".gz"))


def _csv_stream(handle: BinaryIO, gzipped: bool) -> Any:
    handle.seek(0)
    if gzipped:
        return pa.CompressedInputStream(pa.PythonFile(handle, mode="r"), "gzip")
    return pa.PythonFile(handle, mode="r")


def _read_header(handle: BinaryIO, relative: str, gzipped: bool) -> list[str]:
    handle.seek(0)
    try:
        if gzipped:
            # GzipFile leaves `handle` open: Arrow reads the file again from the start.
            with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
                head = unzipped.readline(_HEADER_MAX_BYTES)
        else:
            head = handle.readline(_HEADER_MAX_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise FocusFileError(f"{relative}: cannot read the header line: {safe_reason(exc)}") from None
    if not head:
        return []
    if not head.endswith(b"\n") and len(head) == _HEADER_MAX_BYTES:
        raise FocusFileError(f"{relative}: no header line in the first {_HEADER_MAX_BYTES} bytes")
    line = head.rstrip(b"\n")
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise FocusFileError(
            f"{relative}: line 1 (header) is not UTF-8 text; export the file as UTF-8 CSV"
        ) from None
    return next(csv.reader([text]), [])


def _open_csv(handle: BinaryIO, relative: str, gzipped: bool) -> OpenedFile:
    columns = FileColumns.of(_read_header(handle, relative, gzipped))
    malformed: list[int | None] = []

    def skip_row(row: Any) -> str:
        malformed.append(row.number)
        return "skip"

    def batches() -> Iterator[tuple[pa.RecordBatch, int | None, int]]:
        if not columns.unique:
            return
        line = 2  # the header is line 1
        try:
            reader = pacsv.open_csv(
                _csv_stream(handle, gzipped),
                read_options=pacsv.ReadOptions(
                    column_names=columns.unique,
                    skip_rows=1,
                    block_size=CSV_BLOCK_SIZE,
                    # One thread: the parser then knows each skipped row's line number.
                    use_threads=False,
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=skip_row),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in columns.unique},
                    null_values=["", "NULL"],
                    strings_can_be_null=True,
                    # A quoted "NULL" is the text NULL; a quoted "" is made null below.
                    quoted_strings_can_be_null=False,
                ),
            )
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                yield batch, None, line
                line += batch.num_rows
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise FocusFileError(
                f"{relative}: unreadable after line {line + len(malformed) - 1}: {safe_reason(exc)}"
            ) from None

    return OpenedFile(relative, columns, batches(), malformed)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def _batch_rows(rows: int, size: int) -> int:
    """Rows per batch so that one batch is about PARQUET_BATCH_BYTES uncompressed."""
    if rows <= 0 or size <= 0:
        return PARQUET_BATCH_ROWS
    per_row = max(1, size // rows)
    return max(_PARQUET_MIN_BATCH_ROWS, min(PARQUET_BATCH_ROWS, PARQUET_BATCH_BYTES // per_row))


def _open_parquet(handle: BinaryIO, relative: str, max_row_group_bytes: int) -> OpenedFile:
    try:
        # pre_buffer=False and a buffer: each column is read a buffer at a time, not a whole
        # column chunk (the size of the row group) at once.
        parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FocusFileError(f"{relative}: not a readable Parquet file: {safe_reason(exc)}") from None
    columns = FileColumns.of(list(parquet.schema_arrow.names))
    groups = [parquet.metadata.row_group(i) for i in range(parquet.num_row_groups)]
    for number, group in enumerate(groups):
        if group.total_byte_size > max_row_group_bytes:
            raise FocusFileError(
                f"{relative}: row group {number} holds {_mib(group.total_byte_size)} uncompressed "
                f"({group.num_rows} rows), more than the {_mib(max_row_group_bytes)} a load reads at "
                "once (FINOPS_MAX_ROW_GROUP_BYTES); write the file with smaller row groups "
                "(e.g. 128 MiB) or raise the bound"
            )

    def batches() -> Iterator[tuple[pa.RecordBatch, int | None, int]]:
        row = 1
        for number, group in enumerate(groups):
            size = _batch_rows(group.num_rows, group.total_byte_size)
            try:
                for batch in parquet.iter_batches(batch_size=size, row_groups=[number]):
                    renamed = pa.RecordBatch.from_arrays(batch.columns, names=columns.unique)
                    yield renamed, number, row
                    row += batch.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise FocusFileError(
                    f"{relative}: row group {number} is unreadable: {safe_reason(exc)}"
                ) from None

    return OpenedFile(relative, columns, batches())
