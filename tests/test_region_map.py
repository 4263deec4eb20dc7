"""The one region-map applier (tracer.format.regions), used by the recorder's address space,
the replay engine and the readers: its rules on events built by hand, and a recorded run whose
heap has a hole that a later brk leaves in place (as Linux does)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conftest import PROGRAMS, build_native, record, run_native
from tracer.format.regions import (
    PAGE, MremapMove, RegionEvent, RegionMap, Segment, mremap_move,
)
from tracer.format.schema import REGIONS

H = 0x405000  # the initial break


def apply_all(events, **kw) -> RegionMap:
    m = RegionMap()
    for ev in events:
        m = m.apply(ev, **kw)
    return m


def spans(m: RegionMap):
    return [(s.start, s.end, s.perms, s.kind) for s in m.segments]


def brk(end, step=0):
    return RegionEvent("brk", H, end, "rw-", "heap", "[heap]", step)


def test_brk_grows_the_heap_in_place_as_one_region():
    m = apply_all([brk(H + PAGE), brk(H + 3 * PAGE)])
    assert spans(m) == [(H, H + 3 * PAGE, "rw-", "heap")]
    assert m.brk_end == H + 3 * PAGE


def test_brk_shrinks_only_the_top_of_the_heap():
    m = apply_all([brk(H + 3 * PAGE), brk(H + PAGE)])
    assert spans(m) == [(H, H + PAGE, "rw-", "heap")]
    assert apply_all([brk(H + 3 * PAGE), brk(H)]).segments == ()


def test_brk_after_a_hole_maps_only_the_new_pages():
    # analysis/regions.py used to redraw the heap as one [start, end) over the hole.
    m = apply_all([brk(H + 3 * PAGE),
                   RegionEvent("unmap", H + PAGE, H + 2 * PAGE, "rw-", "heap", "[heap]"),
                   brk(H + 4 * PAGE)])
    assert spans(m) == [(H, H + PAGE, "rw-", "heap"), (H + 2 * PAGE, H + 4 * PAGE, "rw-", "heap")]
    assert m.change.mapped == (Segment(H + 3 * PAGE, H + 4 * PAGE, "rw-", "heap", "[heap]"),)


def test_brk_keeps_the_protection_of_a_protected_part():
    m = apply_all([brk(H + 2 * PAGE),
                   RegionEvent("protect", H, H + PAGE, "r--", "heap", "[heap]"),
                   brk(H + 3 * PAGE)])
    assert spans(m) == [(H, H + PAGE, "r--", "heap"), (H + PAGE, H + 3 * PAGE, "rw-", "heap")]


def test_brk_pages_mapped_at_different_steps_keep_their_origin():
    m = RegionMap().apply(brk(H + PAGE, 5), fresh=5).apply(brk(H + 2 * PAGE, 9), fresh=9)
    assert [(s.start, s.fresh_since) for s in m.segments] == [(H, 5), (H + PAGE, 9)]


def test_map_unmap_protect_split_what_they_touch():
    m = apply_all([RegionEvent("map", 0x1000, 0x5000, "rw-", "mmap", ""),
                   RegionEvent("protect", 0x2000, 0x3000, "r--", "", ""),
                   RegionEvent("unmap", 0x4000, 0x6000, "", "", ""),
                   RegionEvent("map", 0x1000, 0x2000, "r-x", "text", ".text")])
    assert spans(m) == [(0x1000, 0x2000, "r-x", "text"), (0x2000, 0x3000, "r--", "mmap"),
                        (0x3000, 0x4000, "rw-", "mmap")]
    assert m.change.unmapped == (Segment(0x1000, 0x2000, "rw-", "mmap", ""),)


def test_grow_joins_the_stack_above():
    top = 0x7FFFFFFFF000
    m = apply_all([RegionEvent("map", top - 0x21000, top, "rw-", "stack", "[stack]"),
                   RegionEvent("grow", top - 0x23000, top - 0x21000, "rw-", "stack",
                               "[stack]")])
    assert spans(m) == [(top - 0x23000, top, "rw-", "stack")]


def test_a_map_at_an_mremap_destination_holds_the_moved_bytes():
    move = mremap_move("mremap", (0x7000_0000, 3 * PAGE - 5, 4 * PAGE, 1), 0x6000_0000)
    assert move == MremapMove(0x7000_0000, 0x6000_0000, 3 * PAGE)
    assert mremap_move("mremap", (0x7000_0000, PAGE), 0x7000_0000) is None
    assert mremap_move("mremap", (0x7000_0000, PAGE), -12) is None
    m = RegionMap().apply(RegionEvent("map", 0x6000_0000, 0x6000_4000, "rw-", "mmap", "", 60),
                          fresh=60, move=move)
    assert [(s.start, s.end, s.moved_from) for s in m.segments] == [
        (0x6000_0000, 0x6000_3000, 0x7000_0000), (0x6000_3000, 0x6000_4000, None)]


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError, match="unknown region action"):
        RegionMap().apply(RegionEvent("explode", 0, PAGE, "", "", ""))


def test_the_readers_agree_on_a_map_built_by_hand():
    from analysis.regions import map_at

    rows = [dict(step=s, action=a, start=lo, end=hi, perms="rw-", kind="heap", name="[heap]")
            for s, a, lo, hi in ((1, "brk", H, H + 3 * PAGE), (2, "unmap", H + PAGE, H + 2 * PAGE),
                                 (3, "brk", H, H + 4 * PAGE))]
    got = [(r.start, r.end) for r in map_at(pa.Table.from_pylist(rows, schema=REGIONS))]
    assert got == [(H, H + PAGE), (H + 2 * PAGE, H + 4 * PAGE)]


def test_a_hole_in_the_heap_stays_after_brk_as_on_linux(workdir):
    from analysis import open_trace
    from analysis.memory import segments_at
    from analysis.regions import map_at

    source = PROGRAMS / "brk_hole.asm"
    native = run_native(build_native(source, workdir))
    assert native.returncode == -11  # the store into the hole faults on Linux
    info = record(source, workdir / "t")
    assert info["stop_reason"] == "fault"
    trace = open_trace(workdir / "t")
    hole = trace.initial_brk + PAGE
    assert info["exit"]["fault"]["address"] == hole + 8
    final = map_at(trace.regions)
    assert not any(r.start <= hole < r.end for r in final)
    assert any(r.start <= hole + 2 * PAGE < r.end and r.kind == "heap" for r in final)
    last = trace.meta.end.instructions
    heap = [s for s in segments_at(trace, last) if s.kind == "heap"]
    assert not any(s.start <= hole < s.end for s in heap)
    assert (heap[0].start, heap[-1].end) == (trace.initial_brk, hole + 3 * PAGE)
