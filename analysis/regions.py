"""The process's memory map at any step, rebuilt from the regions event table."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class MappedRegion:
    start: int
    end: int
    perms: str
    kind: str
    name: str


def map_at(events: pa.Table, step: int | None = None) -> list[MappedRegion]:
    """Applies region events (map/unmap/protect/brk) up to and including `step`.

    Args:
        events: the trace's `regions` table, in recorded order.
        step: the last step to include; None for the final map.

    Returns:
        The regions in address order.
    """
    regions: list[MappedRegion] = []
    for ev in events.to_pylist():
        if step is not None and ev["step"] > step:
            break
        start, end = ev["start"], ev["end"]
        action = ev["action"]
        if action == "brk":
            regions = [r for r in regions if r.kind != "heap"]
            if end > start:
                regions.append(MappedRegion(start, end, ev["perms"], "heap", ev["name"] or ""))
            continue
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
        regions = pieces
    return sorted(regions, key=lambda r: r.start)
