"""How the event tables' monotone number columns are laid out on disk (format version 3), and
the one view that turns them back into the plain uint64 columns every reader gets.

A step, RIP or RSP column is stored as the differences between consecutive rows of its
batch, split into two int32 columns: `<name>` (the low half, sign-extended) and `<name>_hi`
(the rest, almost always 0). The first row's difference is from 0, so each batch decodes by
itself. zstd compresses plain uint64 counters poorly and slowly (seven of every eight bytes
are alike, so its hash table finds only short matches); the differences repeat with the
program's loops and compress to almost nothing, ~20x faster. Arithmetic is modulo 2^64, so
every uint64 sequence survives the round trip exactly.

`encode` is applied by `TableWriter.write`, `decode` by `TraceFiles.batches`: no reader sees
the stored layout. The recorder's drain thread builds its batches in it directly (recorder.c
`vm_split`, tested equal to `_split`) and hands them to `TableWriter.write_stored`.
Imports pyarrow and numpy only."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tracer.format.errors import TraceFormatError
from tracer.format.schema import FAST_TABLES, TABLES, schema_of

# Format versions whose event tables hold these columns as differences (older: plain).
FIRST_DELTA_VERSION = 3
DELTA_COLUMNS: dict[str, tuple[str, ...]] = {
    "accesses": ("step", "rip"),
    "rsp": ("step", "rip", "old", "new"),
}


def high_name(column: str) -> str:
    """The stored column holding the high half of `column`'s differences."""
    return f"{column}_hi"


def _stored_schema(table: str) -> pa.Schema:
    schema = TABLES[table]
    encoded = DELTA_COLUMNS.get(table, ())
    fields = [pa.field(f.name, pa.int32(), nullable=False) if f.name in encoded else f
              for f in schema]
    fields += [pa.field(high_name(c), pa.int32(), nullable=False) for c in encoded]
    return pa.schema(fields)


# The fast recording's own tables (keyframes, pages, kernel_accesses) are stored as they are.
STORED: dict[str, pa.Schema] = {**{t: _stored_schema(t) for t in TABLES}, **FAST_TABLES}


def stored_schema(table: str, version: int) -> pa.Schema:
    """The schema of `table`'s file in a trace of format `version`."""
    return STORED[table] if version >= FIRST_DELTA_VERSION else schema_of(table)


def stored_fields(table: str, version: int, columns: list[str]) -> list[int]:
    """Indices of the stored fields that hold `columns` (for IpcReadOptions)."""
    schema = stored_schema(table, version)
    names = list(columns)
    if version >= FIRST_DELTA_VERSION:
        names += [high_name(c) for c in columns if c in DELTA_COLUMNS.get(table, ())]
    return sorted(schema.get_field_index(n) for n in names)


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
