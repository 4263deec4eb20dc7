"""The assembly source listing with, per line, how often its instructions executed and how
many memory reads and writes they made (DWARF line table + exec_counts + accesses)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.scan import scan_accesses
from analysis.trace import Trace


@dataclass(frozen=True)
class Listing:
    """`lines`: line, text, executed, reads, writes (one row per source line; text is ""
    when the source is unavailable). `file`: the source file the line table names."""

    file: str
    lines: pd.DataFrame
    source_available: bool
    source_note: str | None = None  # why the text is missing or cut


def listed_file(line_table: pd.DataFrame, source_name: str | None) -> str:
    """The file the listing shows: the recorded source's, else the line table's first."""
    files = list(dict.fromkeys(line_table["file"])) if len(line_table) else []
    return next((f for f in files if source_name and f.rsplit("/", 1)[-1] == source_name),
                files[0] if files else "")


def listing_from(line_table: pd.DataFrame, exec_counts: pd.DataFrame, access_counts: pd.DataFrame,
                 source: str | None, source_name: str | None = None,
                 source_note: str | None = None) -> Listing:
    """Joins per-address counts onto source lines.

    Args:
        line_table: addr, file, line (the DWARF line table).
        exec_counts: rip, count.
        access_counts: rip, reads, writes.
        source: the source text, or None.
        source_name: the recorded source's file name: the line table may name other files
            too (musl's start files carry line information), and only this one's lines
            are listed.
        source_note: why the source is missing or cut, if it is.
    """
    file = listed_file(line_table, source_name)
    lt = line_table[line_table["file"] == file].sort_values("addr")
    per_addr = lt[["addr", "line"]].merge(
        exec_counts.rename(columns={"rip": "addr", "count": "executed"}), on="addr", how="left"
    ).merge(access_counts.rename(columns={"rip": "addr"}), on="addr", how="left").fillna(0)
    per_line = per_addr.groupby("line")[["executed", "reads", "writes"]].sum().astype("int64")
    if source is not None:
        texts = source.splitlines()
        frame = pd.DataFrame({"line": range(1, len(texts) + 1), "text": texts})
    else:
        frame = pd.DataFrame({"line": sorted(per_line.index), "text": ""})
    frame = frame.merge(per_line, left_on="line", right_index=True, how="left")
    for col in ("executed", "reads", "writes"):
        frame[col] = frame[col].fillna(0).astype("int64")
    # A line with instructions that never ran shows 0; a line without any shows no count.
    frame["has_code"] = frame["line"].isin(set(per_line.index))
    return Listing(file=file, lines=frame.reset_index(drop=True),
                   source_available=source is not None, source_note=source_note)


MAX_SPAN = 1 << 24  # code spans bigger than this are counted with np.unique instead


class RipCounter:
    """Reads and writes per instruction address, from a stream of access batches.

    Instruction addresses fall in the small range the line table covers, so a bincount
    per batch does it; rows outside that range are counted separately."""

    columns = ("rip", "is_write")

    def __init__(self, trace: Trace):
        addrs = trace.lines.column("addr").to_numpy()
        self.lo = int(addrs.min()) if len(addrs) else 0
        self.span = int(addrs.max()) - self.lo + 16 if len(addrs) else 0
        if self.span > MAX_SPAN:
            self.span = 0
        self.counts = np.zeros(2 * (self.span + 1), np.int64)
        self.other: dict[tuple[int, int], int] = {}

    def update(self, batch) -> None:
        rip = batch.column("rip").to_numpy()
        write = batch.column("is_write").to_numpy(zero_copy_only=False).astype(np.int64)
        off = rip.astype(np.int64) - self.lo
        inside = (off >= 0) & (off < self.span)
        self.counts += np.bincount(np.where(inside, off, self.span) * 2 + write,
                                   minlength=len(self.counts))
        if not inside.all():
            keys, n = np.unique(np.stack([rip[~inside], write[~inside].astype(np.uint64)]),
                                axis=1, return_counts=True)
            for (r, w), c in zip(keys.T.tolist(), n.tolist()):
                self.other[(r, w)] = self.other.get((r, w), 0) + c

    def result(self) -> pd.DataFrame:
        """rip, reads, writes for every instruction that accessed memory."""
        grid = self.counts.reshape(self.span + 1, 2)[:self.span]
        used = np.nonzero(grid.sum(axis=1))[0]
        rows = dict(zip((used + self.lo).tolist(), zip(grid[used, 0].tolist(),
                                                         grid[used, 1].tolist())))
        for (r, w), c in self.other.items():
            reads, writes = rows.get(r, (0, 0))
            rows[r] = (reads + c * (1 - w), writes + c * w)
        return pd.DataFrame([(r, a, b) for r, (a, b) in sorted(rows.items())],
                            columns=["rip", "reads", "writes"])


def listing(trace: Trace, counts: pd.DataFrame | None = None) -> Listing:
    """The source listing of a trace with per-line execution and access counts.

    Args:
        trace: an open trace.
        counts: per-instruction access counts already computed (`RipCounter.result`).
    """
    if counts is None:
        counter = RipCounter(trace)
        scan_accesses(trace, [counter])
        counts = counter.result()
    lines = trace.lines.to_pandas()
    name = trace.meta.program.name
    file = listed_file(lines, name)
    source = trace.source(file or None)
    return listing_from(lines, trace.exec_counts.to_pandas(), counts, source.text, name,
                        source.note)
