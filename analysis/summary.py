"""What `trace info` shows: how the run ended, counts, syscalls, break and final map."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pyarrow.compute as pc

from analysis.regions import MappedRegion, map_at
from analysis.trace import Trace


@dataclass(frozen=True)
class AccessCounts:
    read: int
    write: int
    by_source: dict[str, dict[str, int]]


@dataclass(frozen=True)
class TraceSummary:
    format_version: int
    program: str
    complete: bool
    exit_code: int | None
    signal: str | None
    fault: dict[str, Any] | None
    stop_reason: str
    error: str | None
    truncated: bool
    stdout: str
    stderr: str
    instructions: int
    accesses: AccessCounts
    syscalls: list[dict[str, Any]]
    brk_start: int
    brk_end: int
    regions: list[MappedRegion]
    max_stack_depth: int
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        """The `trace info --json` document (its top-level keys are a public contract)."""
        return {
            "format_version": self.format_version,
            "program": self.program,
            "exit": {"code": self.exit_code, "signal": self.signal, "fault": self.fault},
            "stop_reason": self.stop_reason,
            "stdout": self.stdout,
            "instructions": self.instructions,
            "accesses": {"read": self.accesses.read, "write": self.accesses.write,
                         "by_source": self.accesses.by_source},
            "syscalls": self.syscalls,
            "brk": {"start": self.brk_start, "end": self.brk_end},
            "regions": [{"start": r.start, "end": r.end, "perms": r.perms, "kind": r.kind,
                         "name": r.name} for r in self.regions],
            "max_stack_depth": self.max_stack_depth,
            "warnings": self.warnings,
        }


def access_counts(trace: Trace) -> AccessCounts:
    by_source: dict[str, dict[str, int]] = {}
    for batch in trace.files.batches("accesses", ["is_write", "source"]):
        source = pc.cast(batch.column("source"), "string")
        for key, is_write in (("write", True), ("read", False)):
            mask = pc.equal(batch.column("is_write"), is_write)
            counts = pc.value_counts(pc.filter(source, mask))
            for item in counts.to_pylist():
                slot = by_source.setdefault(item["values"], {"read": 0, "write": 0})
                slot[key] += item["counts"]
    reads = sum(v["read"] for v in by_source.values())
    writes = sum(v["write"] for v in by_source.values())
    return AccessCounts(read=reads, write=writes, by_source=dict(sorted(by_source.items())))


def max_stack_depth(trace: Trace) -> int:
    lowest = trace.initial_rsp
    for batch in trace.files.batches("rsp", ["new"]):
        if batch.num_rows:
            lowest = min(lowest, pc.min(batch.column("new")).as_py())
    return trace.initial_rsp - lowest


def _decode(trace: Trace, fd: int) -> str:
    out = trace.output
    data = b"".join(d for f, d in zip(out.column("fd").to_pylist(),
                                      out.column("data").to_pylist()) if f == fd)
    return data.decode(errors="backslashreplace")


def _brk_from_syscalls(trace: Trace) -> int:
    brk = trace.initial_brk
    for row in trace.syscalls.select(["name", "ret"]).to_pylist():
        if row["name"] == "brk" and row["ret"] is not None and row["ret"] >= 0:
            brk = row["ret"]
    return brk


def access_counts_from(totals: list[dict]) -> AccessCounts:
    """AccessCounts from per-(source, is_write) counts already aggregated elsewhere.

    Args:
        totals: rows with `source`, `is_write` and `n`.
    """
    by_source: dict[str, dict[str, int]] = {}
    for row in totals:
        slot = by_source.setdefault(row["source"], {"read": 0, "write": 0})
        slot["write" if row["is_write"] else "read"] += int(row["n"])
    return AccessCounts(read=sum(v["read"] for v in by_source.values()),
                        write=sum(v["write"] for v in by_source.values()),
                        by_source=dict(sorted(by_source.items())))


def summarize(trace: Trace, accesses: AccessCounts | None = None,
              stack_depth: int | None = None) -> TraceSummary:
    """What `trace info` shows.

    Args:
        trace: an open trace.
        accesses: counts already computed (skips a pass over the accesses table).
        stack_depth: the maximum stack depth already computed (skips a pass over rsp).
    """
    meta = trace.meta
    end = meta.end
    syscalls = [{"step": r["step"], "name": r["name"], "args": r["args"], "ret": r["ret"]}
                for r in trace.syscalls.select(["step", "name", "args", "ret"]).to_pylist()]
    brk_end = end.brk_end if end is not None else _brk_from_syscalls(trace)
    instructions = trace.instructions  # counted from the events if the run was cut short
    return TraceSummary(
        format_version=meta.format_version,
        program=meta.program.path,
        complete=trace.complete,
        exit_code=end.exit_code if end else None,
        signal=end.signal if end else None,
        fault=asdict(end.fault) if end and end.fault else None,
        stop_reason=end.stop_reason if end else "incomplete (the recording was interrupted)",
        error=end.error if end else None,
        truncated=(end is not None and end.truncated) or not trace.complete,
        stdout=_decode(trace, 1),
        stderr=_decode(trace, 2),
        instructions=int(instructions),
        accesses=accesses if accesses is not None else access_counts(trace),
        syscalls=syscalls,
        brk_start=trace.initial_brk,
        brk_end=brk_end,
        regions=map_at(trace.regions),
        max_stack_depth=stack_depth if stack_depth is not None else max_stack_depth(trace),
        warnings=list(meta.warnings),
    )
