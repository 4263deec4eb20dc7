"""The assembly source listing with, per line, how often its instructions executed and how
many memory reads and writes they made (DWARF line table + exec_counts + accesses)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.trace import Trace


@dataclass(frozen=True)
class Listing:
    """`lines`: line, text, executed, reads, writes (one row per source line; text is ""
    when the source is unavailable). `file`: the source file the line table names."""

    file: str
    lines: pd.DataFrame
    source_available: bool


def listing_from(line_table: pd.DataFrame, exec_counts: pd.DataFrame, access_counts: pd.DataFrame,
                 source: str | None) -> Listing:
    """Joins per-address counts onto source lines.

    Args:
        line_table: addr, file, line (the DWARF line table).
        exec_counts: rip, count.
        access_counts: rip, reads, writes.
        source: the source text, or None.
    """
    file = line_table["file"].iloc[0] if len(line_table) else ""
    lt = line_table.sort_values("addr")
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
                   source_available=source is not None)


MAX_SPAN = 1 << 24  # code spans bigger than this are counted by DuckDB instead


def access_counts_by_rip(trace: Trace) -> pd.DataFrame:
    """Reads and writes per instruction address: rip, reads, writes.

    Instruction addresses fall in the small range the line table covers, so a bincount
    per batch does it in one fast pass; anything outside is counted by DuckDB.
    """
    addrs = trace.lines.column("addr").to_numpy()
    if not len(addrs) or int(addrs.max()) - int(addrs.min()) + 16 > MAX_SPAN:
        return trace.sql("""
            SELECT rip, count(*) FILTER (WHERE NOT is_write) AS reads,
                   count(*) FILTER (WHERE is_write) AS writes FROM accesses GROUP BY rip""",
                         {"accesses": ["rip", "is_write"]}).to_pandas()
    lo, span = int(addrs.min()), int(addrs.max()) - int(addrs.min()) + 16
    counts = np.zeros(2 * (span + 1), np.int64)
    for batch in trace.reader("accesses", ["rip", "is_write"]):
        rip = batch.column("rip").to_numpy().astype(np.int64) - lo
        rip = np.where((rip >= 0) & (rip < span), rip, span)  # `span`: outside the code
        write = batch.column("is_write").to_numpy(zero_copy_only=False).astype(np.int64)
        counts += np.bincount(rip * 2 + write, minlength=len(counts))
    grid = counts.reshape(span + 1, 2)[:span]
    used = np.nonzero(grid.sum(axis=1))[0]
    return pd.DataFrame({"rip": used + lo, "reads": grid[used, 0], "writes": grid[used, 1]})


def listing(trace: Trace) -> Listing:
    """The source listing of a trace with per-line execution and access counts."""
    return listing_from(trace.lines.to_pandas(), trace.exec_counts.to_pandas(),
                        access_counts_by_rip(trace), trace.source_text())
