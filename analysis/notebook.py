"""`open_trace`: a trace for notebooks and scripts, whose common analyses are methods too:
`t = open_trace("traces/recursion"); t.stack_depth().deepest`.

It sits above the analyses: it imports them (on call, so that opening a trace stays cheap),
and no analysis module imports it; they read the thin `analysis.trace.Trace`, so the
methods close no import circle."""

from __future__ import annotations

from pathlib import Path

from analysis.trace import Trace


class NotebookTrace(Trace):
    """A `Trace` with the analyses a notebook reaches for first as methods; every other
    analysis is a function of its module taking the trace (docs/analysis.md)."""

    def stack_depth(self, **options):
        """`analysis.stack.stack_depth` of this trace."""
        from analysis.stack import stack_depth

        return stack_depth(self, **options)

    def heap_timeline(self):
        """`analysis.heap.heap_timeline` of this trace."""
        from analysis.heap import heap_timeline

        return heap_timeline(self)

    def findings(self):
        """`analysis.findings.findings` of this trace."""
        from analysis.findings import findings

        return findings(self, self.stack_depth(), self.heap_timeline())


def open_trace(path: str | Path) -> NotebookTrace:
    """Opens a trace directory for reading (never writes to it).

    Args:
        path: the trace directory written by `trace record`.

    Returns:
        The trace; its analyses are the functions of the `analysis` modules.

    Raises:
        TraceFormatError: not a vmtrace trace, a newer format, or corrupt.
    """
    return NotebookTrace(path)
