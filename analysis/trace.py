"""`open_trace`: a recorded trace as tables, for notebooks and for every analysis module."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pyarrow as pa

from tracer.format import TraceFiles


class Trace:
    """A recorded trace. Small tables load on first use; the big event tables (accesses,
    rsp) are meant to be streamed or queried with DuckDB through `reader`."""

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
        return self.files.record_batch_reader(name, columns)

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

    @property
    def initial_rsp(self) -> int:
        return int(self.meta.initial["rsp"])

    @property
    def initial_brk(self) -> int:
        return int(self.meta.initial["brk"])


def open_trace(path: str | Path) -> Trace:
    """Opens a trace directory for reading (never writes to it).

    Raises:
        TraceFormatError: not a vmtrace trace, a newer format, or corrupt.
    """
    return Trace(path)
