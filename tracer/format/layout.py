"""How the event tables' monotone number columns are laid out on disk (format version 3), and
the one view that turns them back into the plain uint64 columns every reader gets.

A step, RIP or RSP column is stored as the differences between consecutive rows of its
batch, split into two int32 columns: `<name>` (the low half, sign-extended) and `<name>_hi`
(the rest, almost always 0). The first row's difference is from 0, so each batch decodes by
itself. zstd compresses plain uint64 counters poorly and slowly (seven of every eight bytes
are alike, so its hash table finds only short matches); the differences repeat with the
program's loops and compress to almost nothing, ~20x faster. Arithmetic is modulo 2^64, so
every uint64 sequence survives the round trip exactly.

This module names the stored columns and schemas; tracer/format/deltas.py converts between the
layouts. Imports pyarrow only: the record process loads this, and no numpy (its drain thread
builds its batches in the stored layout directly, recorder.c `vm_split`)."""

from __future__ import annotations

import pyarrow as pa

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
