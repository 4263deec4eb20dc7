"""The virtual-memory map as the classic picture: regions stacked by address (stack on
top, text at the bottom), each tall enough to read its name and size on it (heights grow
with the log of the size) with a to-scale layout beside it, the huge gaps between them
marked, perms and sizes, and how the map changed."""

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
LOG_STEP = 0.5  # legible layout: a page is 1 unit tall, each doubling adds this much


@dataclass(frozen=True)
class VmMap:
    """`regions`: one row per segment of the run, low to high: label, kind, name, start,
    end, size, perms, first_step, last_step (Int64, NA: still mapped at the end), y0, y1
    (the legible layout: at least one unit each, `height`) and scale_y0, scale_y1 (the
    to-scale layout: heights proportional to size, the same total).
    `gaps`: start, end, size, y0, y1, scale_y0, scale_y1 between consecutive regions (a
    fixed height in both layouts: gaps are never to scale).
    `changes`: step, action, start, end, perms, kind, name (region events after the
    initial map: syscalls' changes and the stack's growth).
    `stack_used`: bytes between the top of the stack and the deepest RSP.
    `final_brk`: the program break at the end (the heap's used part ends there)."""

    regions: pd.DataFrame
    gaps: pd.DataFrame
    changes: pd.DataFrame
    stack_used: int
    final_brk: int
    stack_initial: int = 0  # of stack_used, the bytes Linux put there (argv, env, auxv)


def height(size: int, unit: int = 4096) -> float:
    """Legible height of a region: 1 for a page or less, +LOG_STEP per doubling."""
    return 1.0 + LOG_STEP * math.log2(max(size, unit) / unit)


def vmmap_from(events: pa.Table, initial_brk: int, stack_top: int,
               lowest_rsp: int, initial_rsp: int | None = None) -> VmMap:
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
    legible = [height(r["size"]) for r in rows]
    total_size = sum(r["size"] for r in rows) or 1
    to_scale = [sum(legible) * r["size"] / total_size for r in rows]
    gaps = []
    y = s_y = 0.0
    for i, row in enumerate(rows):
        if i and row["start"] > rows[i - 1]["end"]:
            gaps.append({"start": rows[i - 1]["end"], "end": row["start"],
                         "size": row["start"] - rows[i - 1]["end"], "y0": y,
                         "y1": y + GAP_HEIGHT, "scale_y0": s_y, "scale_y1": s_y + GAP_HEIGHT})
            y += GAP_HEIGHT
            s_y += GAP_HEIGHT
        row["y0"], row["scale_y0"] = y, s_y
        y += legible[i]
        s_y += to_scale[i]
        row["y1"], row["scale_y1"] = y, s_y
    changes = events.to_pandas()
    changes = changes[(changes["step"] > 0) | (changes["action"] == "grow")
                      ].reset_index(drop=True)
    heap = [r for r in final if r.kind == "heap"]
    return VmMap(
        regions=pd.DataFrame(rows, columns=["label", "kind", "name", "start", "end", "size",
                                            "perms", "first_step", "last_step", "y0", "y1",
                                            "scale_y0", "scale_y1"]
                             ).astype({"last_step": "Int64"}),
        gaps=pd.DataFrame(gaps, columns=["start", "end", "size", "y0", "y1", "scale_y0",
                                         "scale_y1"]),
        changes=changes,
        stack_used=stack_used,
        final_brk=heap[0].end if heap else initial_brk,
        stack_initial=max(0, stack_top - (lowest_rsp if initial_rsp is None else initial_rsp)))


def vmmap(trace: Trace, lowest_rsp: int | None = None) -> VmMap:
    """The memory-map picture of a trace.

    Args:
        trace: an open trace.
        lowest_rsp: the deepest RSP of the run (default: the initial RSP).
    """
    return vmmap_from(trace.regions, trace.initial_brk, trace.meta.initial.stack_top,
                      trace.initial_rsp if lowest_rsp is None else lowest_rsp,
                      trace.initial_rsp)
