"""`--allocator auto`: the C library's allocator, tracked call by call. When the program
defines `malloc` (a static glibc or musl program does), every top-level call the program
makes to malloc, calloc, realloc, free, posix_memalign, aligned_alloc or memalign becomes
blocks: requested size, address, the call's source line and step, when it was freed, and
for glibc the chunk behind it (its size field: chunk overhead, mmap-served or not).

Calls the allocator makes to itself (calloc calling malloc in musl, realloc calling malloc
and free) are its own business: only the outermost call counts, and everything between a
top-level call and its return is the allocator's work (`busy`): accesses there are not the
program's (analysis/heap_check.py)."""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from analysis.allocator import (
    AllocEvent, CallKind, CallSite, CallValues, RegisterProbe, call_sites, paired_values,
    take_values,
)
from analysis.symbols import Symbolizer
from analysis.trace import Trace

LIBC_FUNCTIONS = ("malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc",
                  "memalign")
# glibc's chunk size field: the low bits are flags (PREV_INUSE 1, IS_MMAPPED 2, arena 4).
_IS_MMAPPED = 2
_GLIBC_MARKER = "_int_malloc"  # a static glibc's allocator internals carry this symbol


@dataclass
class Block:
    """One allocation, from the program's point of view."""

    id: int
    ptr: int
    size: int                  # the size the program asked for
    func: str
    alloc_step: int            # the step at which the allocator returned it
    alloc_rip: int             # the call instruction
    alloc_line: int | None     # its source line: the program's call (None: none found)
    via: str | None = None     # the C library function that called the allocator for it
    chunk_size: int | None = None   # glibc: the chunk's size (header included)
    mmapped: bool = False      # glibc: served by mmap, not from the heap
    zeroed: bool = False       # calloc: every byte is defined
    reused: bool = False       # placed where a block freed earlier was
    free_step: int | None = None
    free_rip: int | None = None
    free_line: int | None = None
    copied_from: int | None = None  # realloc: the id of the block whose bytes moved here
    copied: int = 0                 # and how many

    @property
    def usable(self) -> int:
        """Bytes the program may use without corrupting the allocator's data: the
        requested size, or for glibc the chunk's usable size (its slack included)."""
        if self.chunk_size is None:
            return self.size
        return max(self.size, self.chunk_size - (16 if self.mmapped else 8))

    @property
    def overhead(self) -> int | None:
        """Chunk size minus requested size (header, alignment and slack)."""
        return None if self.chunk_size is None else self.chunk_size - self.size


@dataclass(frozen=True)
class BadFree:
    """free (or realloc) of a pointer that is not a live block."""

    kind: str                  # "double free" or "invalid free"
    func: str
    ptr: int
    step: int
    rip: int
    line: int | None
    block: Block | None        # for a double free: the block freed before


@dataclass
class LibcHeap:
    functions: dict[str, int]
    glibc: bool
    blocks: list[Block] = field(default_factory=list)
    bad_frees: list[BadFree] = field(default_factory=list)
    # [call step, return step] of each top-level call (return None: the run ended in it).
    busy: list[tuple[int, int | None]] = field(default_factory=list)
    calls: int = 0

    def events(self, heap_start: int, heap_end: int) -> list[AllocEvent]:
        """Alloc/free events of the blocks inside [heap_start, heap_end) (the brk heap; an
        mmap-served block is no part of its fragmentation), in step order."""
        out = []
        for b in self.blocks:
            if b.mmapped or not heap_start <= b.ptr < heap_end:
                continue
            out.append(AllocEvent(b.alloc_step, CallKind.ALLOC, b.ptr, b.size))
            if b.free_step is not None:
                out.append(AllocEvent(b.free_step, CallKind.FREE, b.ptr, b.size))
        return sorted(out, key=lambda e: (e.step, e.kind is CallKind.ALLOC))


