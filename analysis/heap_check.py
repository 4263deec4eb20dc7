"""Memcheck's classic heap errors, found on the recorded run from the C library's blocks
(analysis/libc_heap.py) and the accesses: an access past the requested size of a block
(into its slack or the next chunk), use after free, double or invalid free, a read of heap
bytes never written, and blocks never freed at exit (leaks, by allocation line).

Accesses made while the allocator runs (chunk headers, bins, tcache) are its own, never the
program's. A load that starts inside a block and runs past its end (a libc string function
reading 16 aligned bytes around a terminator) is allowed, as Memcheck's partial-loads-ok
allows it; a store is not. Reads of never-written bytes are checked for the program's own
instructions (those with a source line), and only reads that get no byte the program wrote:
libc's vectorised string functions read bytes they then ignore, and a struct copy reads
padding along with fields."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analysis.findings import Finding, FindingKind, Severity
from analysis.libc_heap import Block, LibcHeap
from analysis.symbols import Symbolizer
from analysis.trace import Trace

# How far past a block's usable end an access still counts as overrunning it (the next
# chunk's header); farther away it is some other memory.
NEXT_CHUNK_REACH = 16


@dataclass(frozen=True)
class HeapError:
    """One heap error: what, where (step, instruction, source line) and which block."""

    kind: str            # overflow, use-after-free, double-free, invalid-free, uninit, leak
    step: int | None
    rip: int | None
    line: int | None
    message: str
    block: Block | None
    count: int = 1


class HeapChecker:
    """An access consumer (analysis.scan) that replays the blocks' lives in step order
    against the accesses and collects the errors."""

    columns = ("step", "rip", "addr", "size", "is_write", "source")

    def __init__(self, heap: LibcHeap, sym: Symbolizer):
        self.heap = heap
        self.sym = sym
        # Block births and deaths in step order: an alloc is in force after its step, a
        # free from its step on.
        self._timeline = sorted(
            [(b.alloc_step, 1, b.id) for b in heap.blocks]
            + [(b.free_step, 0, b.id) for b in heap.blocks if b.free_step is not None])
        self._next = 0
        self._live: dict[int, Block] = {}
        self._live_starts: list[int] = []
        self._freed: dict[int, Block] = {}
        self._freed_starts: list[int] = []
        self._written: dict[int, bytearray] = {}   # block id -> 1 per byte written
        busy = [(a, b if b is not None else 1 << 63) for a, b in heap.busy]
        self._busy_lo = np.array([a for a, _ in busy], np.uint64)
        self._busy_hi = np.array([b for _, b in busy], np.uint64)
        ends = [b.ptr + b.usable + NEXT_CHUNK_REACH for b in heap.blocks]
        self._lo = min((b.ptr for b in heap.blocks), default=0)
        self._hi = max(ends, default=0)
        self._seen: dict[tuple[str, int], HeapError] = {}
        self._user: dict[int, bool] = {}

    # -- the blocks' lives ----------------------------------------------------------------
    def _advance(self, step: int) -> None:
        """Applies every alloc made before `step` and every free made at or before it."""
        timeline = self._timeline
        while self._next < len(timeline):
            at, is_alloc, bid = timeline[self._next]
            if at > step or (is_alloc and at == step):
                return
            block = self.heap.blocks[bid]
            if is_alloc:
                self._born(block)
            else:
                self._died(block)
            self._next += 1

    def _born(self, block: Block) -> None:
        # Freed blocks under the new one are reused: no longer use-after-free territory.
        starts = self._freed_starts
        i = bisect.bisect_right(starts, block.ptr + block.usable)
        while i > 0 and starts[i - 1] + self._freed[starts[i - 1]].usable > block.ptr:
            del self._freed[starts.pop(i - 1)]
            i -= 1
        written = bytearray(block.size)
        if block.zeroed:
            written = bytearray(b"\1" * block.size)
        elif block.copied_from is not None:
            old = self._written.get(block.copied_from)
            if old is not None:
                written[:block.copied] = old[:block.copied]
        self._written[block.id] = written
        if block.ptr not in self._live:
            bisect.insort(self._live_starts, block.ptr)
        self._live[block.ptr] = block

    def _died(self, block: Block) -> None:
        if self._live.get(block.ptr) is block:
            del self._live[block.ptr]
            self._live_starts.remove(block.ptr)
        if block.mmapped:
            return  # unmapped: a later access faults, and the fault says so
        if block.ptr not in self._freed:
            bisect.insort(self._freed_starts, block.ptr)
        self._freed[block.ptr] = block

    def _containing(self, starts: list[int], table: dict[int, Block], addr: int,
                    reach: int) -> Block | None:
        i = bisect.bisect_right(starts, addr) - 1
        if i < 0:
            return None
        block = table[starts[i]]
        return block if addr < block.ptr + block.usable + reach else None

    # -- the accesses ---------------------------------------------------------------------
    def update(self, batch: pa.RecordBatch) -> None:
        if not self.heap.blocks:
            return
        addr = batch.column("addr").to_numpy()
        size = batch.column("size").to_numpy().astype(np.uint64)
        near = (addr + size > self._lo) & (addr < self._hi)
        if not near.any():
            return
        step = batch.column("step").to_numpy()
        # Accesses inside a top-level allocator call are the allocator's.
        i = np.searchsorted(self._busy_lo, step, side="right") - 1
        inside = (i >= 0) & (step <= self._busy_hi[np.maximum(i, 0)])
        keep = np.nonzero(near & ~inside)[0]
        if not len(keep):
            return
        rip = batch.column("rip").to_numpy()
        write = batch.column("is_write").to_numpy(zero_copy_only=False)
        for k in keep.tolist():
            self._access(int(step[k]), int(rip[k]), int(addr[k]), int(size[k]), bool(write[k]))

    def _access(self, step: int, rip: int, addr: int, size: int, write: bool) -> None:
        self._advance(step)
        user = self._is_user(rip)
        block = self._containing(self._live_starts, self._live, addr, NEXT_CHUNK_REACH)
        if block is not None and addr < block.ptr + block.size:
            end = block.ptr + block.size
            if write and addr + size > end:
                self._overflow(block, step, rip, addr, size, write)
            lo, hi = addr - block.ptr, min(addr + size, end) - block.ptr
            written = self._written[block.id]
            if write:
                written[lo:hi] = b"\1" * (hi - lo)
            elif user and not any(written[lo:hi]):
                # Only a wholly unwritten value: copying a struct reads its padding along
                # with written fields, which is no error (Memcheck reports only uses).
                self._report("uninit", rip, step, block, (
                    f"Read of {size} byte{'s' if size != 1 else ''} at {addr:#x}, "
                    f"{lo} bytes into a {block.size}-byte block allocated at "
                    f"{self._where(block.alloc_line, block.alloc_rip)}, that the program "
                    f"never wrote: the value is whatever the allocator left there"))
            return
        freed = self._containing(self._freed_starts, self._freed, addr, 0)
        if freed is not None and addr < freed.ptr + max(freed.size, 1) \
                and (user or write or not self._just_past_a_block(addr)):
            self._report("use-after-free", rip, step, freed, (
                f"{'Write' if write else 'Read'} of {size} byte{'s' if size != 1 else ''} at "
                f"{addr:#x}, {addr - freed.ptr} bytes into a {freed.size}-byte block "
                f"allocated at {self._where(freed.alloc_line, freed.alloc_rip)} and freed at "
                f"{self._where(freed.free_line, freed.free_rip)} (step {freed.free_step:,}): "
                f"use after free"))
            return
        if block is not None and (user or write) and not self._in_other_block(addr, block):
            self._overflow(block, step, rip, addr, size, write)

    def _just_past_a_block(self, addr: int) -> bool:
        """A live block ends less than 64 bytes below `addr`: a C library read here is a
        vectorised string function reading on past a terminator in that block."""
        i = bisect.bisect_right(self._live_starts, addr) - 1
        if i < 0:
            return False
        block = self._live[self._live_starts[i]]
        return addr - (block.ptr + block.size) < 64

    def _in_other_block(self, addr: int, block: Block) -> bool:
        i = bisect.bisect_right(self._live_starts, addr) - 1
        return i >= 0 and self._live[self._live_starts[i]] is not block

    def _overflow(self, block: Block, step: int, rip: int, addr: int, size: int,
                  write: bool) -> None:
        past = max(addr, block.ptr + block.size) - block.ptr - block.size
        where = "its slack (the chunk's unused bytes)" if addr < block.ptr + block.usable \
            else "the next chunk (the allocator's header)"
        self._report("overflow", rip, step, block, (
            f"{'Write' if write else 'Read'} of {size} byte{'s' if size != 1 else ''} at "
            f"{addr:#x}, {past} byte{'s' if past != 1 else ''} past the end of a "
            f"{block.size}-byte block allocated at "
            f"{self._where(block.alloc_line, block.alloc_rip)}, into {where}: heap buffer "
            f"overflow"))

    def _is_user(self, rip: int) -> bool:
        """The program's own instruction (it has a source line), not the C library's."""
        if rip not in self._user:
            self._user[rip] = self.sym.line_at(rip) is not None
        return self._user[rip]

    def _where(self, line: int | None, rip: int | None) -> str:
        if line is not None:
            return f"line {line}"
        if rip is None:
            return "?"
        return f"{self.sym.function_at(rip)} ({rip:#x})"

    def _report(self, kind: str, rip: int, step: int, block: Block | None,
                message: str) -> None:
        key = (kind, rip)
        seen = self._seen.get(key)
        if seen is not None:
            self._seen[key] = HeapError(seen.kind, seen.step, seen.rip, seen.line,
                                        seen.message, seen.block, seen.count + 1)
            return
        line = self.sym.line_no(rip)
        if line is None:
            message += f" (in {self.sym.function_at(rip)})"
        self._seen[key] = HeapError(kind, step, rip, line, message, block)

    # -- at the end -----------------------------------------------------------------------
    def result(self, trace: Trace) -> list[HeapError]:
        """Every error in step order: access errors, bad frees and leaks."""
        out = list(self._seen.values())
        for bad in self.heap.bad_frees:
            if bad.kind == "double free" and bad.block is not None:
                detail = (f"the {bad.block.size}-byte block allocated at "
                          f"{self._where(bad.block.alloc_line, bad.block.alloc_rip)} was "
                          f"already freed at {self._where(bad.block.free_line, bad.block.free_rip)}"
                          f" (step {bad.block.free_step:,})")
            else:
                detail = "it is not the start of a live block"
            out.append(HeapError(bad.kind.replace(" ", "-"), bad.step, bad.rip, bad.line,
                                 f"{bad.func}({bad.ptr:#x}) at "
                                 f"{self._where(bad.line, bad.rip)}: {bad.kind}: {detail}",
                                 bad.block))
        if trace.meta.end is not None and trace.meta.end.stop_reason == "exit":
            out += self._leaks()
        return sorted(out, key=lambda e: (e.step is None, e.step or 0))

    def _leaks(self) -> list[HeapError]:
        """Blocks still allocated at exit that the program allocated (from a line of its
        source), grouped by that line."""
        by_line: dict[int, list[Block]] = {}
        for block in self.heap.blocks:
            # Blocks the C library allocates for itself (stdio buffers) are still
            # reachable from it; strdup's belong to the program.
            mine = block.via is None or block.via.lstrip("_") in ("strdup", "strndup")
            if block.free_step is None and block.alloc_line is not None and mine:
                by_line.setdefault(block.alloc_line, []).append(block)
        out = []
        for line, blocks in sorted(by_line.items()):
            total = sum(b.size for b in blocks)
            n = len(blocks)
            out.append(HeapError(
                "leak", None, blocks[0].alloc_rip, line,
                f"{n} block{'s' if n != 1 else ''} ({total:,} bytes) allocated at line {line} "
                f"{'were' if n != 1 else 'was'} never freed (still allocated at exit)",
                blocks[0], n))
        return out


_KINDS = {"overflow": FindingKind.HEAP_OVERFLOW, "use-after-free": FindingKind.USE_AFTER_FREE,
          "double-free": FindingKind.BAD_FREE, "invalid-free": FindingKind.BAD_FREE,
          "uninit": FindingKind.HEAP_UNINIT, "leak": FindingKind.LEAK}


def as_findings(errors: list[HeapError]) -> list[Finding]:
    """The heap errors as report findings (a leak is a warning, the others errors)."""
    return [Finding(_KINDS[e.kind], Severity.WARNING if e.kind == "leak" else Severity.ERROR,
                    e.step, e.rip, e.line, e.message, e.count) for e in errors]
