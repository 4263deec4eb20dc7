"""Segments: the named address ranges (text, data, heap, each mmap, stack...) that every
per-segment table and heatmap groups accesses by."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from analysis.regions import maps_over_time
from analysis.trace import Trace

_ORDER = ["elf", "text", "rodata", "data", "bss", "heap", "mmap", "vdso", "stack"]


@dataclass(frozen=True)
class Segment:
    id: int
    kind: str
    name: str
    start: int
    end: int

    @property
    def label(self) -> str:
        if self.kind in ("heap", "stack"):
            return self.kind
        if self.kind == "mmap":
            return self.name if self.name.endswith("regions") else f"mmap {self.start:#x}"
        return self.name or self.kind


def segments_from_events(events: pa.Table, initial_brk: int) -> list[Segment]:
    """Every range the program could touch over the whole run, one segment each.

    The heap is one segment from the initial break to the highest break, the stack one
    from the lowest it grew to; mmap regions that overlap or touch over time are merged, so
    an address belongs to one segment.

    Args:
        events: the regions table.
        initial_brk: meta.initial.brk.
    """
    seen: dict[tuple[str, str, int, int], None] = {}
    heap_hi = initial_brk
    for snap in maps_over_time(events):
        for r in snap.regions:
            if r.kind == "heap":
                heap_hi = max(heap_hi, r.end)
            else:
                seen[(r.kind, r.name, r.start, r.end)] = None
    ranges = sorted(seen, key=lambda k: k[2])
    merged: list[list] = []
    for kind, name, start, end in ranges:
        # The stack is one segment however far it grew (`grow` events).
        if merged and kind in ("mmap", "stack") and merged[-1][0] == kind \
                and start <= merged[-1][3]:
            merged[-1][3] = max(merged[-1][3], end)
            continue
        merged.append([kind, name, start, end])
    if heap_hi > initial_brk:
        merged.append(["heap", "[heap]", initial_brk, heap_hi])
    merged.sort(key=lambda m: (_ORDER.index(m[0]) if m[0] in _ORDER else 99, m[2]))
    return [Segment(i, k, n, s, e) for i, (k, n, s, e) in enumerate(merged)]


def segments(trace: Trace) -> list[Segment]:
    """The segments of a trace (see `segments_from_events`)."""
    return segments_from_events(trace.regions, trace.initial_brk)