def libc_functions(symbolizer: Symbolizer) -> dict[str, int]:
    """The allocator functions the program defines; empty unless it defines `malloc`."""
    found = {}
    for name in LIBC_FUNCTIONS:
        sym = symbolizer.by_name(name)
        if sym is not None and sym.type == "func":
            found[name] = sym.addr
    return found if "malloc" in found else {}


def top_level(sites: list[CallSite]) -> list[CallSite]:
    """The calls not made from inside another call of the list (sites in call order)."""
    kept: list[CallSite] = []
    until = -1
    for site in sites:
        if site.call_step <= until:
            continue
        kept.append(site)
        until = site.return_step if site.return_step is not None else float("inf")
    return kept


def libc_heap(trace: Trace, probe: RegisterProbe) -> LibcHeap | None:
    """The program's allocations through the C library's allocator.

    Args:
        trace: an open trace.
        probe: register values at each call (timetravel.probe.emulator_probe).

    Returns:
        The blocks and misuse found, or None when the program does not define `malloc`.
    """
    sym = Symbolizer(trace.symbols, trace.lines)
    functions = libc_functions(sym)
    if not functions:
        return None
    sites = call_sites(trace, functions)
    wanted = {addr: [s.return_address for s in sites if s.kind == name]
              for name, addr in functions.items()}
    queues = paired_values(functions, probe(wanted))
    heap = LibcHeap(functions, glibc=sym.by_name(_GLIBC_MARKER) is not None)
    kept = top_level(sites)
    # A call made inside the C library (strdup's malloc, stdio's buffer) is placed at the
    # line of the program that led there.
    user = functools.lru_cache(maxsize=None)(lambda rip: sym.line_at(rip) is not None)
    inner = sorted({s.call_step for s in kept if not user(s.return_address - 5)})
    builder = _Builder(heap, sym, user_call_sites(trace, sym, inner))
    for site in kept:
        heap.busy.append((site.call_step, site.return_step))
        values = take_values(queues, site)
        if values is not None:
            builder.call(site, values)
    heap.calls = len(heap.busy)
    return heap


def user_call_sites(trace: Trace, sym: Symbolizer, steps: list[int]) -> dict[int, int]:
    """For each step (a call instruction), the innermost call on the stack at that moment
    made from the program's own code (a line of its source): step -> that call's RIP.

    The call stack is rebuilt from the rsp table's calls and rets (no register needed)."""
    out: dict[int, int] = {}
    if not steps:
        return out
    wanted = iter(steps)
    target = next(wanted)
    stack: list[tuple[int, int]] = []  # (RSP after the call, the call's RIP)
    user = functools.lru_cache(maxsize=None)(lambda rip: sym.line_at(rip) is not None)
    for batch in trace.reader("rsp", ["step", "rip", "old", "new", "cause"]):
        cause = batch.column("cause").cast(pa.string()).to_numpy(zero_copy_only=False)
        rows = np.nonzero((cause == "call") | (cause == "ret"))[0]
        step, rip = batch.column("step").to_numpy(), batch.column("rip").to_numpy()
        old, new = batch.column("old").to_numpy(), batch.column("new").to_numpy()
        for k in rows.tolist():
            while target is not None and step[k] >= target:
                found = next((r for _, r in reversed(stack) if user(r)), None)
                if found is not None:
                    out[target] = found
                target = next(wanted, None)
            if target is None:
                return out
            if cause[k] == "call":
                stack.append((int(new[k]), int(rip[k])))
            else:
                while stack and stack[-1][0] <= int(old[k]):
                    stack.pop()
    return out


