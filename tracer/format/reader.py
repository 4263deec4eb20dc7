"""Reads a trace directory and refuses, with a sentence, anything that is not a whole
vmtrace trace of a version we understand: meta.json is validated before use, every file
is a regular file inside the directory, and every byte a reader gets was checked against
the checksums written with it. Imports pyarrow only."""

from __future__ import annotations

import hashlib
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from tracer.format.content import checked_batch
from tracer.format.deltas import decode
from tracer.format.errors import EventsPending, TraceFormatError
from tracer.format.journal import (
    MAX_JOURNAL_BYTES, JournalEntry, parse_journal, verified_length,
)
from tracer.format.layout import stored_fields, stored_schema
from tracer.format.meta import MAX_META_BYTES, TraceMeta, parse_meta
from tracer.format.regular import map_regular, open_directory, open_regular, read_regular
from tracer.format.schema import (
    CHECKSUMS_FILE, EVENT_TABLES, FAST_FILES, META_FILE, OPTIONAL_FILES, PROGRAM_FILE,
    SOURCES_FILE, STARTUP_TABLES, TABLES, TRACE_FILES, file_name, schema_of,
)
from tracer.format.sources import MAX_SOURCES_BYTES, SourceFile, parse_sources

__all__ = ["TraceFiles", "TraceFormatError", "TraceMeta"]

MAX_PROGRAM_BYTES = 1 << 30
MAX_FAST_BYTES = 8 << 30


