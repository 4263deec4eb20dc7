"""Writes a trace directory: one Arrow IPC stream per table, batches flushed as they come.

Stream files (not the footer-based file format) so that a recording killed mid-run leaves
every batch already written readable. Imports pyarrow only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.format.build import record_batch
from tracer.format.checksum import sha256_file
from tracer.format.schema import FORMAT_NAME, FORMAT_VERSION, META_FILE, TABLES, file_name

_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


class TableWriter:
    """Appends record batches of one table to its stream file, flushing each to disk."""

    def __init__(self, directory: Path, table: str):
        self.schema = TABLES[table]
        self.path = directory / file_name(table)
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema, options=_OPTIONS)
        self.rows = 0

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if isinstance(batch, pa.Table):
            for b in batch.to_batches():
                self._writer.write_batch(b)
        else:
            self._writer.write_batch(batch)
        self._sink.flush()
        self.rows += batch.num_rows

    def bytes_written(self) -> int:
        return self._sink.tell()

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


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
    """Size and SHA-256 of every table file: Arrow IPC has no checksums of its own, so this
    is what lets a reader notice bytes changed inside a compressed batch."""
    return {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for path in sorted(directory.glob("*.arrows"))}


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """Writes meta.json atomically (a reader never sees half a file)."""
    body = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta}
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / META_FILE)
