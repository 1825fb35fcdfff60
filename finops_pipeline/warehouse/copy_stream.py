"""Validated batches -> the bytes of `COPY ... FROM STDIN`: binary where exact, CSV otherwise.

PostgreSQL reads COPY's binary format far more cheaply than text: a timestamp
arrives as an int64, a numeric as its base-10000 digits, a text value without
quoting to undo. pgpq encodes Arrow batches into that format. A batch goes binary
when every decimal of it has an exact `decimal128` form (at most 38 digits, at the
widest scale found in its column: validation has typed it so already, see
`exact_decimal128`); any other batch goes as CSV, which PostgreSQL parses itself.
Either way the stored values are the source values, to the digit.

Display scale: a binary numeric carries its column's widest scale within the batch,
so `1.5` loaded beside `0.1234` reads back as `1.5000`, the same number.

Consecutive chunks with one `statement` number belong to one COPY statement; a
new statement starts when the format, or the Arrow schema of the binary batches,
changes (one per load in practice: an export keeps its decimals' scales).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pgpq import ArrowToPostgresBinaryEncoder
from pgpq.encoders import StringEncoderBuilder
from pgpq.schema import Jsonb

from finops_pipeline.landing.focus_columns import FOCUS_COLUMNS
from finops_pipeline.money import exact_decimal128

__all__ = ["CopyChunk", "CopyEncoder", "binary_form", "to_csv_bytes"]

_DECIMALS: Final = frozenset(c.sql for c in FOCUS_COLUMNS if c.kind == "decimal")
_JSONB: Final = frozenset({*(c.sql for c in FOCUS_COLUMNS if c.kind == "json"), "extra"})


@dataclass(frozen=True)
class CopyChunk:
    statement: int  # chunks of one COPY statement are consecutive and share this number
    binary: bool  # FORMAT binary, else FORMAT csv
    data: bytes


def to_csv_bytes(batch: pa.RecordBatch) -> bytes:
    """A validated batch as COPY CSV: timestamps formatted once per distinct value (Arrow's
    CSV writer formats each cell, which costs more than the rest of the row)."""
    arrays = [_timestamp_text(a) if pa.types.is_timestamp(a.type) else a for a in batch.columns]
    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(arrays, names=batch.schema.names),
        sink,
        pacsv.WriteOptions(include_header=False, batch_size=65_536),
    )
    return sink.getvalue().to_pybytes()


def _timestamp_text(values: pa.Array) -> pa.Array:
    encoded = pc.dictionary_encode(values)
    return pa.DictionaryArray.from_arrays(encoded.indices, pc.cast(encoded.dictionary, pa.string()))


def binary_form(batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """The batch with its decimals as exact `decimal128` and no dictionary columns, or None
    when a decimal column has no exact `decimal128` form (`exact_decimal128`): that batch
    goes as CSV, which PostgreSQL parses as text."""
    arrays = []
    for name, values in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if name in _DECIMALS and pa.types.is_string(values.type):
            typed = exact_decimal128(values)
            if typed is None:
                return None
            values = typed
        arrays.append(values)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _encoder(schema: pa.Schema) -> ArrowToPostgresBinaryEncoder:
    builders = {
        f.name: (
            StringEncoderBuilder.new_with_output(f, Jsonb())
            if f.name in _JSONB
            else ArrowToPostgresBinaryEncoder.infer_encoder(f)
        )
        for f in schema
    }
    return ArrowToPostgresBinaryEncoder.new_with_encoders(schema, builders)


class CopyEncoder:
    """Encodes the validated batches of one load, in order, into COPY chunks."""

    def __init__(self) -> None:
        self._statement = 0
        self._binary: bool | None = None
        self._schema: pa.Schema | None = None
        self._encoder: ArrowToPostgresBinaryEncoder | None = None

    def encode(self, batch: pa.RecordBatch) -> Iterator[CopyChunk]:
        typed = binary_form(batch)
        if typed is None:
            if self._binary is not False:
                yield from self.finish()
                self._binary, self._statement = False, self._statement + 1
            yield CopyChunk(self._statement, False, to_csv_bytes(batch))
            return
        if self._encoder is None or typed.schema != self._schema:
            yield from self.finish()
            self._binary, self._schema, self._statement = True, typed.schema, self._statement + 1
            self._encoder = _encoder(typed.schema)
            yield CopyChunk(self._statement, True, self._encoder.write_header())
        data = self._encoder.write_batch(typed)
        if data:  # pgpq buffers small batches until it has enough to send
            yield CopyChunk(self._statement, True, data)

    def finish(self) -> Iterator[CopyChunk]:
        """The end of the current binary statement (its buffered rows and trailer), if any."""
        if self._encoder is not None:
            yield CopyChunk(self._statement, True, self._encoder.finish())
        self._encoder, self._schema, self._binary = None, None, None
