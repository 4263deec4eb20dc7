"""Allocation-level heap tracking: `--allocator alloc=SYM,free=SYM` turns calls to those
functions into alloc/free events, and from them live blocks, free holes and fragmentation
over time (free bytes inside the heap, largest hole, external fragmentation).

The trace records no registers, so the size (rdi), the returned pointer (rax) and the
freed pointer (rdi) come from a `RegisterProbe` the caller supplies (the CLI re-runs the
program with the emulator; a notebook may pass values from anywhere)."""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from analysis.code import MemoryImage
from analysis.errors import AllocatorSpecError
from analysis.symbols import Symbolizer
from analysis.trace import Trace


@dataclass(frozen=True)
class AllocatorSpec:
    alloc: str
    free: str

    @classmethod
    def parse(cls, text: str) -> AllocatorSpec:
        """Parses `alloc=SYM,free=SYM`.

        Raises:
            AllocatorSpecError: a part is missing or malformed.
        """
        parts: dict[str, str] = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            if not sep or not value.strip() or key.strip() not in ("alloc", "free"):
                raise AllocatorSpecError(
                    f"--allocator {text!r}: expected alloc=SYMBOL,free=SYMBOL "
                    f"(e.g. alloc=my_alloc,free=my_free)")
            parts[key.strip()] = value.strip()
        if set(parts) != {"alloc", "free"}:
            raise AllocatorSpecError(f"--allocator {text!r}: name both alloc= and free=")
        return cls(parts["alloc"], parts["free"])


class CallKind(enum.Enum):
    ALLOC = "alloc"
    FREE = "free"


@dataclass(frozen=True)
class CallSite:
    """One call into the allocator found in the trace."""

    kind: CallKind
    call_step: int
    return_step: int | None  # the `ret` step; None if the run ended inside the call
    return_address: int


@dataclass(frozen=True)
class CallValues:
    """Registers of one call: rdi at entry, rax after return (None if it never returned).

    For the C library's functions (analysis/libc_heap.py) also rsi and rdx at entry, the
    return address the call pushed (to pair each entry with its call site even when one
    function tail-calls another), and after the return the 8 bytes before the returned
    pointer (glibc's chunk size field) and the 8 bytes at rdi (posix_memalign's result)."""

    rdi: int
    rax: int | None
    rsi: int = 0
    rdx: int = 0
    return_address: int | None = None
    header: int | None = None
    at_rdi: int | None = None


# (function address, return addresses of its calls) -> values per call, in execution order.
RegisterProbe = Callable[[dict[int, list[int]]], dict[int, list[CallValues]]]


@dataclass(frozen=True)
class AllocEvent:
    step: int
    kind: CallKind
    ptr: int
    size: int  # requested size for alloc; the block's size for free (0 if unknown)


@dataclass(frozen=True)
class Fragmentation:
    """`blocks`: ptr, size, alloc_step, free_step (Int64, NA while live).
    `timeline`: one row after each event: step, event, ptr, size, live_blocks, live_bytes,
    heap_bytes, free_bytes, holes, largest_hole, external_fragmentation.
    `final_holes`: start, end of each free hole at the end."""

    heap_start: int
    blocks: pd.DataFrame
    timeline: pd.DataFrame
    final_holes: pd.DataFrame
    problems: list[str]


def resolve(spec: AllocatorSpec, symbolizer: Symbolizer) -> dict[CallKind, int]:
    """The addresses of the allocator's functions.

    Raises:
        AllocatorSpecError: a symbol is not in the program.
    """
    out = {}
    for kind, name in ((CallKind.ALLOC, spec.alloc), (CallKind.FREE, spec.free)):
        sym = symbolizer.by_name(name)
        if sym is None:
            raise AllocatorSpecError(f"--allocator: the program has no symbol {name!r}")
        out[kind] = sym.addr
    return out


