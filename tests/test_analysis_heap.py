"""heap_timeline and vmmap on hand-built region/syscall tables, and end to end."""

import pyarrow as pa
import pytest

from analysis import open_trace
from analysis.figures import UNIT_PX, heap_figure, vmmap_figure
from analysis.formatting import human_bytes
from analysis.heap import heap_timeline, heap_timeline_from
from analysis.vmmap import GAP_HEIGHT, MAX_MMAP_SLOTS, height, vmmap_from
from analysis_tables import BRK, STACK_TOP, base_regions
from analysis_tables import recorded
from conftest import EXAMPLES
from tracer.format.schema import TABLES

M = 0x7FFF_F7F0_0000


def _table(name, rows):
    return pa.Table.from_pylist(rows, schema=TABLES[name])


def _regions():
    return _table("regions", base_regions() + [
        {"step": 5, "action": "brk", "start": BRK, "end": BRK + 0x1000, "perms": "rw-",
         "kind": "heap", "name": "[heap]"},
        {"step": 9, "action": "map", "start": M, "end": M + 0x3000, "perms": "rw-",
         "kind": "mmap", "name": ""},
        {"step": 12, "action": "brk", "start": BRK, "end": BRK + 0x3000, "perms": "rw-",
         "kind": "heap", "name": "[heap]"},
        {"step": 20, "action": "unmap", "start": M + 0x1000, "end": M + 0x2000, "perms": "",
         "kind": "mmap", "name": ""},
        {"step": 30, "action": "unmap", "start": M, "end": M + 0x3000, "perms": "",
         "kind": "mmap", "name": ""},
    ])


def _syscalls():
    def call(step, asked, ret):
        return {"step": step, "rip": 0x401000 + step, "nr": 12, "name": "brk",
                "args": [asked, 0, 0, 0, 0, 0], "ret": ret, "detail": None}
    return _table("syscalls", [call(2, 0, BRK), call(5, BRK + 0x1000, BRK + 0x1000),
                               call(12, BRK + 0x3000, BRK + 0x3000),
                               call(15, 1 << 45, BRK + 0x3000)])


def test_break_steps_brk_calls_and_mmap_lifetimes():
    h = heap_timeline_from(_regions(), _syscalls(), BRK, 40)
    assert h.brk.values.tolist() == [[0, BRK], [5, BRK + 0x1000], [12, BRK + 0x3000]]
    assert h.final_brk == BRK + 0x3000
    assert h.brk_calls["moved"].tolist() == [False, True, True, False]
    assert h.brk_calls["requested"].isna().tolist() == [True, False, False, False]
    rows = [(r.start - M, r.end - M, r.first_step,
             None if str(r.last_step) == "<NA>" else r.last_step) for r in h.mmaps.itertuples()]
    # The whole region lives 9-20; the unmap of its middle leaves two pieces, gone at 30.
    assert rows == [(0, 0x3000, 9, 20), (0, 0x1000, 20, 30), (0x2000, 0x3000, 20, 30)]


def test_heap_figure_data():
    fig = heap_figure(heap_timeline_from(_regions(), _syscalls(), BRK, 40))
    brk = fig.data[0]
    # The break is the state's: brk at step 5 has moved it for the state at step 6.
    assert list(brk.x) == [0, 6, 13, 40] and list(brk.y) == [0, 0x1000, 0x3000, 0x3000]
    calls = fig.data[1]
    assert list(calls.x) == [5, 12, 15] and list(calls.marker.symbol) == ["circle", "circle", "x"]
    assert len(fig.data) == 2 + 3  # one box per mmap region
    assert list(fig.layout.xaxis2.range) == [0, 40]


def test_vmmap_layout_heights_gaps_and_lifetimes():
    vm = vmmap_from(_regions(), BRK, STACK_TOP, STACK_TOP - 0x800)
    labels = vm.regions["label"].tolist()
    assert labels == ["prog", ".text", ".data", "heap", f"mmap {M:#x}", "stack"]
    heap = vm.regions.iloc[3]
    assert (heap.start, heap.end, heap.first_step) == (BRK, BRK + 0x3000, 5)
    mm = vm.regions.iloc[4]
    assert (mm.first_step, mm.last_step) == (9, 30)
    assert str(vm.regions.iloc[5].last_step) == "<NA>"
    assert height(4096) == 1 and height(1) == 1 and height(8 << 20) == 1 + 0.5 * 11
    assert vm.gaps["start"].tolist() == [BRK + 0x3000, M + 0x3000]
    assert (vm.gaps["y1"] - vm.gaps["y0"]).tolist() == pytest.approx([GAP_HEIGHT, GAP_HEIGHT])
    legible = vm.regions["y1"] - vm.regions["y0"]
    assert (legible >= 1).all() and legible.iloc[3] == height(0x3000)
    # The to-scale layout: heights proportional to size, the same total height.
    scaled = vm.regions["scale_y1"] - vm.regions["scale_y0"]
    assert (scaled / vm.regions["size"]).tolist() == pytest.approx(
        [scaled.iloc[0] / vm.regions["size"].iloc[0]] * len(scaled))
    assert scaled.sum() == pytest.approx(legible.sum())
    assert vm.stack_used == 0x800
    assert vm.changes["step"].tolist() == [5, 9, 12, 20, 30]
    fig = vmmap_figure(vm)
    assert fig.layout.title.text.startswith("Virtual memory map")
    dashed = [t.name for t in fig.data if t.line.dash == "dash"]
    assert dashed == [f"mmap {M:#x}"]


