"""Unit tests of the replay's pure parts on inputs built by hand: the memory map with the
origin of each range's bytes, and the batch-by-batch comparison of event tables."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from analysis.memory import segments_at
from tracer.format.schema import ACCESSES, REGIONS, SOURCES, SYSCALLS

PAGE = 0x1000


class HandTrace:
    """Just what segments_at reads from a trace: its regions and syscalls tables."""

    def __init__(self, regions: list[dict], syscalls: list[dict]):
        self.regions = pa.Table.from_pylist(regions, schema=REGIONS)
        self.syscalls = pa.Table.from_pylist(syscalls, schema=SYSCALLS)


def ev(step, action, start, end, perms="rw-", kind="mmap", name=""):
    return dict(step=step, action=action, start=start, end=end, perms=perms, kind=kind,
                name=name)


def call(step, name, args=(0,) * 6, ret=0, detail=None):
    return dict(step=step, rip=0x401000, nr=0, name=name, args=list(args) + [0] * (6 - len(args)),
                ret=ret, detail=json.dumps(detail) if detail is not None else None, abi="x86_64")


@pytest.fixture
def trace():
    heap = 0x405000
    regions = [
        ev(0, "map", 0x400000, 0x401000, "r--", "elf"),
        ev(0, "map", 0x401000, 0x402000, "r-x", "text"),
        ev(0, "map", 0x404000, heap, "rw-", "bss"),
        ev(10, "brk", heap, heap + 2 * PAGE, kind="heap", name="[heap]"),
        ev(20, "map", 0x7000_0000, 0x7000_3000),
        ev(30, "protect", 0x7000_1000, 0x7000_2000, "r--"),
        ev(40, "brk", heap, heap + PAGE, kind="heap", name="[heap]"),
        ev(50, "brk", heap, heap + 3 * PAGE, kind="heap", name="[heap]"),
        ev(60, "map", 0x6000_0000, 0x6000_4000),
        ev(60, "unmap", 0x7000_0000, 0x7000_3000),
    ]
    syscalls = [call(10, "brk"), call(20, "mmap"), call(30, "mprotect"), call(40, "brk"),
                call(50, "brk"),
                call(60, "mremap", (0x7000_0000, 3 * PAGE, 4 * PAGE, 1), ret=0x6000_0000)]
    return HandTrace(regions, syscalls)


def spans(segs):
    return [(s.start, s.end, s.perms, s.fresh_since, s.moved_from) for s in segs]


def test_the_initial_map_holds_the_image(trace):
    assert spans(segments_at(trace, 0)) == [
        (0x400000, 0x401000, "r--", None, None), (0x401000, 0x402000, "r-x", None, None),
        (0x404000, 0x405000, "rw-", None, None)]


def test_events_of_a_step_apply_from_the_next_step(trace):
    assert len(segments_at(trace, 10)) == 3
    assert spans(segments_at(trace, 11))[-1] == (0x405000, 0x407000, "rw-", 10, None)


def test_protect_splits_and_keeps_the_origin(trace):
    mmap = [s for s in segments_at(trace, 31) if s.start >= 0x7000_0000]
    assert spans(mmap) == [(0x7000_0000, 0x7000_1000, "rw-", 20, None),
                           (0x7000_1000, 0x7000_2000, "r--", 20, None),
                           (0x7000_2000, 0x7000_3000, "rw-", 20, None)]


def test_a_heap_that_shrinks_and_grows_again_starts_the_regrown_pages_at_zero(trace):
    heap = [s for s in segments_at(trace, 51) if s.kind == "heap"]
    assert spans(heap) == [(0x405000, 0x406000, "rw-", 10, None),
                           (0x406000, 0x408000, "rw-", 50, None)]


def test_an_mremap_move_points_at_the_old_bytes(trace):
    segs = segments_at(trace, 61)
    moved = [s for s in segs if s.start >= 0x6000_0000]
    assert spans(moved) == [(0x6000_0000, 0x6000_3000, "rw-", 60, 0x7000_0000),
                            (0x6000_3000, 0x6000_4000, "rw-", 60, None)]
    assert moved[0].slice(0x6000_1000, 0x6000_2000).moved_from == 0x7000_1000


def _accesses(rows):
    full = [dict(rip=0x401000, size=8, is_write=False, source="explicit", value=1,
                 value_hi=None, **r) for r in rows]
    table = pa.Table.from_pylist(full, schema=pa.schema(
        [f if f.name != "source" else pa.field("source", pa.string()) for f in ACCESSES]))
    source = pa.DictionaryArray.from_arrays(
        pa.array([SOURCES.index(s) for s in table.column("source").to_pylist()], pa.int8()),
        pa.array(SOURCES))
    return pa.Table.from_arrays([*table.columns[:5], source, *table.columns[6:]],
                                schema=ACCESSES).to_batches()


def test_the_comparing_sink_names_the_first_differing_row_and_column():
    from tracer.replay.verify import _ComparingSink, _Diverged

    recorded = _accesses([dict(step=s, addr=0x1000 + s) for s in range(10)])
    sink = _ComparingSink("accesses", iter(recorded))
    replayed = [dict(step=s, addr=0x1000 + s) for s in range(10)]
    replayed[6]["addr"] = 0x9999
    batches = _accesses(replayed)
    sink.write(batches[0].slice(0, 4))
    with pytest.raises(_Diverged):
        sink.write(batches[0].slice(4))
    d = sink.divergence
    assert d.step == 6 and d.table == "accesses"
    assert "addr recorded 0x1006, replayed 0x9999" in d.what and "row 6" in d.what


def test_the_comparing_sink_reports_rows_the_replay_did_not_make():
    from tracer.replay.verify import _ComparingSink

    recorded = _accesses([dict(step=s, addr=0x1000) for s in range(5)])
    sink = _ComparingSink("accesses", iter(recorded))
    sink.write(_accesses([dict(step=s, addr=0x1000) for s in range(3)])[0])
    sink.check_exhausted()
    assert sink.divergence.step == 3 and "more rows than the replay made" in sink.divergence.what
