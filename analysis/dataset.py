"""The batch dataset (`trace batch`): four Parquet tables — programs, syscalls, stack,
accesses — each hive-partitioned by program (`<table>/program=<id>/part-0.parquet`), which
DuckDB, polars, pyarrow.dataset and Spark read with no vmtrace code. Builds one program's
rows from its trace and report data, writes them through a pyarrow filesystem (a local
directory or an object-store URI), and opens the whole dataset as DuckDB views.

Imports pyarrow, duckdb and the read side only (never the emulator, never Ray)."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from analysis.errors import AnalysisError
from analysis.findings import FindingKind
from analysis.trace import Trace

TABLES = ("programs", "syscalls", "stack", "accesses")
PARTITION = "program"
PART_FILE = "part-0.parquet"
# Statuses worth another try on a resumed batch: they depend on the machine, not the input.
RETRIED = frozenset({"time-limit", "crashed"})
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class DatasetError(AnalysisError):
    """A dataset cannot be opened, written or queried; the message says why."""


def finding_column(kind: FindingKind) -> str:
    """The `programs` column counting the findings of one kind, e.g. `findings_leak`."""
    return f"findings_{kind.name.lower()}"


FINDING_COLUMNS = [finding_column(k) for k in FindingKind]

# `program` is no column of the files: it is the partition (the directory's name).
PROGRAMS_SCHEMA = pa.schema([
    ("source", pa.string()),            # the input as given on the command line
    ("kind", pa.string()),              # asm, c, elf
    ("status", pa.string()),            # ok, or why not (see docs/trace-format.md)
    ("error", pa.string()),             # the sentence behind a status other than ok
    ("input_hash", pa.string()),        # SHA-256 of the source bytes and the options
    ("exit_code", pa.int32()),
    ("signal", pa.string()),
    ("stop_reason", pa.string()),
    ("instructions", pa.int64()),
    ("reads", pa.int64()),
    ("writes", pa.int64()),
    ("syscalls", pa.int64()),
    ("max_stack_depth", pa.int64()),    # bytes below the initial RSP
    ("stack_overflow", pa.bool_()),     # the run ended by overflowing the 8 MiB stack
    ("heap_peak", pa.int64()),          # the program break's peak above its start, bytes
    ("heap_live_peak", pa.int64()),     # peak bytes in live malloc blocks (tracked only)
    ("fragmentation", pa.float64()),    # peak external fragmentation (tracked only)
    ("findings", pa.int64()),
    *[(name, pa.int64()) for name in FINDING_COLUMNS],
    ("trace", pa.string()),             # the trace directory, relative to the dataset
    ("report", pa.string()),            # its HTML report, relative to the dataset
    ("seconds", pa.float64()),          # wall time of recording and analysis
])

SYSCALLS_SCHEMA = pa.schema([
    ("step", pa.uint64()), ("rip", pa.uint64()), ("nr", pa.int32()), ("name", pa.string()),
    ("args", pa.list_(pa.uint64())), ("ret", pa.int64()), ("detail", pa.string()),
    ("abi", pa.string()),
])

STACK_SCHEMA = pa.schema([
    ("step", pa.uint64()), ("rip", pa.uint64()), ("rsp", pa.uint64()),
    ("depth", pa.int64()), ("cause", pa.string()),
])

ACCESSES_SCHEMA = pa.schema([
    ("step", pa.uint64()), ("rip", pa.uint64()), ("addr", pa.uint64()),
    ("size", pa.uint32()), ("is_write", pa.bool_()), ("source", pa.string()),
    ("value", pa.uint64()), ("value_hi", pa.uint64()),
])

SCHEMAS = {"programs": PROGRAMS_SCHEMA, "syscalls": SYSCALLS_SCHEMA, "stack": STACK_SCHEMA,
           "accesses": ACCESSES_SCHEMA}


def valid_program_id(program: str) -> bool:
    """Whether `program` can name a partition: letters, digits, `.`, `_`, `-`, starting
    with a letter or digit (no path separator, nothing to escape, never `..`)."""
    return bool(_ID.fullmatch(program))


# -- one program's rows -----------------------------------------------------------------
def failed_row(source: str, kind: str, status: str, error: str, input_hash: str,
               seconds: float = 0.0) -> dict[str, Any]:
    """The `programs` row of an input that left no trace to analyse (it did not build,
    or the worker recording it died)."""
    row = {name: None for name in PROGRAMS_SCHEMA.names}
    row.update(source=source, kind=kind, status=status, error=error, input_hash=input_hash,
               seconds=seconds)
    return row


def program_row(data, *, source: str, status: str, error: str | None, input_hash: str,
                trace: str, report: str | None, seconds: float) -> dict[str, Any]:
    """The `programs` row of a recorded program.

    Args:
        data: its `analysis.report.ReportData` (summary, stack, heap, findings).
        source: the input as given.
        status: `ok` or why the run did not end by itself (`fault`, `max-steps`, ...).
        error: the sentence behind the status, if any.
        input_hash: the hash that identifies this input and its options.
        trace: the trace directory, relative to the dataset's root.
        report: the HTML report, relative to the dataset's root (None: not written).
        seconds: wall time spent on it.
    """
    s = data.summary
    fault = s.fault or {}
    brk = data.heap.brk["end"]
    frag = data.fragmentation
    live_peak = fragmentation = None
    if frag is not None and len(frag.timeline):
        live_peak = int(frag.timeline["live_bytes"].max())
        fragmentation = float(frag.timeline["external_fragmentation"].max())
    by_kind = {name: 0 for name in FINDING_COLUMNS}
    for f in data.findings:
        by_kind[finding_column(f.kind)] += 1
    return {
        "source": source, "kind": _kind_of(data), "status": status, "error": error,
        "input_hash": input_hash, "exit_code": s.exit_code, "signal": s.signal,
        "stop_reason": s.stop_reason, "instructions": s.instructions,
        "reads": s.accesses.read, "writes": s.accesses.write, "syscalls": len(s.syscalls),
        "max_stack_depth": s.max_stack_depth,
        "stack_overflow": str(fault.get("cause") or "").startswith("stack overflow"),
        "heap_peak": max(0, int(brk.max()) - data.heap.initial_brk) if len(brk) else 0,
        "heap_live_peak": live_peak, "fragmentation": fragmentation,
        "findings": len(data.findings), **by_kind,
        "trace": trace, "report": report, "seconds": seconds,
    }


def _kind_of(data) -> str:
    program = data.summary.program
    suffix = Path(program).suffix.lower()
    return "c" if suffix == ".c" else ("asm" if suffix in (".asm", ".s", ".nasm") else "elf")


def syscall_batches(trace: Trace) -> Iterator[pa.RecordBatch]:
    table = trace.syscalls
    columns = [pc.cast(table.column(n), SYSCALLS_SCHEMA.field(n).type)
               for n in SYSCALLS_SCHEMA.names]
    yield from pa.table(columns, schema=SYSCALLS_SCHEMA).to_batches()


def stack_batches(trace: Trace) -> Iterator[pa.RecordBatch]:
    """Every change of RSP with the depth it leaves (initial RSP - RSP, clamped to int64:
    a program may set RSP to anything)."""
    initial = np.uint64(trace.initial_rsp)
    top = np.uint64((1 << 63) - 1)
    for batch in trace.files.batches("rsp", ["step", "rip", "new", "cause"]):
        new = batch.column("new").to_numpy(zero_copy_only=False)
        with np.errstate(over="ignore"):  # each difference is used only where it is >= 0
            below = np.minimum(initial - new, top).astype(np.int64)
            above = np.minimum(new - initial, top).astype(np.int64)
        depth = np.where(new <= initial, below, -above)
        yield pa.RecordBatch.from_arrays(
            [batch.column("step"), batch.column("rip"), batch.column("new"), pa.array(depth),
             pc.cast(batch.column("cause"), pa.string())], schema=STACK_SCHEMA)


def access_batches(trace: Trace) -> Iterator[pa.RecordBatch]:
    names = ACCESSES_SCHEMA.names
    for batch in trace.files.batches("accesses", names):
        columns = [pc.cast(batch.column(n), pa.string()) if n == "source" else batch.column(n)
                   for n in names]
        yield pa.RecordBatch.from_arrays(columns, schema=ACCESSES_SCHEMA)


# -- where the dataset lives ------------------------------------------------------------
@dataclass(frozen=True)
class DatasetLocation:
    """A dataset root on a pyarrow filesystem: a local directory, or a URI such as
    `file:///data/class`, `s3://bucket/class` or `gs://bucket/class`."""

    filesystem: pafs.FileSystem
    root: str
    uri: str

    @classmethod
    def parse(cls, where: str | Path) -> DatasetLocation:
        """Raises:
            DatasetError: a URI pyarrow cannot open (unknown scheme, no credentials)."""
        text = str(where)
        if "://" not in text:
            return cls(pafs.LocalFileSystem(), os.path.abspath(text), os.path.abspath(text))
        try:
            fs, root = pafs.FileSystem.from_uri(text)
        except (pa.ArrowException, ValueError, OSError) as exc:
            raise DatasetError(f"cannot open the dataset location {text}: {exc}") from None
        return cls(fs, root.rstrip("/"), text)

    @property
    def local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def partition(self, table: str, program: str) -> str:
        """Raises:
            DatasetError: `program` is no partition name (a path separator, `..`)."""
        if not valid_program_id(program):
            raise DatasetError(f"{program!r} cannot name a program of a dataset")
        return posixpath.join(self.root, table, f"{PARTITION}={program}")

    def glob(self, table: str) -> str:
        """The path DuckDB reads a table from (local) or the URI (object store)."""
        base = self.uri if not self.local else self.root
        return f"{base.rstrip('/')}/{table}/*/*.parquet"


class DatasetWriter:
    """Writes programs into a dataset, one program at a time. A program's `programs` row is
    written last: a program with a row is complete, one without is rewritten in full."""

    def __init__(self, location: DatasetLocation):
        self.location = location

    def clear(self, program: str) -> None:
        """Removes whatever an earlier run wrote for `program` (its row first)."""
        fs = self.location.filesystem
        for table in TABLES:
            path = self.location.partition(table, program)
            if fs.get_file_info(path).type == pafs.FileType.Directory:
                fs.delete_dir(path)

    def write_table(self, table: str, program: str,
                    batches: Iterator[pa.RecordBatch]) -> int:
        """Streams one program's rows of `table` into its partition (bounded memory).

        Returns:
            The number of rows written.
        """
        fs = self.location.filesystem
        directory = self.location.partition(table, program)
        fs.create_dir(directory, recursive=True)
        final = posixpath.join(directory, PART_FILE)
        temporary = final + ".tmp"  # no reader's glob (*.parquet) matches it
        rows = 0
        with pq.ParquetWriter(temporary, SCHEMAS[table], filesystem=fs,
                              compression="zstd") as writer:
            for batch in batches:
                if batch.num_rows:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        fs.move(temporary, final)
        return rows

    def write_row(self, program: str, row: dict[str, Any]) -> None:
        """Writes the program's `programs` row: the mark that it is complete."""
        table = pa.Table.from_pylist([row], schema=PROGRAMS_SCHEMA)
        self.write_table("programs", program, iter(table.to_batches()))

    def write_program(self, program: str, trace: Trace, row: dict[str, Any]) -> None:
        """Writes every table of one recorded program, its row last."""
        self.clear(program)
        self.write_table("syscalls", program, syscall_batches(trace))
        self.write_table("stack", program, stack_batches(trace))
        self.write_table("accesses", program, access_batches(trace))
        self.write_row(program, row)


