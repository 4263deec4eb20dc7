"""The process's memory map at any step, rebuilt from the regions event table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class MappedRegion:
    start: int
    end: int
    perms: str
    kind: str
    name: str

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class MapSnapshot:
    """The whole map right after the region events of one step."""

    step: int
    regions: list[MappedRegion]


def _apply(regions: list[MappedRegion], ev: dict) -> list[MappedRegion]:
    start, end = ev["start"], ev["end"]
    action = ev["action"]
    if action == "grow":
        # The stack grew down by [start, end): the stack region that began at `end` now
        # begins at `start` (one region, as Linux shows its [stack] VMA).
        above = next((r for r in regions if r.kind == "stack" and r.start == end), None)
        kept = [r for r in regions if r is not above]
        top = above.end if above else end
        kept.append(MappedRegion(start, top, ev["perms"], "stack", ev["name"] or ""))
        return kept
    if action == "brk":
        kept = [r for r in regions if r.kind != "heap"]
        if end > start:
            kept.append(MappedRegion(start, end, ev["perms"], "heap", ev["name"] or ""))
        return kept
    pieces: list[MappedRegion] = []
    for r in regions:
        if r.end <= start or r.start >= end:
            pieces.append(r)
            continue
        if r.start < start:
            pieces.append(MappedRegion(r.start, start, r.perms, r.kind, r.name))
        if r.end > end:
            pieces.append(MappedRegion(end, r.end, r.perms, r.kind, r.name))
        if action == "protect":
            pieces.append(MappedRegion(max(r.start, start), min(r.end, end), ev["perms"],
                                       r.kind, r.name))
    if action == "map":
        pieces.append(MappedRegion(start, end, ev["perms"], ev["kind"], ev["name"] or ""))
    return pieces


def maps_over_time(events: pa.Table) -> Iterator[MapSnapshot]:
    """Yields the map after each step that changed it, in step order.

    Args:
        events: the trace's `regions` table, in recorded order.
    """
    regions: list[MappedRegion] = []
    rows = events.to_pylist()
    for i, ev in enumerate(rows):
        regions = _apply(regions, ev)
        if i + 1 == len(rows) or rows[i + 1]["step"] != ev["step"]:
            yield MapSnapshot(ev["step"], sorted(regions, key=lambda r: r.start))


def map_at(events: pa.Table, step: int | None = None) -> list[MappedRegion]:
    """Applies region events (map/unmap/protect/brk/grow) up to and including `step`.

    Args:
        events: the trace's `regions` table, in recorded order.
        step: the last step to include; None for the final map.

    Returns:
        The regions in address order.
    """
    current: list[MappedRegion] = []
    for snap in maps_over_time(events):
        if step is not None and snap.step > step:
            break
        current = snap.regions
    return current
