"""`Trace`: a recorded trace as tables, the thin handle every analysis module reads.

Imports `tracer.format` only (never the emulator), and no analysis module: the analyses
import it (the notebook methods live in analysis/notebook.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from tracer.format import TraceFiles, TraceFormatError
from tracer.format.regular import read_host_file

if TYPE_CHECKING:
    import pandas as pd

MEMORY_LIMIT = "900MB"
MAX_SOURCE_BYTES = 64 << 20


@dataclass(frozen=True)
class SourceLookup:
    """A source file's text (None: not available) and, when it is missing or cut, why."""

    text: str | None
    note: str | None


def _same_file(a: str, b: str) -> bool:
    return a.rsplit("/", 1)[-1] == b.rsplit("/", 1)[-1]


class Trace:
    """A recorded trace. Small tables load on first use; the big event tables (accesses,
    rsp) are meant to be streamed or queried with DuckDB through `reader` and `sql`."""

    def __init__(self, path: str | Path):
        self.files = TraceFiles(path)
        self.path = self.files.path
        self.meta = self.files.meta

    @property
    def complete(self) -> bool:
        return self.files.complete

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return self.files.table(name, columns)

    def reader(self, name: str, columns: list[str] | None = None) -> pa.RecordBatchReader:
        """A streaming reader of one table that decompresses only the named columns."""
        return self.files.record_batch_reader(name, columns)

    def sql(self, query: str, tables: dict[str, list[str]],
            params: dict[str, pa.Table] | None = None,
            materialize: dict[str, str] | None = None) -> pa.Table:
        """Runs one DuckDB query over streamed event tables (bounded memory).

        Args:
            query: SQL naming each table of `tables` (and of `params`) by its key.
            tables: trace table name -> the columns the query needs; each is streamed once.
            params: extra small Arrow tables to register under their key.
            materialize: name -> query, run first as `CREATE TEMP TABLE name AS query`.
                A join between two streamed tables needs this: over bare streams DuckDB
                has no row counts and picks plans that are orders of magnitude slower.

        Returns:
            The result as an Arrow table (it should be small: aggregate in the query).
        """
        # Imported here: a command that runs no query (`trace info`) does not load DuckDB.
        import duckdb

        # A memory cap makes DuckDB spill big sorts and joins to disk instead of growing.
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT,
                                     "preserve_insertion_order": False})
        refused: list[TraceFormatError] = []

        def kept(name: str, columns: list[str]):
            # A batch that does not decode is refused inside DuckDB's scan, which reports
            # it as its own error: keep ours, to raise it instead.
            try:
                yield from self.files.batches(name, columns)
            except TraceFormatError as exc:
                refused.append(exc)
                raise

        try:
            for name, columns in tables.items():
                schema = self.reader(name, columns).schema
                con.register(name, pa.RecordBatchReader.from_batches(schema,
                                                                     kept(name, columns)))
            for name, table in (params or {}).items():
                con.register(name, table)
            for name, sub in (materialize or {}).items():
                con.execute(f"CREATE TEMP TABLE {name} AS {sub}")
            return con.sql(query).to_arrow_table()
        except duckdb.Error:
            if refused:
                raise refused[0] from None
            raise
        finally:
            con.close()

    @cached_property
    def syscalls(self) -> pa.Table:
        return self.table("syscalls")

    @cached_property
    def regions(self) -> pa.Table:
        return self.table("regions")

    @cached_property
    def symbols(self) -> pa.Table:
        return self.table("symbols")

    @cached_property
    def lines(self) -> pa.Table:
        return self.table("lines")

    @cached_property
    def output(self) -> pa.Table:
        return self.table("output")

    @cached_property
    def exec_counts(self) -> pa.Table:
        if not self.files.has("exec_counts"):
            return pa.table({"rip": pa.array([], pa.uint64()), "count": pa.array([], pa.uint64())})
        return self.table("exec_counts")

    @cached_property
    def memory_image(self) -> pa.Table:
        return self.table("memory_image")

    @property
    def initial_rsp(self) -> int:
        return self.meta.initial.rsp

    @property
    def initial_brk(self) -> int:
        return self.meta.initial.brk

    @cached_property
    def instructions(self) -> int:
        """Steps executed; for a killed recording (no `end` in meta.json), one past the
        last step any event table reached."""
        if self.meta.end is not None:
            return self.meta.end.instructions
        last = 0
        for name in ("accesses", "rsp", "syscalls"):
            for batch in self.reader(name, ["step"]):
                if batch.num_rows:
                    last = max(last, int(batch.column("step")[-1].as_py()) + 1)
        return last

    def source_text(self) -> str | None:
        """The program's own source (the .asm or .c), or None; see `source`."""
        return self.source().text

    @cached_property
    def _kept_sources(self):
        return self.files.sources()

    def source(self, name: str | None = None) -> SourceLookup:
        """A source file of the run, from the copy kept inside the trace.

        A trace recorded before vmtrace kept sources falls back to the file recorded in
        meta.json, read from the host when it is still where it was and unchanged (a moved
        or edited file gives no text rather than a listing that no longer matches the run).

        Args:
            name: the file as the line table names it (default: the program's source).

        Returns:
            Its text (None when missing) and, when missing or cut, a sentence saying why.
        """
        program = self.meta.program
        main = name is None or _same_file(name, program.path)
        name = program.path if name is None else name
        kept = self._kept_sources
        if kept is not None:
            found = next((k for k in kept if k.path == name), None) or next(
                (k for k in kept if _same_file(k.path, name)
                 and (k.role == "main") == main), None)
            if found is None:
                return SourceLookup(None, f"{name} is not kept in this trace (only files "
                                    "inside the source's directory and --include "
                                    "directories are kept)")
            text = found.data.decode(errors="replace")
            if found.truncated:
                return SourceLookup(text, f"only the first {len(found.data):,} of "
                                    f"{found.size:,} bytes of {name} are kept in the trace")
            return SourceLookup(text, None)
        expected = program.source_sha256 if main else None
        if not main or program.kind not in ("asm", "c") or not expected or not program.path:
            return SourceLookup(None, f"{name} is not kept in this trace (it was recorded "
                                "before vmtrace kept sources)")
        where = Path(program.path)
        data = read_host_file(where, MAX_SOURCE_BYTES)
        if data is None:
            return SourceLookup(None, f"this trace was recorded before vmtrace kept sources, "
                                f"and {program.path} (relative to where `trace record` ran) "
                                f"is not found from {Path.cwd()}")
        if hashlib.sha256(data).hexdigest() != expected:
            return SourceLookup(None, f"this trace was recorded before vmtrace kept sources, "
                                f"and {program.path} has changed since the recording")
        return SourceLookup(data.decode(errors="replace"), None)

    def df(self, name: str, columns: list[str] | None = None) -> "pd.DataFrame":
        """A small table as pandas (the event tables can be huge: prefer `sql` for them)."""
        return self.table(name, columns).to_pandas()