class _Builder:
    """Turns top-level calls into blocks, as the C standard defines each function."""

    def __init__(self, heap: LibcHeap, sym: Symbolizer, user_sites: dict[int, int]):
        self.heap = heap
        self.sym = sym
        self.user_sites = user_sites
        self._lines: dict[int, int | None] = {}
        self.live: dict[int, Block] = {}
        self.freed: dict[int, Block] = {}   # start -> last block freed there, not reused
        self._freed_starts: list[int] = []

    def call(self, site: CallSite, v: CallValues) -> None:
        name = site.kind
        returned = site.return_step is not None and v.rax is not None
        ret = v.rax if returned else 0
        if name == "free":
            self._free(site, v.rdi, name)
        elif name == "malloc" and ret:
            self._alloc(site, v, ret, v.rdi)
        elif name == "calloc" and ret:
            self._alloc(site, v, ret, v.rdi * v.rsi).zeroed = True
        elif name in ("aligned_alloc", "memalign") and ret:
            self._alloc(site, v, ret, v.rsi)
        elif name == "posix_memalign" and returned and ret == 0 and v.at_rdi:
            self._alloc(site, v, v.at_rdi, v.rdx, header=False)
        elif name == "realloc":
            self._realloc(site, v, ret, returned)

    def _realloc(self, site: CallSite, v: CallValues, ret: int, returned: bool) -> None:
        ptr, size = v.rdi, v.rsi
        if ptr == 0:
            if ret:
                self._alloc(site, v, ret, size)
            return
        if ptr not in self.live:
            self._free(site, ptr, "realloc")  # reported as a bad free
            return
        if not returned:
            return
        if size == 0 or ret:
            old = self._free(site, ptr, "realloc")
            if ret and old is not None:
                new = self._alloc(site, v, ret, size)
                new.copied_from, new.copied = old.id, min(old.size, size)

    def _line(self, rip: int) -> int | None:
        if rip not in self._lines:
            self._lines[rip] = self.sym.line_no(rip)
        return self._lines[rip]

    def _site(self, site: CallSite) -> tuple[int, int | None, bool]:
        """The call's RIP and line, and whether the program made it itself; for a call
        from inside the C library, the program's call that led to it."""
        rip = site.return_address - 5
        line = self._line(rip)
        if line is not None:
            return rip, line, True
        outer = self.user_sites.get(site.call_step)
        if outer is None:
            return rip, None, False
        return outer, self._line(outer), False

    def _alloc(self, site: CallSite, v: CallValues, ptr: int, size: int,
               header: bool = True) -> Block:
        rip, line, direct = self._site(site)
        via = None if direct else self.sym.function_at(site.return_address - 5)
        block = Block(id=len(self.heap.blocks), ptr=ptr, size=size, func=site.kind,
                      alloc_step=site.return_step or site.call_step, alloc_rip=rip,
                      alloc_line=line, via=via)
        if self.heap.glibc and header and v.header is not None:
            block.chunk_size = v.header & ~7
            block.mmapped = bool(v.header & _IS_MMAPPED)
        # Freed blocks this one overlaps are reused from now on.
        i = bisect.bisect_right(self._freed_starts, ptr + max(size, 1) - 1)
        while i > 0:
            start = self._freed_starts[i - 1]
            old = self.freed[start]
            if start + max(old.size, 1) <= ptr:
                break
            block.reused = True
            del self.freed[start]
            self._freed_starts.pop(i - 1)
            i -= 1
        self.live[ptr] = block
        self.heap.blocks.append(block)
        return block

    def _free(self, site: CallSite, ptr: int, func: str) -> Block | None:
        if ptr == 0:
            return None  # free(NULL) does nothing
        call_rip, line, _ = self._site(site)
        block = self.live.pop(ptr, None)
        if block is None:
            earlier = self.freed.get(ptr)
            self.heap.bad_frees.append(BadFree(
                "double free" if earlier is not None else "invalid free", func, ptr,
                site.call_step, call_rip, line, earlier))
            return None
        block.free_step, block.free_rip, block.free_line = site.call_step, call_rip, line
        if block.ptr not in self.freed:
            bisect.insort(self._freed_starts, block.ptr)
        self.freed[block.ptr] = block
        return block
