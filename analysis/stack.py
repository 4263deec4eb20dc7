"""Stack-depth timeline: bytes below the initial RSP against step, downsampled with the
extremes of each bucket kept, plus call/ret marks and where the deepest point was."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.code import MemoryImage
from analysis.symbols import Symbolizer
from analysis.trace import Trace

MAX_POINTS = 4000
MAX_MARKS = 2000


@dataclass(frozen=True)
class DeepestPoint:
    """The deepest the stack went. `step` follows the step convention (docs/replay.md):
    `trace stack TRACE step` shows this depth; the instruction that reached it ran at step
    `step - 1`, at `rip` (its `line`, in `function`)."""

    depth: int
    step: int
    rip: int
    line: int | None
    function: str


@dataclass(frozen=True)
class StackDepth:
    """`series`: step, depth_min, depth_max (one row per bucket; equal when exact), by the
    step convention: the depth in the state at `step`, i.e. after instruction `step - 1`.
    `marks`: step (of the call/ret instruction), rip, cause (call/ret), depth (after it),
    symbol (callee for calls), line.
    `marks_total`: how many call/ret there were (marks keeps at most MAX_MARKS)."""

    series: pd.DataFrame
    marks: pd.DataFrame
    marks_total: int
    deepest: DeepestPoint | None
    final_depth: int
    bucket: int
    instructions: int


def stack_depth(trace: Trace, max_points: int = MAX_POINTS,
                max_marks: int = MAX_MARKS) -> StackDepth:
    """Builds the stack-depth timeline of a trace.

    Args:
        trace: an open trace.
        max_points: at most this many time buckets (each keeps its min and max depth).
        max_marks: at most this many call/ret marks.

    Returns:
        The timeline; depth is `initial RSP - RSP` in bytes (positive = deeper).
    """
    ir = trace.initial_rsp
    total = max(trace.instructions, 1)
    bucket = max(1, -(-total // max_points))
    # Clamped: a program may set RSP to anything, and 2^64-1 is 2^64 below the start.
    depth = (f"greatest(least({ir}::HUGEINT - new::HUGEINT, {(1 << 63) - 1}), "
             f"{-(1 << 63)})::BIGINT")
    series = trace.sql(f"""
        SELECT min(step) AS step, min({depth}) AS depth_min, max({depth}) AS depth_max,
               arg_max(step, {depth}) AS deep_step, arg_max(rip, {depth}) AS deep_rip,
               arg_max({depth}, step) AS last_depth
        FROM rsp GROUP BY step // {bucket} ORDER BY 1""",
                       {"rsp": ["step", "rip", "new"]}).to_pandas()
    marks = trace.sql(f"""
        SELECT step, rip, cause::VARCHAR AS cause, {depth} AS depth FROM rsp
        WHERE cause IN ('call', 'ret') ORDER BY step LIMIT {max_marks + 1}""",
                      {"rsp": ["step", "rip", "new", "cause"]}).to_pandas()
    marks_total = len(marks)
    if marks_total > max_marks:
        marks_total = int(trace.sql("SELECT count(*) AS n FROM rsp WHERE cause IN ('call','ret')",
                                    {"rsp": ["cause"]}).column("n")[0].as_py())
        marks = marks.iloc[:max_marks]
    return build_stack_depth(series, marks, marks_total, trace, bucket)


def build_stack_depth(series: pd.DataFrame, marks: pd.DataFrame, marks_total: int,
                      trace: Trace, bucket: int) -> StackDepth:
    """Annotates the aggregated rows with symbols and lines (separate for testing)."""
    sym = Symbolizer(trace.symbols, trace.lines)
    image = MemoryImage(trace.memory_image)
    deepest = None
    if len(series) and series["depth_max"].max() > 0:
        row = series.loc[series["depth_max"].idxmax()]
        rip = int(row["deep_rip"])
        deepest = DeepestPoint(int(row["depth_max"]), int(row["deep_step"]) + 1, rip,
                               sym.line_no(rip), sym.function_at(rip))
    final_depth = int(series["last_depth"].iloc[-1]) if len(series) else 0
    names, lines = [], []
    for rip, cause in zip(marks["rip"], marks["cause"]):
        target = image.call_target(int(rip)) if cause == "call" else None
        if cause == "call":
            names.append(sym.describe(target) if target is not None else "(indirect call)")
        else:
            names.append(sym.function_at(int(rip)))
        lines.append(sym.line_no(int(rip)))
    marks = marks.assign(symbol=names, line=pd.array(lines, dtype="Int64"))
    # An RSP change at step s is seen in the state at step s + 1: the series is indexed by
    # the step you would pass to `trace stack`.
    body = series[["step", "depth_min", "depth_max"]].astype("int64")
    body = body.assign(step=body["step"] + 1)
    if not len(body) or body["step"].iloc[0] > 0:
        # Before the first RSP change the depth is 0: the line starts at step 0.
        head = pd.DataFrame({"step": [0], "depth_min": [0], "depth_max": [0]}, dtype="int64")
        body = pd.concat([head, body], ignore_index=True)
    series = body.reset_index(drop=True)
    return StackDepth(series=series, marks=marks, marks_total=marks_total, deepest=deepest,
                      final_depth=final_depth, bucket=bucket,
                      instructions=trace.instructions)
