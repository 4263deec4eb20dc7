"""Allocator tracking: fragmentation on literal events, and the allocator example end to
end (register values from re-running it), both checked against numbers worked by hand."""

import pytest

from analysis import open_trace
from analysis.allocator import AllocEvent, AllocatorSpec, CallKind, allocator_events, fragmentation
from analysis.errors import AllocatorSpecError
from analysis.figures import fragmentation_figure
from analysis_tables import recorded
from conftest import EXAMPLES, trace_cli

A, F = CallKind.ALLOC, CallKind.FREE
H = 0x10000

# alloc 32, 64, 32, 32 (A B C D back to back), free A, free C, alloc 16 (first fit into
# A's hole), alloc 48 (fits no hole: bumped to H+160).
EVENTS = [AllocEvent(1, A, H, 32), AllocEvent(2, A, H + 32, 64), AllocEvent(3, A, H + 96, 32),
          AllocEvent(4, A, H + 128, 32), AllocEvent(5, F, H, 0), AllocEvent(6, F, H + 96, 0),
          AllocEvent(7, A, H, 16), AllocEvent(8, A, H + 160, 48)]
# step: live bytes, heap bytes, free bytes, holes, largest hole, external fragmentation
BY_HAND = [(1, 32, 32, 0, 0, 0, 0.0), (2, 96, 96, 0, 0, 0, 0.0), (3, 128, 128, 0, 0, 0, 0.0),
           (4, 160, 160, 0, 0, 0, 0.0),
           (5, 128, 160, 32, 1, 32, 0.0),          # hole [0,32)
           (6, 96, 160, 64, 2, 32, 0.5),           # holes [0,32) [96,128): 1 - 32/64
           (7, 112, 160, 48, 2, 32, 1 - 32 / 48),  # holes [16,32) [96,128)
           (8, 160, 208, 48, 2, 32, 1 - 32 / 48)]
COLUMNS = ["step", "live_bytes", "heap_bytes", "free_bytes", "holes", "largest_hole",
           "external_fragmentation"]


def _check(frag, base):
    rows = [tuple(r) for r in frag.timeline[COLUMNS].itertuples(index=False)]
    for got, want in zip(rows, BY_HAND, strict=True):
        assert got[1:6] == want[1:6]
        assert got[6] == pytest.approx(want[6])
    assert (frag.final_holes - base).values.tolist() == [[16, 32], [96, 128]]


def test_fragmentation_metrics_by_hand():
    frag = fragmentation(EVENTS, H)
    _check(frag, H)
    assert frag.blocks["free_step"].isna().tolist() == [False, True, False, True, True, True]
    assert frag.problems == []


def test_double_free_is_reported_not_counted():
    frag = fragmentation([AllocEvent(1, A, H, 16), AllocEvent(2, F, H, 0),
                          AllocEvent(3, F, H, 0)], H)
    assert len(frag.timeline) == 2
    assert "not a live block" in frag.problems[0]


def test_spec_parsing():
    assert AllocatorSpec.parse("alloc=my_malloc, free=my_free") == \
        AllocatorSpec("my_malloc", "my_free")
    for bad in ("alloc=x", "malloc=x,free=y", "alloc=,free=y", "x"):
        with pytest.raises(AllocatorSpecError):
            AllocatorSpec.parse(bad)


def test_allocator_example_end_to_end(tmp_path):
    from timetravel.probe import emulator_probe

    recorded(EXAMPLES / "allocator.asm", tmp_path / "a")
    t = open_trace(tmp_path / "a")
    events = allocator_events(t, AllocatorSpec("alloc", "free"), emulator_probe(t))
    assert [(e.kind, e.ptr - t.initial_brk, e.size) for e in events] == [
        (A, 0, 32), (A, 32, 64), (A, 96, 32), (A, 128, 32), (F, 0, 0), (F, 96, 0),
        (A, 0, 16), (A, 160, 48)]
    frag = fragmentation(events, t.initial_brk)
    _check(frag, t.initial_brk)
    fig = fragmentation_figure(frag, t.instructions)
    assert len(fig.data) == 6 + 3  # six blocks, three metric lines
    assert list(fig.data[-1].y)[-1] == pytest.approx(1 - 32 / 48)


def test_report_with_allocator_and_unknown_symbol(tmp_path):
    recorded(EXAMPLES / "allocator.asm", tmp_path / "a")
    out = tmp_path / "r.html"
    trace_cli("report", str(tmp_path / "a"), "-o", str(out), "--allocator", "alloc=alloc,free=free")
    assert "external fragmentation" in out.read_text()
    done = trace_cli("report", str(tmp_path / "a"), "--allocator", "alloc=nope,free=free",
                     check=False)
    assert done.returncode == 2
    assert done.stderr.decode().count("error:") == 1
    assert "no symbol 'nope'" in done.stderr.decode()
