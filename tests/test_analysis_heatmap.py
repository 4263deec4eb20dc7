"""heatmaps, segment totals and the source listing on hand-built tables."""

import pandas as pd
import pytest

from analysis import open_trace
import numpy as np

from analysis.figures import MAX_CELLS, MAX_PANELS, heatmap_figure
from analysis.heatmap import CACHE_LINE, PAGE, build_heatmaps, granularity, heatmaps
from analysis.segments import Segment
from analysis.listing import listing_from
from analysis_tables import INITIAL_RSP as IR
from analysis_tables import access, make_trace

D = 0x402000


def _trace(tmp_path):
    symbols = [{"name": "buf", "addr": D, "size": 8, "type": "object", "section": ".data"}]
    return open_trace(make_trace(tmp_path / "t", instructions=10, symbols=symbols, accesses=[
        access(0, D), access(3, D + 0x40, write=True), access(5, D + 8, 64, source="kernel"),
        access(1, IR - 8, write=True, source="implicit"), access(2, IR - 8, source="implicit"),
        access(9, 0x10)]))


def test_granularity_chooses_lines_then_pages():
    assert granularity(4096) == CACHE_LINE
    assert granularity(64 * 128 + 1) == PAGE
    assert granularity(PAGE * 128) == PAGE
    assert granularity(PAGE * 129) == 2 * PAGE


def test_cells_and_totals(tmp_path):
    h = heatmaps(_trace(tmp_path), lowest_rsp=IR - 8, max_cols=5)
    assert h.steps_per_col == 2
    by_label = {m.segment.label: m for m in h.maps}
    data = by_label[".data"]
    assert (data.base, data.granularity, data.rows) == (D, 64, 64)
    assert data.cells.values.tolist() == [[0, 0, 1, 0], [0, 2, 1, 0], [1, 1, 0, 1]]
    assert data.row_symbols == {0: "buf", 1: "buf+0x40"}
    stack = by_label["stack"]
    # The stack rows start a page below the deepest RSP's page (minus the red zone).
    assert (stack.base, stack.granularity, stack.rows) == (IR - 0x2000, PAGE, 3)
    assert stack.cells.values.tolist() == [[1, 0, 0, 1], [1, 1, 1, 0]]
    totals = h.totals.set_index("segment")
    assert totals.loc[".data", ["reads", "writes", "explicit", "implicit", "kernel"]].tolist() \
        == [2, 1, 2, 0, 1]
    assert totals.loc["stack", ["reads", "writes", "implicit"]].tolist() == [1, 1, 2]
    assert totals.loc["unmapped", "reads"] == 1
    counts = {(c["source"], c["is_write"]): c["n"] for c in h.source_counts}
    assert counts[("explicit", False)] == 2 and counts[("implicit", True)] == 1


def test_heatmap_figure_one_panel_per_segment(tmp_path):
    fig = heatmap_figure(heatmaps(_trace(tmp_path), lowest_rsp=IR - 8, max_cols=5))
    assert [t.type for t in fig.data] == ["heatmap"] * 6  # reads + writes, reads, writes
    assert [t.visible for t in fig.data] == [True, False, False] * 2
    data = fig.data[0]
    assert list(data.x) == [0, 2, 4, 6, 8]
    assert data.z[0][0] == 0 and data.z[1][1] == 0  # log10 of 1 access
    assert list(data.y) == [f"{D:#x} buf", f"{D + 64:#x} buf+0x40"]
    assert fig.layout.annotations[0].text.startswith(".data (64-byte rows)")


def test_listing_counts_per_line():
    lines = pd.DataFrame({"addr": [0x10, 0x15, 0x18, 0x20], "file": "p.asm",
                          "line": [2, 3, 3, 5]})
    execs = pd.DataFrame({"rip": [0x10, 0x15, 0x18], "count": [1, 4, 4]})
    acc = pd.DataFrame({"rip": [0x15, 0x18], "reads": [4, 0], "writes": [0, 4]})
    lst = listing_from(lines, execs, acc, "a\nb\nc\nd\ne\n")
    rows = lst.lines[["line", "text", "executed", "reads", "writes", "has_code"]]
    assert rows.values.tolist() == [[1, "a", 0, 0, 0, False], [2, "b", 1, 0, 0, True],
                                    [3, "c", 8, 4, 4, True], [4, "d", 0, 0, 0, False],
                                    [5, "e", 0, 0, 0, True]]
    assert listing_from(lines, execs, acc, None).lines["line"].tolist() == [2, 3, 5]


def test_heatmap_figure_stays_small_for_many_busy_segments():
    base = 0x10_0000_0000
    segs = [Segment(i, "mmap", "", base + i * (1 << 20), base + (i + 1) * (1 << 20))
            for i in range(20)]
    layout = [{"base": s.start, "gran": PAGE, "nrows": 256} for s in segs]
    rows, cols = np.meshgrid(np.arange(256), np.arange(160))
    cells = pd.concat([pd.DataFrame({"seg": s.id, "row": rows.ravel(), "col": cols.ravel(),
                                     "source": "explicit", "reads": 1 + s.id, "writes": 1})
                       for s in segs])
    fig = heatmap_figure(build_heatmaps(cells, segs, layout, 1000, 160))
    assert len(fig.data) == 3 * MAX_PANELS
    assert [t.name for t in fig.data][0] == "mmap 0x1000c00000"  # the busiest ones
    assert sum(len(t.y) * len(t.x) for t in fig.data if t.visible) <= MAX_CELLS
    assert len(fig.to_json()) < 1_500_000
    assert "12 quieter segments" in fig.layout.title.text


def test_a_stack_segment_below_the_lowest_rsp_draws_no_rows():
    """A forged map can call a region below RSP the stack (found by the trace fuzz test):
    its extent is empty, not negative."""
    from analysis.heatmap import _extent

    lo, hi = _extent(Segment(0, "stack", "[stack]", 0x401000, 0x402000), 0x7FFF_FFFF_E000)
    assert lo == hi == 0x402000


def test_heatmap_panels_share_one_correct_scale_and_offer_reads_or_writes():
    """Issue 15 item 5: one colour bar for every panel, reading the real counts, and
    buttons for reads, writes or both."""
    base = 0x10_0000_0000
    segs = [Segment(i, "mmap", "", base + i * (1 << 20), base + (i + 1) * (1 << 20))
            for i in range(2)]
    layout = [{"base": s.start, "gran": PAGE, "nrows": 4} for s in segs]
    cells = pd.DataFrame({"seg": [0, 0, 1], "row": [0, 1, 0], "col": [0, 1, 0],
                          "source": "explicit", "reads": [1, 8, 900], "writes": [0, 0, 100]})
    fig = heatmap_figure(build_heatmaps(cells, segs, layout, 10, 2))
    assert {t.coloraxis for t in fig.data} == {"coloraxis"}  # one shared scale
    axis = fig.layout.coloraxis
    assert axis.cmin == 0 and axis.cmax == pytest.approx(3.0)  # log10 of 1,000
    assert list(axis.colorbar.ticktext) == ["1", "10", "100", "1,000"]
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["reads + writes", "reads", "writes"]
    assert menu.buttons[2].args[0]["visible"] == [False, False, True] * 2
    writes = [t for t in fig.data if "writes %{customdata}" in t.hovertemplate]
    assert np.isnan(writes[0].z).all() and writes[1].z[0][0] == pytest.approx(2.0)
    assert menu.buttons[1].args[1]["coloraxis.cmax"] == pytest.approx(np.log10(900))