class TraceFiles:
    """The files of one recording. Opening it never writes to it.

    Opening checks meta.json and, for a complete trace, that every file is there with the
    size the recording wrote. Each table's bytes are checked against the checksum journal
    the first time the table is read; `verify` checks every file at once.

    A trace whose recording was killed (`complete` false) is still readable: every batch
    the journal vouches for is returned, the unjournaled rest of a file (the batch being
    written when the process died) is left out, and `complete` tells the caller.
    """

    def __init__(self, directory: str | Path):
        self.path = Path(directory)
        self._dir_fd = open_directory(self.path)
        weakref.finalize(self, os.close, self._dir_fd)
        data = read_regular(self._dir_fd, META_FILE, self.path, MAX_META_BYTES)
        if data is None:
            raise TraceFormatError(f"{self.path} is not a vmtrace trace: it has no {META_FILE}")
        self.meta: TraceMeta = parse_meta(data, self.path / META_FILE)
        self.truncated_tables: set[str] = set()
        self._journal: dict[str, list[JournalEntry]] | None = None
        self._checked: dict[str, memoryview | None] = {}
        self._check_presence()

    @property
    def complete(self) -> bool:
        return self.meta.complete

    @property
    def pending(self) -> bool:
        """True for a fast recording whose event tables are not materialised yet."""
        return self.meta.pending

    def _pending_error(self) -> EventsPending:
        return EventsPending(f"{self.path} was recorded with --fast: its event tables are not "
                             f"materialised yet (run `trace materialize {self.path}`)", self.path)

    # -- opening and checking files -------------------------------------------------------
    def _open(self, name: str) -> int | None:
        return open_regular(self._dir_fd, name, self.path)

    def _check_presence(self) -> None:
        """Every file of a complete trace is there with its recorded size; in any trace,
        each trace file present is a regular file (stat only: nothing is hashed here)."""
        expected = self.meta.files or {}
        if self.complete:
            # A pending trace lacks the event tables (and, while it is pending, any left
            # by an interrupted materialisation are not its files).
            absent = {file_name(t) for t in EVENT_TABLES} if self.pending else set()
            missing = sorted(TRACE_FILES - OPTIONAL_FILES - {META_FILE} - absent
                             - set(expected))
            if missing:
                raise TraceFormatError(f"{self.path / META_FILE} is damaged: its `files` does "
                                       f"not list {', '.join(missing)}")
        for name in sorted(TRACE_FILES - {META_FILE}):
            fd = self._open(name)
            if fd is None:
                if name in expected:
                    raise TraceFormatError(f"{self.path} is damaged: {name} is missing")
                continue
            size = os.fstat(fd).st_size
            os.close(fd)
            if name == CHECKSUMS_FILE and self.pending and name in expected \
                    and size > expected[name].bytes:
                continue  # lines an interrupted materialisation appended (`_entries`)
            if name in expected and size != expected[name].bytes:
                raise TraceFormatError(
                    f"{self.path / name} is corrupt or truncated: it has {size:,} bytes, the "
                    f"recording wrote {expected[name].bytes:,}")

    def _whole_file(self, name: str, limit: int, prefix: bool = False) -> bytes | None:
        """A small file's bytes, checked against `files` when the trace is complete
        (`prefix`: only the bytes `files` covers, the rest left out)."""
        data = read_regular(self._dir_fd, name, self.path, limit)
        expected = (self.meta.files or {}).get(name)
        if prefix and data is not None and expected is not None:
            data = data[:expected.bytes]
        if data is not None and expected is not None and (
                len(data) != expected.bytes
                or hashlib.sha256(data).hexdigest() != expected.sha256):
            raise TraceFormatError(f"{self.path / name} is corrupt: its bytes changed since "
                                   "the recording wrote them (checksum mismatch)")
        return data

    def _entries(self, name: str) -> list[JournalEntry]:
        if self._journal is None:
            data = self._whole_file(CHECKSUMS_FILE, MAX_JOURNAL_BYTES,
                                    prefix=self.pending and self.complete)
            self._journal = parse_journal(data or b"", self.complete,
                                          self.path / CHECKSUMS_FILE)
        return self._journal.get(name, [])

    def _checked_bytes(self, table: str) -> memoryview | None:
        """The checked bytes of a table's file (None when it is absent or nothing of it is
        journaled, which only a killed recording leaves)."""
        name = file_name(table)
        if self.pending and table in EVENT_TABLES:
            raise self._pending_error()
        if name in self._checked:
            return self._checked[name]
        path = self.path / name
        fd = self._open(name)
        if fd is None:
            if self.complete:
                raise TraceFormatError(f"{self.path} is damaged: {name} is missing")
            self._checked[name] = None
            return None
        try:
            data = map_regular(fd)
        finally:
            os.close(fd)
        entries = self._entries(name)
        length = verified_length(entries, data, path)
        if length < len(data):
            if self.complete:
                raise TraceFormatError(
                    f"{path} is damaged: bytes {length:,} to {len(data):,} are not covered "
                    f"by {CHECKSUMS_FILE} (a complete recording covers every byte)")
            # A killed recording: the batch being written when it died.
            self.truncated_tables.add(table)
        self._checked[name] = data[:length] if length else None
        return self._checked[name]

    def _table_bytes(self, table: str) -> memoryview | None:
        """`_checked_bytes`, refusing the absence of a table every run writes first."""
        data = self._checked_bytes(table)
        if data is None and table in STARTUP_TABLES:
            raise TraceFormatError(
                f"{self.path} was recorded by a run killed before the program started: "
                f"it has no {file_name(table)} (record the program again)")
        return data

    def check_tables(self, *tables: str) -> None:
        """Checks the named tables' bytes now (each is checked once; reading it later
        costs nothing more), e.g. before announcing a long pass over them.

        Raises:
            TraceFormatError: one of them is damaged or cut.
        """
        for table in tables:
            self._table_bytes(table)

    def verify(self) -> None:
        """Checks every file of the trace against its checksums: each table's batches
        against the journal, program.elf against meta.json, and, for a complete trace, the
        journal and every file's size against `files`.

        Raises:
            TraceFormatError: a file is missing, cut, or has other contents.
        """
        self.check_tables(*(t for t in TABLES if not (self.pending and t in EVENT_TABLES)))
        self.program_bytes()
        self.sources()
        for name in sorted(FAST_FILES):
            self._whole_file(name, MAX_FAST_BYTES)

    def fast_table(self, name: str, schema: pa.Schema) -> pa.Table | None:
        """One of the files a fast recording adds (keyframes, pages, kernel accesses), read
        whole and checked against `files` (None when the trace has none).

        Raises:
            TraceFormatError: the file is damaged, changed, or has another schema.
        """
        if self.complete and name not in (self.meta.files or {}):
            return None
        data = self._whole_file(name, MAX_FAST_BYTES)
        if data is None:
            return None
        try:
            table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
            table.validate(full=True)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise TraceFormatError(f"{self.path / name} is corrupt: it does not decode ({exc})"
                                   ) from None
        if not table.schema.equals(schema, check_metadata=False):
            raise TraceFormatError(f"{self.path / name} does not have the schema of format "
                                   f"version {self.meta.format_version}")
        return table

    def program_bytes(self) -> bytes | None:
        """program.elf, checked against the SHA-256 meta.json recorded for it (None when a
        killed recording has none).

        Raises:
            TraceFormatError: it is not the program that was recorded.
        """
        data = self._whole_file(PROGRAM_FILE, MAX_PROGRAM_BYTES)
        if data is None:
            if self.complete:
                raise TraceFormatError(f"{self.path} is damaged: {PROGRAM_FILE} is missing")
            return None
        if hashlib.sha256(data).hexdigest() != self.meta.program.elf_sha256:
            raise TraceFormatError(f"{self.path / PROGRAM_FILE} is not the program that was "
                                   "recorded: its SHA-256 differs from meta.json's")
        return data

    def sources(self) -> list[SourceFile] | None:
        """The source files kept in the trace (None for a trace recorded before vmtrace
        kept them, or of a program given as an ELF without sources beside it).

        Raises:
            TraceFormatError: sources.arrows is damaged or changed since the recording.
        """
        data = self._whole_file(SOURCES_FILE, MAX_SOURCES_BYTES + (1 << 20))
        return None if data is None else parse_sources(data, self.path / SOURCES_FILE)

    # -- tables ---------------------------------------------------------------------------
    def has(self, table: str) -> bool:
        """Whether the table has any checked bytes (a killed recording may lack some)."""
        return self._checked_bytes(table) is not None

    def batches(self, table: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Yields the table's record batches in order, from checked bytes only.

        Raises:
            TraceFormatError: the file is damaged or cut, has another schema, or its
                batches do not decode; or a killed recording stopped before writing a table
                that every run has.
        """
        data = self._table_bytes(table)
        path = self.path / file_name(table)
        if data is None:
            return
        version = self.meta.format_version
        expected = stored_schema(table, version)
        try:
            source = pa.BufferReader(pa.py_buffer(data))
            if not pa.ipc.open_stream(source).schema.equals(expected, check_metadata=False):
                raise TraceFormatError(f"{path} does not have the {table} schema of format "
                                       f"version {version}")
            source.seek(0)
            # Decompress only the columns asked for: a one-column pass over the accesses
            # table is then about ten times faster.
            options = None
            if columns:
                options = pa.ipc.IpcReadOptions(
                    included_fields=stored_fields(table, version, columns))
            reader = pa.ipc.open_stream(source, options=options)
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                # Checksums prove the bytes are the ones written, not that whoever wrote
                # them was us: full validation keeps bad offsets away from compute kernels.
                batch.validate(full=True)
                # The one place the stored layout becomes the table's plain columns.
                batch = decode(table, version, batch, str(path))
                yield checked_batch(table, batch.select(columns) if columns else batch,
                                    str(path))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise TraceFormatError(f"{path} is corrupt: its batches do not decode ({exc})"
                                   ) from None

    def table(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """Reads a whole table (use `batches` or DuckDB for the big event tables)."""
        schema = schema_of(table)
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        return pa.Table.from_batches(list(self.batches(table, columns)), schema=schema)

    def record_batch_reader(self, table: str, columns: list[str] | None = None
                            ) -> pa.RecordBatchReader:
        """A streaming reader, e.g. for DuckDB to aggregate without loading the table."""
        schema = schema_of(table)
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        self._table_bytes(table)  # refuse damage here, not inside DuckDB's scan
        return pa.RecordBatchReader.from_batches(schema, self.batches(table, columns))

    def content_hash(self) -> str:
        """A hash of the trace's bytes: the key for caches kept beside it."""
        h = hashlib.sha256()
        for name in sorted(TRACE_FILES):
            fd = self._open(name)
            if fd is None:
                continue
            try:
                h.update(name.encode())
                for block in iter(lambda: os.read(fd, 1 << 20), b""):
                    h.update(block)
            finally:
                os.close(fd)
        return h.hexdigest()

    def file_stats(self) -> list[list]:
        """(name, size, mtime_ns) of each file of the trace, without following links."""
        out = []
        for name in sorted(TRACE_FILES):
            fd = self._open(name)
            if fd is None:
                continue
            st = os.fstat(fd)
            os.close(fd)
            out.append([name, st.st_size, st.st_mtime_ns])
        return out
