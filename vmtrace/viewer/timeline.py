"""The whole-run documents the page loads once: the timeline strip (stack depth, program
break, markers) and the source listing. Built from the report's own builders, so that the
viewer and the report never disagree."""

from __future__ import annotations


def timeline_document(trace, max_points: int, max_marks: int) -> dict:
    """Stack depth (min/max per bucket), the program break above its start, and markers.

    Every x value is a step in the state convention: an instruction that runs as step s
    shows its effect at step s + 1, and that is where its point is drawn."""
    from analysis.heap import heap_timeline
    from analysis.stack import stack_depth

    depth = stack_depth(trace, max_points=max_points, max_marks=max_marks)
    heap = heap_timeline(trace)
    series = depth.series   # by the step convention already, from a depth-0 row at step 0
    marks = depth.marks
    syscalls = trace.table("syscalls", ["step", "name", "ret"]).to_pylist()[:max_marks]
    end = trace.meta.end
    fault = None
    if end is not None and end.fault is not None:
        fault = {"step": end.fault.step, "signal": end.fault.signal, "cause": end.fault.cause}
    return {
        "steps": trace.instructions,
        "bucket": depth.bucket,
        "depth": {"step": [int(v) for v in series["step"]],
                  "min": [int(v) for v in series["depth_min"]],
                  "max": [int(v) for v in series["depth_max"]]},
        "deepest": None if depth.deepest is None else {
            "depth": depth.deepest.depth, "step": depth.deepest.step,
            "function": depth.deepest.function},
        "brk": {"step": [int(s) + (1 if s else 0) for s in heap.brk["step"]],
                "above_start": [int(e) - heap.initial_brk for e in heap.brk["end"]],
                "initial": heap.initial_brk},
        "calls": [{"step": int(s) + 1, "kind": c, "symbol": sym}
                  for s, c, sym in zip(marks["step"], marks["cause"], marks["symbol"])],
        "calls_total": depth.marks_total,
        "syscalls": [{"step": r["step"], "name": r["name"], "ret": r["ret"]}
                     for r in syscalls],
        "fault": fault,
    }


def source_document(trace) -> dict:
    """The source listing: per line its text and how often it ran, read and wrote."""
    from analysis.listing import listing

    lst = listing(trace)
    rows = lst.lines
    return {
        "file": lst.file,
        "available": lst.source_available,
        "lines": [{"line": int(r.line), "text": r.text, "executed": int(r.executed),
                   "reads": int(r.reads), "writes": int(r.writes)}
                  for r in rows.itertuples()],
    }
