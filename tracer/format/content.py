"""What a decoded batch must hold beyond its schema, checked before any consumer sees it: no
nulls in non-nullable columns, dictionary words of the format's lists (re-indexed to the
list's order, which readers may rely on), and rows of the small tables that the recorder
could have written (page-aligned regions of known kinds, syscall details that parse).

Checksums prove bytes are the ones written, not that vmtrace wrote them. Imports pyarrow
(and numpy) only."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracer.format.errors import TraceFormatError
from tracer.format.regions import PAGE
from tracer.format.schema import (
    REGION_ACTIONS, REGION_KINDS, RSP_CAUSES, SOURCES, schema_of,
)

USER_TOP = 1 << 47      # x86-64 user addresses are below 2^47
_WORDS = {("accesses", "source"): SOURCES, ("rsp", "cause"): RSP_CAUSES}
_PERMS = re.compile(r"[r-][w-][x-]")


def _canonical(table: str, name: str, column: pa.DictionaryArray, words: list[str],
               where: str) -> pa.DictionaryArray:
    present = column.dictionary.to_pylist()
    if present == words:
        return column
    unknown = [w for w in present if w not in words]
    if unknown:
        raise TraceFormatError(f"{where} has a {name} {unknown[0]!r} that format "
                               f"{table}.{name} does not know")
    remap = np.array([words.index(w) for w in present], np.int8)
    indices = remap[column.indices.to_numpy(zero_copy_only=False)]
    return pa.DictionaryArray.from_arrays(
        pa.Array.from_buffers(pa.int8(), len(indices), [None, pa.py_buffer(indices.tobytes())]),
        pa.Array.from_buffers(pa.string(), len(words), [
            None, pa.py_buffer(np.cumsum([0] + [len(w) for w in words], dtype=np.int32)
                               .tobytes()),
            pa.py_buffer("".join(words).encode())]))


def _region_problem(row: dict) -> str | None:
    """What is wrong with one row of regions or memory_image (`end` given for both)."""
    start, end, action = row["start"], row["end"], row.get("action")
    if action is not None and action not in REGION_ACTIONS:
        return f"an unknown action {action!r}"
    if row["kind"] not in REGION_KINDS:
        return f"an unknown kind {row['kind']!r}"
    if not _PERMS.fullmatch(row["perms"]):
        return f"permissions {row['perms']!r}"
    if end > USER_TOP or end < start or (end == start and action not in ("brk", None)):
        return f"a range [{start:#x}, {end:#x}) that is not user memory"
    # The heap's start is the initial break, which need not be page-aligned.
    if action != "brk" and (start % PAGE or (action is not None and end % PAGE)):
        return f"a range [{start:#x}, {end:#x}) that is not whole pages"
    return None


def _region_rows(rows: list[dict], where: str) -> None:
    for row in rows:
        problem = _region_problem(row)
        if problem:
            raise TraceFormatError(f"{where} has a row with {problem}; vmtrace writes "
                                   "none such (the trace is damaged or forged)")


def _syscall_rows(rows: list[dict], where: str) -> None:
    for row in rows:
        detail = row.get("detail")
        if row.get("abi", "x86_64") not in ("x86_64", "i386"):
            raise TraceFormatError(f"{where} has a syscall of an unknown ABI {row['abi']!r}")
        if detail is None or detail in ("unsupported", "signal"):
            continue
        try:
            changes = json.loads(detail)
        except (ValueError, RecursionError):
            changes = None
        if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
            raise TraceFormatError(f"{where} has a syscall at step {row.get('step')} whose "
                                   "detail is not a list of changes")


def _rows(table: str, batch: pa.RecordBatch) -> list[dict] | None:
    """The rows of a small table that `checked_batch` checks (None: not checked here)."""
    names = batch.schema.names
    if table == "regions" and {"action", "start", "end", "perms", "kind"} <= set(names):
        return batch.select(["action", "start", "end", "perms", "kind"]).to_pylist()
    if table == "memory_image" and {"start", "perms", "kind", "data"} <= set(names):
        rows = batch.select(["start", "perms", "kind"]).to_pylist()
        for row, size in zip(rows, pc.binary_length(batch.column("data")).to_pylist()):
            row["end"] = row["start"] + size
        return rows
    if table == "syscalls" and {"step", "detail", "abi"} <= set(names):
        return batch.select(["step", "detail", "abi"]).to_pylist()
    return None


def checked_batch(table: str, batch: pa.RecordBatch, where: str) -> pa.RecordBatch:
    """The batch, or a copy with its dictionary columns in the format's word order.

    Args:
        table: the table it belongs to.
        batch: a decoded, validated batch (all or some of the table's columns).
        where: the file, for messages.

    Raises:
        TraceFormatError: a null where the format has none, an unknown dictionary word, or a
            row the recorder cannot have written.
    """
    schema = schema_of(table)
    for i, field in enumerate(batch.schema):
        column = batch.column(i)
        if not schema.field(field.name).nullable and column.null_count:
            raise TraceFormatError(f"{where} has nulls in {field.name}, which the format "
                                   "never leaves empty")
        words = _WORDS.get((table, field.name))
        if words is not None:
            fixed = _canonical(table, field.name, column, words, where)
            if fixed is not column:
                batch = batch.set_column(i, field, fixed)
    rows = _rows(table, batch) if batch.num_rows else None
    if rows is not None:
        if table == "syscalls":
            _syscall_rows(rows, where)
        else:
            _region_rows(rows, where)
    return batch