def call_sites(trace: Trace, targets: dict[CallKind, int]) -> list[CallSite]:
    """Direct calls to the allocator's functions, with the `ret` that ends each."""
    image = MemoryImage(trace.memory_image)
    by_addr = {addr: kind for kind, addr in targets.items()}
    # Decode each distinct call instruction once, then fetch only the calls into the
    # allocator and the rets at their stack slots: a program may make millions of calls.
    call_rips = trace.sql("SELECT DISTINCT rip FROM rsp WHERE cause = 'call'",
                          {"rsp": ["rip", "cause"]}).column("rip").to_pylist()
    ours = [rip for rip in call_rips if image.call_target(rip) in by_addr]
    if not ours:
        return []
    listed = ", ".join(str(rip) for rip in ours)
    rows = trace.sql(f"""
        SELECT step, rip, old, new, cause FROM r
        WHERE (cause = 'call' AND rip IN ({listed}))
           OR (cause = 'ret' AND old IN (SELECT new FROM r WHERE cause = 'call'
                                         AND rip IN ({listed})))
        ORDER BY step""", {"rsp": ["step", "rip", "old", "new", "cause"]},
                     materialize={"r": "SELECT step, rip, old, new, cause::VARCHAR AS cause "
                                       "FROM rsp WHERE cause IN ('call', 'ret')"}).to_pylist()
    open_calls: dict[int, list[tuple[CallKind, int, int]]] = {}
    sites: list[CallSite] = []
    for r in rows:
        if r["cause"] == "call":
            kind = by_addr.get(image.call_target(r["rip"]))
            if kind is not None:
                # A direct `call rel32` is 5 bytes: the callee returns right after it.
                sites.append(CallSite(kind, r["step"], None, r["rip"] + 5))
                open_calls.setdefault(r["new"], []).append((kind, r["step"], len(sites) - 1))
        elif open_calls.get(r["old"]):
            kind, step, i = open_calls[r["old"]].pop()
            s = sites[i]
            sites[i] = CallSite(s.kind, s.call_step, r["step"], s.return_address)
    return sites


def allocator_events(trace: Trace, spec: AllocatorSpec, probe: RegisterProbe
                     ) -> list[AllocEvent]:
    """Turns the allocator's calls into alloc/free events.

    Args:
        trace: an open trace.
        spec: the allocator's function names.
        probe: gives rdi at entry and rax on return for each call.

    Returns:
        Events in step order: an alloc at its `ret` step, a free at its call step.

    Raises:
        AllocatorSpecError: a symbol is not in the program.
    """
    targets = resolve(spec, Symbolizer(trace.symbols, trace.lines))
    sites = call_sites(trace, targets)
    wanted = {addr: [s.return_address for s in sites if s.kind is kind]
              for kind, addr in targets.items()}
    values = probe(wanted)
    queues = paired_values(targets, values)
    events: list[AllocEvent] = []
    for site in sites:
        v = take_values(queues, site)
        if v is None:
            continue
        if site.kind is CallKind.ALLOC:
            if v.rax is None or site.return_step is None:
                continue
            events.append(AllocEvent(site.return_step, CallKind.ALLOC, v.rax, v.rdi))
        else:
            events.append(AllocEvent(site.call_step, CallKind.FREE, v.rdi, 0))
    return sorted(events, key=lambda e: e.step)


def paired_values(targets: dict, values: dict[int, list[CallValues]]) -> dict:
    """Each function's call values, queued by the return address their call pushed (a
    probe that does not know it queues them all under None, in execution order)."""
    queues: dict = {}
    for kind, addr in targets.items():
        for v in values.get(addr, []):
            queues.setdefault((kind, v.return_address), []).append(v)
    return queues


def take_values(queues: dict, site: CallSite) -> CallValues | None:
    """The next values of the call made at `site` (None when the probe has none)."""
    for key in ((site.kind, site.return_address), (site.kind, None)):
        if queues.get(key):
            return queues[key].pop(0)
    return None


# Two freed extents this close, with no live block between them, are one hole: the bytes
# between are the allocator's header of the second, free as soon as both blocks are.
HEADER_GAP = 32


