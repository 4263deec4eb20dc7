"""Heap timeline: the program break and every mmap region against step (the heap growing
up, mmaps appearing and going), and each brk call with what was asked and returned."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from analysis.regions import maps_over_time
from analysis.symbols import Symbolizer
from analysis.trace import Trace


@dataclass(frozen=True)
class HeapTimeline:
    """`brk`: step, end (the break from that step on; row 0 is the initial break).
    `brk_calls`: step, rip, requested (None for brk(0)), returned, moved (bool), and
    line (the source line; from `heap_timeline` only).
    `mmaps`: start, end, perms, name, first_step, last_step (None: still mapped at the end).
    """

    initial_brk: int
    final_brk: int
    brk: pd.DataFrame
    brk_calls: pd.DataFrame
    mmaps: pd.DataFrame
    instructions: int


def heap_timeline_from(regions: pa.Table, syscalls: pa.Table, initial_brk: int,
                       instructions: int) -> HeapTimeline:
    """Builds the heap timeline from the small tables (see `heap_timeline`)."""
    brk_rows = [{"step": 0, "end": initial_brk}]
    open_maps: dict[tuple[int, int], dict] = {}
    closed: list[dict] = []
    for snap in maps_over_time(regions):
        heap = [r for r in snap.regions if r.kind == "heap"]
        end = heap[0].end if heap else initial_brk
        if end != brk_rows[-1]["end"]:
            brk_rows.append({"step": snap.step, "end": end})
        now = {(r.start, r.end): r for r in snap.regions if r.kind == "mmap"}
        for key in list(open_maps):
            if key not in now:
                row = open_maps.pop(key)
                row["last_step"] = snap.step
                closed.append(row)
        for key, r in now.items():
            if key not in open_maps:
                open_maps[key] = {"start": r.start, "end": r.end, "perms": r.perms,
                                  "name": r.name, "first_step": snap.step, "last_step": None}
    mmaps = pd.DataFrame(closed + list(open_maps.values()),
                         columns=["start", "end", "perms", "name", "first_step", "last_step"])
    mmaps = mmaps.astype({"last_step": "Int64"}).sort_values(["first_step", "start"],
                                                             ignore_index=True)
    calls = []
    for row in syscalls.select(["step", "rip", "name", "args", "ret"]).to_pylist():
        if row["name"] != "brk":
            continue
        asked = row["args"][0]
        calls.append({"step": row["step"], "rip": row["rip"],
                      "requested": asked if asked else None, "returned": row["ret"],
                      "moved": bool(asked) and row["ret"] == asked})
    brk_calls = pd.DataFrame(calls, columns=["step", "rip", "requested", "returned", "moved"])
    # Built as nullable integers directly: through float64 (a None beside brk(-1)) the
    # 64-bit values would not survive.
    brk_calls["requested"] = pd.array([c["requested"] for c in calls], dtype="UInt64")
    brk_calls["returned"] = pd.array([c["returned"] for c in calls], dtype="Int64")
    return HeapTimeline(initial_brk=initial_brk, final_brk=brk_rows[-1]["end"],
                        brk=pd.DataFrame(brk_rows), brk_calls=brk_calls, mmaps=mmaps,
                        instructions=instructions)


def heap_timeline(trace: Trace) -> HeapTimeline:
    """The break and mmap regions of a trace over its run.

    Args:
        trace: an open trace.

    Returns:
        The timeline (built from the small regions and syscalls tables only).
    """
    heap = heap_timeline_from(trace.regions, trace.syscalls, trace.initial_brk,
                              trace.instructions)
    sym = Symbolizer(trace.symbols, trace.lines)
    heap.brk_calls["line"] = pd.array([sym.line_no(int(r)) for r in heap.brk_calls["rip"]],
                                      dtype="Int64")
    return heap
