"""Reads a trace directory and refuses, with a sentence, anything that is not a whole
vmtrace trace of a version we understand. Imports pyarrow only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracer.format.checksum import sha256_file, update_from_file
from tracer.format.schema import FORMAT_NAME, FORMAT_VERSION, META_FILE, TABLES, file_name


class TraceFormatError(Exception):
    """The directory is not a readable vmtrace trace; the message says why."""


@dataclass(frozen=True)
class TraceMeta:
    """meta.json as a typed record; `raw` keeps every key for tools that want more."""

    format_version: int
    complete: bool
    program: dict[str, Any]
    argv: list[str]
    env: list[str]
    warnings: list[str]
    initial: dict[str, Any]
    end: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)


def _read_meta(directory: Path) -> TraceMeta:
    path = directory / META_FILE
    if not directory.is_dir():
        raise TraceFormatError(f"{directory} is not a trace directory (no such directory)")
    if not path.exists():
        raise TraceFormatError(f"{directory} is not a vmtrace trace: it has no {META_FILE}")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{path} is corrupt: it is not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise TraceFormatError(f"{path} does not describe a vmtrace trace")
    version = raw.get("format_version")
    # Version 1 numbered steps otherwise (an extra step after each rep instruction): its
    # steps would not replay, so it is refused like a newer one.
    if not isinstance(version, int) or version != FORMAT_VERSION:
        raise TraceFormatError(
            f"{directory} uses trace format version {version!r}; this vmtrace reads version "
            f"{FORMAT_VERSION} (upgrade vmtrace, or record the program again)"
        )
    return TraceMeta(
        format_version=version,
        complete=bool(raw.get("complete")),
        program=raw.get("program", {}),
        argv=raw.get("argv", []),
        env=raw.get("env", []),
        warnings=raw.get("warnings", []),
        initial=raw.get("initial", {}),
        end=raw.get("end") or {},
        raw=raw,
    )


class TraceFiles:
    """The files of one recording. Opening it never writes to it.

    A trace whose recording was killed (`complete` false in meta.json) is still readable:
    every batch that reached the disk is returned, and `complete` tells the caller.
    """

    def __init__(self, directory: str | Path):
        self.path = Path(directory)
        self.meta = _read_meta(self.path)
        self.truncated_tables: set[str] = set()

    @property
    def complete(self) -> bool:
        return self.meta.complete

    def verify(self) -> None:
        """Checks every table file against the size and SHA-256 written when the recording
        completed (Arrow IPC itself carries no checksum).

        Raises:
            TraceFormatError: a file is missing, has another size, or other contents.
        """
        if not self.complete:
            return  # checksums are written when a recording completes
        for name, expected in (self.meta.raw.get("files") or {}).items():
            path = self.path / name
            if not path.exists():
                raise TraceFormatError(f"{self.path} is damaged: {name} is missing")
            if path.stat().st_size != expected["bytes"]:
                raise TraceFormatError(
                    f"{path} is corrupt or truncated: it has {path.stat().st_size} bytes, "
                    f"the recording wrote {expected['bytes']}")
            if sha256_file(path) != expected["sha256"]:
                raise TraceFormatError(f"{path} is corrupt: its bytes changed since the "
                                       "recording wrote them (checksum mismatch)")

    def has(self, table: str) -> bool:
        return (self.path / file_name(table)).exists()

    def batches(self, table: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Yields the table's record batches in order.

        Raises:
            TraceFormatError: the file is corrupt in a complete trace, or has another schema.
        """
        path = self.path / file_name(table)
        if not path.exists():
            if self.complete:
                raise TraceFormatError(f"{self.path} is damaged: {path.name} is missing")
            return
        expected = TABLES[table]
        try:
            with pa.memory_map(str(path)) as source:
                if not pa.ipc.open_stream(source).schema.equals(expected, check_metadata=False):
                    raise TraceFormatError(f"{path} does not have the {table} schema of format "
                                           f"version {FORMAT_VERSION}")
                source.seek(0)
                # Decompress only the columns asked for: a one-column pass over the accesses
                # table is then about ten times faster.
                options = None
                if columns:
                    options = pa.ipc.IpcReadOptions(included_fields=sorted(
                        expected.get_field_index(c) for c in columns))
                reader = pa.ipc.open_stream(source, options=options)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    yield batch.select(columns) if columns else batch
        except (pa.ArrowInvalid, OSError) as exc:
            # A cut stream raises ArrowIOError (an OSError: "Expected to be able to read N
            # bytes for message body"), a garbled message header ArrowInvalid or OSError.
            if self.complete:
                raise TraceFormatError(f"{path} is corrupt or truncated ({exc})") from None
            # A killed recording: the last batch was cut mid-write; what came before stands.
            self.truncated_tables.add(table)

    def table(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """Reads a whole table (use `batches` or DuckDB for the big event tables)."""
        schema = TABLES[table]
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        return pa.Table.from_batches(list(self.batches(table, columns)), schema=schema)

    def record_batch_reader(self, table: str, columns: list[str] | None = None
                            ) -> pa.RecordBatchReader:
        """A streaming reader, e.g. for DuckDB to aggregate without loading the table."""
        schema = TABLES[table]
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        return pa.RecordBatchReader.from_batches(schema, self.batches(table, columns))

    def content_hash(self) -> str:
        """A hash of the trace's bytes: the key for caches kept beside it."""
        h = hashlib.sha256()
        for path in sorted(self.path.glob("*.arrows")) + [self.path / META_FILE]:
            h.update(path.name.encode())
            update_from_file(h, path)
        return h.hexdigest()
