"""What `trace info` shows: how the run ended, counts, syscalls, break and final map."""

from __future__ import annotations

from collections.abc import Iterator
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
    accesses: AccessCounts | None  # None: a --fast trace not materialised yet
    syscalls: list[dict[str, Any]]
    brk_start: int
    brk_end: int
    regions: list[MappedRegion]
    max_stack_depth: int | None    # None: as `accesses`
    warnings: list[str]
    brk_peak: int = 0          # the highest break of the run
    brk_peak_step: int = 0     # the first step whose state has it (the brk's step + 1)
    initial_stack: int = 0     # bytes Linux put above the initial RSP: argv, env, auxv

    @property
    def brk_line(self) -> str:
        """`0x403000 -> 0x403000 (+0 bytes); peak 0x407000 (+16,384 bytes) at step 26`."""
        text = (f"{self.brk_start:#x} -> {self.brk_end:#x} "
                f"({self.brk_end - self.brk_start:+,} bytes)")
        if self.brk_peak > max(self.brk_start, self.brk_end):
            text += (f"; peak {self.brk_peak:#x} ({self.brk_peak - self.brk_start:+,} "
                     f"bytes) at step {self.brk_peak_step:,}")
        return text

    @property
    def events_pending(self) -> bool:
        """Recorded with --fast, its access and RSP events not materialised yet."""
        return self.accesses is None

    @property
    def stack_line(self) -> str:
        """The deepest the program took the stack, and what was there before it ran."""
        if self.max_stack_depth is None:
            return "not known until the events are materialised"
        return (f"{self.max_stack_depth:,} bytes below the initial RSP (the program's own "
                f"use; the {self.initial_stack:,} bytes above it hold argv, env and the "
                f"auxiliary vector, put there by Linux)")

    def to_json(self) -> dict[str, Any]:
        """The `trace info --json` document (its top-level keys are a public contract)."""
        return {
            "format_version": self.format_version,
            "program": self.program,
            "exit": {"code": self.exit_code, "signal": self.signal, "fault": self.fault},
            "stop_reason": self.stop_reason,
            "stdout": self.stdout,
            "instructions": self.instructions,
            "accesses": None if self.accesses is None else {
                "read": self.accesses.read, "write": self.accesses.write,
                "by_source": self.accesses.by_source},
            "events": "pending" if self.events_pending else "recorded",
            "syscalls": self.syscalls,
            "brk": {"start": self.brk_start, "end": self.brk_end, "peak": self.brk_peak,
                    "peak_step": self.brk_peak_step},
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


def output_chunks(trace: Trace, fd: int) -> Iterator[bytes]:
    """What the program wrote to `fd`, in order, one table batch at a time (bounded
    memory, whatever the output's size)."""
    for batch in trace.files.batches("output", ["fd", "data"]):
        data = pc.filter(batch.column("data"), pc.equal(batch.column("fd"), fd))
        if len(data):
            yield b"".join(data.to_pylist())


def _decode(trace: Trace, fd: int) -> str:
    return b"".join(output_chunks(trace, fd)).decode(errors="backslashreplace")


@dataclass(frozen=True)
class OutputExcerpt:
    """The start and end of a program's output, and how much lies between them."""

    head: bytes
    tail: bytes
    total_bytes: int
    total_lines: int        # newlines, plus one for an unterminated last line
    omitted_bytes: int
    omitted_lines: int      # newlines between head and tail


def output_excerpt(trace: Trace, fd: int = 1, lines: int = 20, max_bytes: int = 4096
                   ) -> OutputExcerpt:
    """The first and last `lines` lines (each end at most `max_bytes`) of the output on
    `fd`, read in one bounded pass: a 100 MB output costs a scan, not 100 MB of memory.

    Args:
        trace: an open trace.
        fd: 1 for stdout, 2 for stderr.
        lines: lines to keep at each end.
        max_bytes: bytes to keep at each end at most (one long line is cut).
    """
    head = bytearray()
    tail = bytearray()
    head_done = False
    total = newlines = 0
    last = b""
    for chunk in output_chunks(trace, fd):
        total += len(chunk)
        newlines += chunk.count(b"\n")
        last = chunk[-1:]
        if not head_done:
            room = max_bytes - len(head)
            cut, seen = 0, head.count(b"\n")
            while seen < lines and cut < min(len(chunk), room):
                nl = chunk.find(b"\n", cut, room)
                if nl < 0:
                    cut = min(len(chunk), room)
                    break
                cut, seen = nl + 1, seen + 1
            head += chunk[:cut]
            chunk = chunk[cut:]
            head_done = seen >= lines or len(head) >= max_bytes
            if not chunk:
                continue
        tail += chunk
        if len(tail) > 2 * max_bytes:
            del tail[:-max_bytes]
    tail = tail[-max_bytes:]
    ends = [i for i in range(len(tail) - 1) if tail[i] == 0x0A]  # not a final newline
    if len(ends) >= lines:
        tail = tail[ends[-lines] + 1:]
    total_lines = newlines + (1 if total and last != b"\n" else 0)
    omitted = total - len(head) - len(tail)
    omitted_lines = newlines - head.count(b"\n") - tail.count(b"\n")
    return OutputExcerpt(bytes(head), bytes(tail), total, total_lines, omitted, omitted_lines)


def _brk_peak(trace: Trace, syscalls: list[dict[str, Any]]) -> tuple[int, int]:
    """(highest break, first step whose state has it): a brk at step s shows from s + 1."""
    peak, when = trace.initial_brk, 0
    for row in syscalls:
        ret = row["ret"]
        if row["name"] == "brk" and ret is not None and 0 <= ret < (1 << 63) and ret > peak:
            peak, when = ret, row["step"] + 1
    return peak, when


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


def totals_from_meta(trace: Trace) -> tuple[AccessCounts, int] | None:
    """The access counts and maximum stack depth recorded in meta.json, for a complete
    trace whose recorder wrote them (None otherwise: count them from the tables)."""
    end = trace.meta.end
    if not trace.complete or end is None or end.access_counts is None or end.lowest_rsp is None:
        return None
    rows = [{"source": source, "is_write": key == "write", "n": n}
            for source, pair in end.access_counts.items() for key, n in pair.items()]
    return access_counts_from(rows), max(0, trace.initial_rsp - end.lowest_rsp)


def summarize(trace: Trace, accesses: AccessCounts | None = None,
              stack_depth: int | None = None, with_output: bool = True,
              pending_ok: bool = False) -> TraceSummary:
    """What `trace info` shows.

    Args:
        trace: an open trace.
        accesses: counts already computed (skips a pass over the accesses table).
        stack_depth: the maximum stack depth already computed (skips a pass over rsp).
        with_output: False leaves `stdout` and `stderr` empty (a caller that shows an
            `output_excerpt` need not hold a huge output in memory).
        pending_ok: for a --fast trace not materialised yet, leave the access counts and
            stack depth out (None) rather than need the event tables (EventsPending).
    """
    meta = trace.meta
    end = meta.end
    syscalls = [{"step": r["step"], "name": r["name"], "args": r["args"], "ret": r["ret"]}
                for r in trace.syscalls.select(["step", "name", "args", "ret"]).to_pylist()]
    brk_end = end.brk_end if end is not None else _brk_from_syscalls(trace)
    instructions = trace.instructions  # counted from the events if the run was cut short
    peak, peak_step = _brk_peak(trace, syscalls)
    pending = pending_ok and trace.files.pending
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
        stdout=_decode(trace, 1) if with_output else "",
        stderr=_decode(trace, 2) if with_output else "",
        instructions=int(instructions),
        accesses=(None if pending else accesses if accesses is not None
                  else access_counts(trace)),
        syscalls=syscalls,
        brk_start=trace.initial_brk,
        brk_end=brk_end,
        regions=map_at(trace.regions),
        max_stack_depth=(None if pending else stack_depth if stack_depth is not None
                         else max_stack_depth(trace)),
        warnings=list(meta.warnings),
        brk_peak=peak, brk_peak_step=peak_step,
        initial_stack=max(0, meta.initial.stack_top - meta.initial.rsp),
    )
