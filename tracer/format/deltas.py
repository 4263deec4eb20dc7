"""Converts event-table batches between their stored layout (tracer/format/layout.py: the
differences of the monotone number columns, in int32 halves) and the plain uint64 columns
every reader gets.

`encode` is applied by `TableWriter.write`, `decode` by `TraceFiles.batches`: no reader sees
the stored layout. The recorder's drain thread builds its batches in it directly (recorder.c
`vm_split`, tested equal to `_split`) and hands them to `TableWriter.write_stored`, so that
the record process never imports this module, nor numpy. Imports pyarrow and numpy only."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tracer.format.errors import TraceFormatError
from tracer.format.layout import DELTA_COLUMNS, FIRST_DELTA_VERSION, STORED, high_name
from tracer.format.schema import schema_of


def _split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint64 values -> (low, high) int32 halves of their row-to-row differences."""
    signed = values.view(np.int64)
    diff = np.empty(len(signed), np.int64)
    if len(signed):
        diff[0] = signed[0]
        np.subtract(signed[1:], signed[:-1], out=diff[1:])  # wraps modulo 2^64
    low = diff.astype(np.int32)  # keeps the low 32 bits
    wide = low.astype(np.int64)
    if np.array_equal(wide, diff):
        return low, np.zeros(len(diff), np.int32)
    return low, ((diff - wide) >> 32).astype(np.int32)


def _join(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The inverse of `_split`: uint64 values."""
    diff = low.astype(np.int64)
    if high.any():
        diff += high.astype(np.int64) << 32
    return np.cumsum(diff, dtype=np.int64).view(np.uint64)


def _int_array(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _numbers(column: pa.Array, dtype) -> np.ndarray:
    """The values of a non-null fixed-width column, without a copy."""
    buffer = column.buffers()[1]
    return np.frombuffer(buffer, dtype, len(column), column.offset * np.dtype(dtype).itemsize)


def encode(table: str, batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of `table`'s schema as it is stored (unchanged for tables without
    differences)."""
    encoded = DELTA_COLUMNS.get(table)
    if not encoded:
        return batch
    arrays, highs = [], []
    for field, column in zip(batch.schema, batch.columns):
        if field.name in encoded:
            low, high = _split(_numbers(column, np.uint64))
            arrays.append(_int_array(low, pa.int32()))
            highs.append(_int_array(high, pa.int32()))
        else:
            arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays + highs, schema=STORED[table])


def decode(table: str, version: int, batch: pa.RecordBatch, where: str) -> pa.RecordBatch:
    """A stored batch (all or some columns, as `stored_fields` chose them) as readers see
    it: `table`'s own types, the differences summed back into values.

    Raises:
        TraceFormatError: a stored difference column has nulls (vmtrace writes none).
    """
    encoded = DELTA_COLUMNS.get(table)
    if version < FIRST_DELTA_VERSION or not encoded:
        return batch
    names = batch.schema.names
    arrays, fields = [], []
    for name, column in zip(names, batch.columns):
        if name.endswith("_hi") and name[:-3] in encoded:
            continue
        field = schema_of(table).field(name)
        if name in encoded:
            high = batch.column(names.index(high_name(name)))
            if column.null_count or high.null_count:
                raise TraceFormatError(f"{where} has nulls in {name}, which the format "
                                       "never leaves empty")
            values = _join(_numbers(column, np.int32), _numbers(high, np.int32))
            column = _int_array(values, pa.uint64())
        arrays.append(column)
        fields.append(field)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