def test_brk_growth_equals_what_the_program_asked(tmp_path):
    recorded(EXAMPLES / "brk_fixed.asm", tmp_path / "b")
    t = open_trace(tmp_path / "b")
    h = heap_timeline(t)
    start = t.initial_brk
    assert (h.brk["end"] - start).tolist() == [0, 4096, 4 * 4096, 0]
    assert h.brk_calls["moved"].tolist() == [False, True, True, True]
    assert [int(x) - start for x in h.brk_calls["requested"].dropna()] == [4096, 4 * 4096, 0]
    assert h.brk_calls["line"].tolist() == [13, 20, 25, 37]
    fig = heap_figure(h)
    assert "xaxis2" not in fig.layout.to_plotly_json()  # no empty mmap panel
    assert list(fig.data[0].y) == [0, 4096, 4 * 4096, 0, 0]


def test_mmap_regions_appear_and_go(tmp_path):
    recorded(EXAMPLES / "mmap_munmap.asm", tmp_path / "m")
    h = heap_timeline(open_trace(tmp_path / "m"))
    sizes = (h.mmaps["end"] - h.mmaps["start"]).tolist()
    assert sizes == [3 * 4096, 4096, 4096, 65536]
    assert h.mmaps["last_step"].notna().all()  # everything was unmapped before exit


def test_vmmap_folds_many_mmaps_into_one_box():
    rows = base_regions() + [
        {"step": 1 + i, "action": "map", "start": M + i * 0x2000, "end": M + i * 0x2000 + 0x1000,
         "perms": "rw-", "kind": "mmap", "name": ""} for i in range(MAX_MMAP_SLOTS + 1)]
    vm = vmmap_from(_table("regions", rows), BRK, STACK_TOP, STACK_TOP)
    boxes = vm.regions[vm.regions["kind"] == "mmap"]
    assert boxes["label"].tolist() == [f"{MAX_MMAP_SLOTS + 1} mmap regions"]
    assert (boxes.iloc[0].start, boxes.iloc[0].end) == (M, M + MAX_MMAP_SLOTS * 0x2000 + 0x1000)


def test_brk_of_minus_one_beside_brk_of_zero(tmp_path):
    """brk(0) (no request) and brk(-1) in one run: the 64-bit request is kept exactly
    (found by the trace fuzz test: it went through float64 and failed the report)."""
    from analysis import open_trace
    from analysis.heap import heap_timeline
    from analysis_tables import BRK, make_trace

    calls = [{"step": s, "rip": 0x401000, "nr": 12, "name": "brk", "args": [a] + [0] * 5,
              "ret": BRK, "detail": None} for s, a in ((1, 0), (2, (1 << 64) - 1))]
    heap = heap_timeline(open_trace(make_trace(tmp_path / "t", instructions=3,
                                               syscalls=calls)))
    assert heap.brk_calls["requested"].tolist()[1] == (1 << 64) - 1


def test_vmmap_figure_writes_every_region_and_switches_to_scale():
    vm = vmmap_from(_regions(), BRK, STACK_TOP, STACK_TOP - 0x800)
    fig = vmmap_figure(vm)
    texts = [a.text for a in fig.layout.annotations]
    for r in vm.regions.itertuples():  # name and true size written on every region
        assert any(f"<b>{r.label}</b>  {human_bytes(int(r.size))}" in x for x in texts), r.label
    assert any("used: 2.0 KiB" in x for x in texts)  # the stack's used part
    assert sum("unmapped gap" in x for x in texts) == len(vm.gaps)
    used = next(t for t in fig.data if t.name == "stack used")
    stack = vm.regions[vm.regions["kind"] == "stack"].iloc[0]
    assert max(used.y) == stack.y1 and stack.y0 < min(used.y)  # inside, from the top
    # Legible: a unit is at least UNIT_PX tall; one click away, the to-scale layout.
    assert fig.layout.height >= UNIT_PX * vm.regions["y1"].max()
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["legible", "to scale"]
    to_scale = menu.buttons[1].args[0]["y"]
    assert len(to_scale) == len(fig.data)
    assert max(to_scale[0]) == pytest.approx(vm.regions.iloc[0].scale_y1)
