"""The process's memory map at any step, rebuilt from the regions event table by the one
applier (tracer.format.regions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from tracer.format.regions import RegionEvent, RegionMap, Segment


# One type for a mapped range, everywhere (tracer.format.regions): readers here track no
# origins, so `fresh_since` and `moved_from` stay None.
MappedRegion = Segment


@dataclass(frozen=True)
class MapSnapshot:
    """The whole map right after the region events of one step."""

    step: int
    regions: list[MappedRegion]


def maps_over_time(events: pa.Table) -> Iterator[MapSnapshot]:
    """Yields the map after each step that changed it, in step order.

    Args:
        events: the trace's `regions` table, in recorded order.
    """
    current = RegionMap()
    rows = [RegionEvent.from_row(r) for r in events.to_pylist()]
    for i, ev in enumerate(rows):
        current = current.apply(ev)
        if i + 1 == len(rows) or rows[i + 1].step != ev.step:
            yield MapSnapshot(ev.step, list(current.segments))


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