def _subtract(extents: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    out = []
    for s, e in extents:
        if e <= lo or s >= hi:
            out.append((s, e))
            continue
        if s < lo:
            out.append((s, lo))
        if e > hi:
            out.append((hi, e))
    return out


def _holes(freed: list[tuple[int, int]], live: dict[int, int]) -> list[tuple[int, int]]:
    """Freed extents not reused since, adjacent ones (up to a header apart) merged."""
    starts = sorted(live)
    holes: list[tuple[int, int]] = []
    for s, e in sorted(freed):
        if holes and s - holes[-1][1] <= HEADER_GAP:
            i = bisect.bisect_left(starts, holes[-1][1])
            if i == len(starts) or starts[i] >= s:   # no live block in between
                holes[-1] = (holes[-1][0], max(e, holes[-1][1]))
                continue
        holes.append((s, e))
    return holes


def fragmentation(events: Sequence[AllocEvent], heap_start: int) -> Fragmentation:
    """Live blocks, holes and fragmentation after each alloc/free.

    The heap is `[heap_start, highest block end so far)`. A hole is memory the program
    freed and that no block has reused since (extents a header apart merged): an
    allocator's own headers and alignment padding are overhead, never holes, so nothing
    is fragmented before the first free. External fragmentation = 1 - largest hole / free
    bytes (0 when nothing is free).

    Args:
        events: alloc/free events in step order.
        heap_start: where the heap begins (the initial program break).

    Returns:
        Blocks, the metrics after each event, the final holes, and misuse found on the way
        (a free of a pointer that is not live).
    """
    live: dict[int, int] = {}
    born: dict[int, int] = {}
    blocks: list[dict] = []
    rows: list[dict] = []
    problems: list[str] = []
    hi = heap_start
    freed: list[tuple[int, int]] = []
    for ev in events:
        size = ev.size
        if ev.kind is CallKind.ALLOC:
            if ev.ptr == 0:
                problems.append(f"step {ev.step}: alloc({ev.size}) returned a null pointer")
                continue
            live[ev.ptr] = ev.size
            freed = _subtract(freed, ev.ptr, ev.ptr + ev.size)
            born[ev.ptr] = len(blocks)
            blocks.append({"ptr": ev.ptr, "size": ev.size, "alloc_step": ev.step,
                           "free_step": None})
            hi = max(hi, ev.ptr + ev.size)
        else:
            if ev.ptr == 0:
                continue  # free(NULL) is allowed and does nothing
            if ev.ptr not in live:
                problems.append(f"step {ev.step}: free({ev.ptr:#x}) of a pointer that is "
                                f"not a live block (double free or a wrong pointer)")
                continue
            size = live.pop(ev.ptr)
            freed.append((ev.ptr, ev.ptr + size))
            blocks[born.pop(ev.ptr)]["free_step"] = ev.step
        holes = _holes(freed, live)
        free_bytes = sum(e - s for s, e in holes)
        largest = max((e - s for s, e in holes), default=0)
        rows.append({
            "step": ev.step, "event": ev.kind.value, "ptr": ev.ptr, "size": size,
            "live_blocks": len(live), "live_bytes": sum(live.values()),
            "heap_bytes": hi - heap_start, "free_bytes": free_bytes, "holes": len(holes),
            "largest_hole": largest,
            "external_fragmentation": (1 - largest / free_bytes) if free_bytes else 0.0,
        })
    final = _holes(freed, live)
    return Fragmentation(
        heap_start=heap_start,
        blocks=pd.DataFrame(blocks, columns=["ptr", "size", "alloc_step", "free_step"]
                            ).astype({"free_step": "Int64"}),
        timeline=pd.DataFrame(rows, columns=[
            "step", "event", "ptr", "size", "live_blocks", "live_bytes", "heap_bytes",
            "free_bytes", "holes", "largest_hole", "external_fragmentation"]),
        final_holes=pd.DataFrame(final, columns=["start", "end"]),
        problems=problems)
