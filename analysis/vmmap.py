"""The virtual-memory map as the classic picture: regions stacked by address (stack on
top, text at the bottom), heights to scale when the sizes allow it and log-scaled when
not, the huge gaps between them marked, perms and sizes, and how the map changed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from analysis.regions import maps_over_time
from analysis.segments import Segment, segments_from_events
from analysis.trace import Trace

GAP_HEIGHT = 0.7
MAX_MMAP_SLOTS = 40
LINEAR_RATIO = 64  # draw to scale when the biggest region is at most this many smallest


@dataclass(frozen=True)
class VmMap:
    """`regions`: one row per segment of the run, low to high: label, kind, name, start,
    end, size, perms, first_step, last_step (Int64, NA: still mapped at the end), y0, y1.
    `gaps`: start, end, size, y0, y1 between consecutive regions.
    `changes`: step, action, start, end, perms, kind, name (region events after the
    initial map: syscalls' changes and the stack's growth).
    `stack_used`: bytes between the top of the stack and the deepest RSP.
    `scale`: "linear" (heights to scale) or "log2" (when sizes differ too much for that)."""

    regions: pd.DataFrame
    gaps: pd.DataFrame
    changes: pd.DataFrame
    stack_used: int
    final_brk: int
    scale: str


def height(size: int, scale: str = "log2", unit: int = 4096) -> float:
    """Drawn height of a region: size / unit to scale, else 1 per `unit` +1 per doubling."""
    if scale == "linear":
        return max(size, unit) / unit
    return 1.0 + math.log2(max(size, unit) / unit)


def vmmap_from(events: pa.Table, initial_brk: int, stack_top: int,
               lowest_rsp: int) -> VmMap:
    """Builds the map picture's data from the regions table (see `vmmap`)."""
    segs = sorted(segments_from_events(events, initial_brk), key=lambda s: s.start)
    mmaps = [s for s in segs if s.kind == "mmap"]
    if len(mmaps) > MAX_MMAP_SLOTS:
        # A picture of hundreds of slivers helps nobody: one box spans them all.
        span = Segment(mmaps[0].id, "mmap", f"{len(mmaps)} mmap regions", mmaps[0].start,
                       max(s.end for s in mmaps))
        segs = sorted([s for s in segs if s.kind != "mmap"] + [span], key=lambda s: s.start)
    snaps = list(maps_over_time(events))
    final = snaps[-1].regions if snaps else []
    rows = []
    for s in segs:
        first = last = None
        perms = ""
        for snap in snaps:
            hit = [r for r in snap.regions if r.start < s.end and r.end > s.start]
            if hit:
                perms = hit[0].perms
                first = snap.step if first is None else first
                last = snap.step
            elif first is not None and last is not None and not isinstance(last, tuple):
                last = ("gone", snap.step)
        alive = any(r.start < s.end and r.end > s.start for r in final)
        gone_at = None if alive or not isinstance(last, tuple) else last[1]
        rows.append({"label": s.label, "kind": s.kind, "name": s.name, "start": s.start,
                     "end": s.end, "size": s.end - s.start, "perms": perms,
                     "first_step": first if first is not None else 0, "last_step": gone_at})
    stack_used = max(0, stack_top - lowest_rsp)
    # Each region is drawn at its largest size over the run; the stack's is Linux's [stack]
    # at its deepest (its `grow` events), not the 8 MiB it may grow to.
    sizes = [r["size"] for r in rows] or [4096]
    unit = max(4096, min(sizes))
    scale = "linear" if max(sizes) <= LINEAR_RATIO * unit else "log2"
    y = 0.0
    gaps = []
    for i, row in enumerate(rows):
        if i and row["start"] > rows[i - 1]["end"]:
            gaps.append({"start": rows[i - 1]["end"], "end": row["start"],
                         "size": row["start"] - rows[i - 1]["end"], "y0": y,
                         "y1": y + GAP_HEIGHT})
            y += GAP_HEIGHT
        row["y0"] = y
        y += height(row["size"], scale, unit)
        row["y1"] = y
    changes = events.to_pandas()
    changes = changes[(changes["step"] > 0) | (changes["action"] == "grow")
                      ].reset_index(drop=True)
    heap = [r for r in final if r.kind == "heap"]
    return VmMap(
        regions=pd.DataFrame(rows, columns=["label", "kind", "name", "start", "end", "size",
                                            "perms", "first_step", "last_step", "y0", "y1"]
                             ).astype({"last_step": "Int64"}),
        gaps=pd.DataFrame(gaps, columns=["start", "end", "size", "y0", "y1"]),
        changes=changes,
        stack_used=stack_used,
        final_brk=heap[0].end if heap else initial_brk, scale=scale)


def vmmap(trace: Trace, lowest_rsp: int | None = None) -> VmMap:
    """The memory-map picture of a trace.

    Args:
        trace: an open trace.
        lowest_rsp: the deepest RSP of the run (default: the initial RSP).
    """
    return vmmap_from(trace.regions, trace.initial_brk, trace.meta.initial.stack_top,
                      trace.initial_rsp if lowest_rsp is None else lowest_rsp)
