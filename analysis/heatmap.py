"""Per-segment access heatmaps (address bucket x time bucket, reads and writes) and the
per-segment totals table, from one DuckDB pass over the streamed accesses table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.scan import scan_accesses
from analysis.segments import Segment, segments
from analysis.symbols import Symbolizer
from analysis.trace import Trace
from tracer.format.regions import PAGE
from tracer.format.schema import SOURCES

CACHE_LINE = 64
MAX_ROWS = 128
MAX_COLS = 160
MAX_BINS = 4_000_000


@dataclass(frozen=True)
class SegmentHeatmap:
    """`cells`: row, col, reads, writes (only non-empty cells). Row r covers addresses
    `[base + r*granularity, base + (r+1)*granularity)`; column c covers steps
    `[c*steps_per_col, (c+1)*steps_per_col)`."""

    segment: Segment
    base: int
    granularity: int
    rows: int
    cells: pd.DataFrame
    row_symbols: dict[int, str]  # row -> the symbol at its start (data segments only)


@dataclass(frozen=True)
class Heatmaps:
    """`totals`: segment, kind, start, end, reads, writes, explicit, implicit, kernel
    (one row per segment that was accessed, plus `unmapped` if any access fell outside)."""

    maps: list[SegmentHeatmap]
    totals: pd.DataFrame
    source_counts: list[dict]  # source, is_write, n: the whole trace's counts
    steps_per_col: int
    cols: int


def granularity(extent: int, max_rows: int = MAX_ROWS) -> int:
    """Cache lines when they fit in `max_rows`, else pages, else a power-of-two multiple
    of pages: the row size for a segment spanning `extent` bytes."""
    if extent <= CACHE_LINE * max_rows:
        return CACHE_LINE
    gran = PAGE
    while extent > gran * max_rows:
        gran *= 2
    return gran


def _extent(seg: Segment, lowest_rsp: int | None) -> tuple[int, int]:
    if seg.kind == "stack" and lowest_rsp is not None:
        # The 8 MiB reservation is mostly untouched: show from a page below the deepest RSP.
        lo = max(seg.start, ((lowest_rsp - 128) & ~(PAGE - 1)) - PAGE)
        return min(lo, seg.end), seg.end  # (an RSP above the stack region: nothing shown)
    return seg.start, seg.end


class HeatmapBuilder:
    """Plans the rows and columns of every segment, counts a stream of access batches into
    (row, column, source, is_write) bins with numpy's bincount, and builds the heatmaps.

    A DuckDB GROUP BY over 80 M rows is several times slower, and the bins are few."""

    columns = ("step", "addr", "is_write", "source")

    def __init__(self, trace: Trace, lowest_rsp: int | None = None, max_rows: int = MAX_ROWS,
                 max_cols: int = MAX_COLS):
        segs = self.segs = segments(trace)
        self.symbolizer = Symbolizer(trace.symbols, trace.lines)
        # The grid is rows x columns x 6 int64 bins: keep it under MAX_BINS even for
        # programs with thousands of mmap regions (fewer rows per segment, then columns).
        max_rows = max(1, min(max_rows, MAX_BINS // (6 * 8 * max(len(segs), 1))))
        layout = self.layout = []
        for seg in segs:
            lo, hi = _extent(seg, lowest_rsp)
            gran = granularity(hi - lo, max_rows)
            layout.append({"seg": seg.id, "base": lo, "gran": gran,
                           "nrows": -(-(hi - lo) // gran)})
        total_rows = sum(info["nrows"] for info in layout) + 1
        max_cols = max(1, min(max_cols, MAX_BINS // (6 * total_rows)))
        steps = max(trace.instructions, 1)
        self.steps_per_col = max(1, -(-steps // max_cols))
        self.cols = -(-steps // self.steps_per_col)
        self.order = sorted(range(len(segs)), key=lambda i: segs[i].start)
        self.starts = np.array([segs[i].start for i in self.order], np.uint64)
        self.ends = np.array([segs[i].end for i in self.order], np.uint64)
        self.bases = np.array([layout[i]["base"] for i in self.order], np.uint64)
        self.grans = np.array([layout[i]["gran"] for i in self.order], np.uint64)
        self.nrows = np.array([layout[i]["nrows"] for i in self.order], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.nrows)])[:-1].astype(np.int64)
        self.outside = int(self.nrows.sum())  # one extra row: outside every segment
        self.counts = np.zeros((self.outside + 1) * self.cols * len(SOURCES) * 2, np.int64)

    def update(self, batch) -> None:
        addr = batch.column("addr").to_numpy()
        if not len(addr):
            return
        if len(self.starts):
            idx = np.searchsorted(self.starts, addr, side="right").astype(np.int64) - 1
            safe = np.maximum(idx, 0)
            inside = (idx >= 0) & (addr < self.ends[safe])
            low = np.maximum(addr, self.bases[safe]) - self.bases[safe]  # under base: row 0
            row = np.minimum((low // self.grans[safe]).astype(np.int64), self.nrows[safe] - 1)
            key = np.where(inside, self.offsets[safe] + row, self.outside)
        else:
            key = np.full(len(addr), self.outside, np.int64)
        col = np.minimum(batch.column("step").to_numpy() // np.uint64(self.steps_per_col),
                         np.uint64(self.cols - 1)).astype(np.int64)
        source = batch.column("source")
        local = np.array([SOURCES.index(n) for n in source.dictionary.to_pylist()], np.int64)
        src = local[source.indices.to_numpy(zero_copy_only=False).astype(np.int64)]
        write = batch.column("is_write").to_numpy(zero_copy_only=False).astype(np.int64)
        flat = ((key * self.cols + col) * len(SOURCES) + src) * 2 + write
        self.counts += np.bincount(flat, minlength=len(self.counts))

    def cells(self) -> pd.DataFrame:
        """seg (NA outside every segment), row, col, source, reads, writes."""
        grid = self.counts.reshape(self.outside + 1, self.cols, len(SOURCES), 2)
        key_i, col_i, src_i = np.nonzero(grid.sum(axis=3))
        seg_of_key = np.full(self.outside + 1, -1, np.int64)
        row_of_key = np.zeros(self.outside + 1, np.int64)
        for pos, i in enumerate(self.order):
            span = slice(self.offsets[pos], self.offsets[pos] + self.nrows[pos])
            seg_of_key[span] = self.segs[i].id
            row_of_key[span] = np.arange(self.nrows[pos])
        seg = pd.array(seg_of_key[key_i], dtype="Int64")
        seg[seg_of_key[key_i] < 0] = pd.NA
        return pd.DataFrame({
            "seg": seg, "row": row_of_key[key_i], "col": col_i,
            "source": [SOURCES[k] for k in src_i],
            "reads": grid[key_i, col_i, src_i, 0], "writes": grid[key_i, col_i, src_i, 1]})

    def result(self) -> Heatmaps:
        return build_heatmaps(self.cells(), self.segs, self.layout, self.steps_per_col,
                              self.cols, self.symbolizer)


def heatmaps(trace: Trace, lowest_rsp: int | None = None, max_rows: int = MAX_ROWS,
             max_cols: int = MAX_COLS) -> Heatmaps:
    """Counts reads and writes per segment, address bucket and time bucket.

    Args:
        trace: an open trace.
        lowest_rsp: the deepest RSP of the run (narrows the stack's rows); None = whole stack.
        max_rows: at most this many address rows per segment.
        max_cols: at most this many time columns.

    Returns:
        One heatmap per accessed segment and the totals table.
    """
    builder = HeatmapBuilder(trace, lowest_rsp, max_rows, max_cols)
    scan_accesses(trace, [builder])
    return builder.result()


def build_heatmaps(cells: pd.DataFrame, segs: list[Segment], layout: list[dict],
                   steps_per_col: int, cols: int,
                   symbolizer: Symbolizer | None = None) -> Heatmaps:
    """Turns the aggregated cells (seg, row, col, source, reads, writes) into heatmaps."""
    maps: list[SegmentHeatmap] = []
    totals: list[dict] = []
    for seg, info in zip(segs, layout):
        part = cells[cells["seg"] == seg.id]
        if part.empty:
            continue
        grid = (part.groupby(["row", "col"], as_index=False)[["reads", "writes"]].sum()
                .astype("int64"))
        names = {}
        if symbolizer is not None and seg.kind not in ("stack", "heap", "mmap"):
            for row in sorted(set(grid["row"].tolist())):
                names[row] = symbolizer.describe(info["base"] + row * info["gran"])
        maps.append(SegmentHeatmap(seg, info["base"], info["gran"], int(info["nrows"]), grid,
                                   names))
        totals.append(_total_row(seg.label, seg.kind, seg.start, seg.end, part))
    outside = cells[cells["seg"].isna()]
    if not outside.empty:
        totals.append(_total_row("unmapped", "none", None, None, outside))
    columns = ["segment", "kind", "start", "end", "reads", "writes", "explicit", "implicit",
               "kernel"]
    counts = []
    for src, part in cells.groupby("source"):
        counts.append({"source": src, "is_write": False, "n": int(part["reads"].sum())})
        counts.append({"source": src, "is_write": True, "n": int(part["writes"].sum())})
    return Heatmaps(maps, pd.DataFrame(totals, columns=columns), counts, steps_per_col, cols)


def _total_row(label: str, kind: str, start: int | None, end: int | None,
               part: pd.DataFrame) -> dict:
    by_source = (part["reads"] + part["writes"]).groupby(part["source"]).sum()
    return {"segment": label, "kind": kind, "start": start, "end": end,
            "reads": int(part["reads"].sum()), "writes": int(part["writes"].sum()),
            **{src: int(by_source.get(src, 0)) for src in ("explicit", "implicit", "kernel")}}
