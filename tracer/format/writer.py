"""Writes a trace directory: one Arrow IPC stream per table, batches flushed as they come,
and a checksum journal line for each batch once it is on disk.

Stream files (not the footer-based file format) so that a recording killed mid-run leaves
every batch already written readable, and provably intact (tracer/format/journal.py).
Imports pyarrow only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.format.build import record_batch
from tracer.format.checksum import sha256_file
from tracer.format.journal import JournalEntry, JournalWriter
from tracer.format.layout import DELTA_COLUMNS, STORED
from tracer.format.schema import (
    CHECKSUMS_FILE, FAST_FILES, FORMAT_NAME, FORMAT_VERSION, META_FILE, PROGRAM_FILE,
    SOURCES_FILE, TABLES, file_name, schema_of,
)

# On the writing thread alone (no Arrow thread pool): since the event tables are stored as
# differences (tracer/format/layout.py) a batch compresses faster than the emulator fills
# it, and handing buffers to pool threads cost more CPU (44 vs 37 ns per access event on
# `mixed`) and competes with the emulator thread for the cores.
_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd", use_threads=False)


class _HashingSink:
    """The file object the IPC writer writes into: it keeps the bytes of the batch being
    written, hashes them, and writes them to the file when the batch is committed."""

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._pending: list[bytes] = []
        self._digest = hashlib.sha256()
        self.position = 0       # bytes handed to us
        self.committed = 0      # bytes on disk and in the journal
        self.closed = False

    def write(self, data) -> int:
        chunk = bytes(data)
        self._pending.append(chunk)
        self._digest.update(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass  # bytes reach the file in `commit`, a whole batch at a time

    def commit(self) -> tuple[int, str] | None:
        """Writes the pending bytes to the file; returns (start, sha256) of them."""
        if not self._pending:
            return None
        view = memoryview(b"".join(self._pending))
        while view:
            view = view[os.write(self._fd, view):]
        self._pending.clear()
        start, self.committed = self.committed, self.position
        digest, self._digest = self._digest.hexdigest(), hashlib.sha256()
        return start, digest

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self.closed = True


class TableWriter:
    """Appends record batches of one table to its stream file: each batch is written to the
    file, then its journal line, so whatever a kill leaves is whole or unjournaled.

    `schema` is the table's (what `write` takes); the file holds it in the stored layout."""

    def __init__(self, directory: Path, table: str):
        self.schema = schema_of(table)
        self.path = directory / file_name(table)
        self._sink = _HashingSink(self.path)
        self._journal = JournalWriter(directory)
        self._table = table
        self._writer = pa.ipc.new_stream(self._sink, STORED[table], options=_OPTIONS)
        self.rows = 0

    def _commit(self, rows: int) -> None:
        done = self._sink.commit()
        if done is not None:
            start, digest = done
            self._journal.append(JournalEntry(self.path.name, start, self._sink.committed,
                                              rows, digest))

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        if self._table in DELTA_COLUMNS:
            # Imported here: the codec computes with numpy, which the record process never
            # loads (its drain thread encodes in C and calls write_stored; vmtrace/cli.py).
            from tracer.format.deltas import encode

            batches = [encode(self._table, b) for b in batches]
        for b in batches:
            self._writer.write_batch(b)
        self._commit(batch.num_rows)
        self.rows += batch.num_rows

    def write_stored(self, batch: pa.RecordBatch) -> None:
        """Appends a batch already in the stored layout (tracer/format/layout.py)."""
        if batch.num_rows == 0:
            return
        self._writer.write_batch(batch)
        self._commit(batch.num_rows)
        self.rows += batch.num_rows

    def bytes_written(self) -> int:
        return self._sink.tell()

    def close(self) -> None:
        if self._sink.closed:
            return
        self._writer.close()    # the schema of an empty table, and the end-of-stream mark
        self._commit(0)
        self._sink.close()
        self._journal.close()


class RowBuffer:
    """Collects rows of a small table and writes them as one batch every `every` rows."""

    def __init__(self, writer: TableWriter, every: int = 256):
        self._writer = writer
        self._every = every
        self._columns: dict[str, list[Any]] = {f.name: [] for f in writer.schema}

    def add(self, **row: Any) -> None:
        for name, values in self._columns.items():
            values.append(row.get(name))
        if len(next(iter(self._columns.values()))) >= self._every:
            self.flush()

    def flush(self) -> None:
        if not next(iter(self._columns.values())):
            return
        self._writer.write(record_batch(self._columns, self._writer.schema))
        for values in self._columns.values():
            values.clear()

    def close(self) -> None:
        self.flush()
        self._writer.close()


def write_table(directory: Path, table: str, data: dict[str, list[Any]]) -> None:
    """Writes a whole small table at once."""
    writer = TableWriter(directory, table)
    writer.write(record_batch(data, writer.schema))
    writer.close()


def file_checksums(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file of the trace but meta.json (the tables, program.elf and
    the journal), for meta.json's `files` when the recording completes: a complete trace
    is then checked whole, and any file missing or cut is noticed when it is opened."""
    names = sorted({PROGRAM_FILE, CHECKSUMS_FILE, SOURCES_FILE, *FAST_FILES,
                    *(file_name(t) for t in TABLES)})
    return {name: {"bytes": (directory / name).stat().st_size,
                   "sha256": sha256_file(directory / name)}
            for name in names if (directory / name).is_file()}


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Writes meta.json atomically (a reader never sees half a file)."""
    body = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta}
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / META_FILE)