def recorded_programs(location: DatasetLocation) -> dict[str, dict[str, Any]]:
    """Each program with a `programs` row: its `input_hash` and `status` (for resuming)."""
    fs = location.filesystem
    base = posixpath.join(location.root, "programs")
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return {}
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(base)):
        name = posixpath.basename(info.path)
        if info.type != pafs.FileType.Directory or not name.startswith(f"{PARTITION}="):
            continue
        part = posixpath.join(info.path, PART_FILE)
        if fs.get_file_info(part).type != pafs.FileType.File:
            continue
        try:
            rows = pq.read_table(part, filesystem=fs, columns=["input_hash", "status"])
        except (pa.ArrowException, OSError):
            continue  # unreadable: recorded again
        if rows.num_rows:
            found[name.split("=", 1)[1]] = rows.to_pylist()[0]
    return found


# -- reading it back --------------------------------------------------------------------
def connect(where: str | Path, memory_limit: str = "900MB") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views `programs`, `accesses`, `syscalls`, `stack`,
    each with its `program` column (from the partition).

    Raises:
        DatasetError: `where` holds no `programs` table.
    """
    location = DatasetLocation.parse(where)
    con = duckdb.connect(config={"memory_limit": memory_limit})
    if not location.local:
        _load_httpfs(con, location)
    for table in TABLES:
        if not _has_files(location, table):
            if table == "programs":
                con.close()
                raise DatasetError(f"{where} is not a trace batch dataset (it has no "
                                   "programs/ table); create one with `trace batch`")
            _empty_view(con, table)
            continue
        path = location.glob(table).replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}', "
                    "hive_partitioning = true, hive_types = {'program': VARCHAR}, "
                    "union_by_name = true)")
    return con


def _has_files(location: DatasetLocation, table: str) -> bool:
    fs = location.filesystem
    base = posixpath.join(location.root, table)
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return False
    selector = pafs.FileSelector(base, recursive=True)
    return any(i.path.endswith(".parquet") for i in fs.get_file_info(selector))


def _empty_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    empty = pa.table({PARTITION: pa.array([], pa.string()),
                      **{f.name: pa.array([], f.type) for f in SCHEMAS[table]}})
    con.register(f"_{table}_empty", empty)
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM _{table}_empty")


def _load_httpfs(con: duckdb.DuckDBPyConnection, location: DatasetLocation) -> None:
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error as exc:
        raise DatasetError(f"DuckDB cannot read {location.uri} here (its httpfs extension "
                           f"is not installed: {exc}); copy the dataset to a local "
                           "directory") from None


def programs_table(where: str | Path) -> pa.Table:
    """The `programs` view as an Arrow table, ordered by program."""
    con = connect(where)
    try:
        return con.sql("SELECT * FROM programs ORDER BY program").to_arrow_table()
    finally:
        con.close()

