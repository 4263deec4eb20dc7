"""Everything the HTML report shows, built as plain data (tested on its numbers); the
rendering is `analysis.html`."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.allocator import Fragmentation
from analysis.findings import Finding, findings
from analysis.heap import HeapTimeline, heap_timeline
from analysis.heatmap import Heatmaps, heatmaps
from analysis.listing import Listing, listing
from analysis.stack import StackDepth, stack_depth
from analysis.summary import TraceSummary, access_counts_from, summarize
from analysis.trace import Trace
from analysis.vmmap import VmMap, vmmap


@dataclass(frozen=True)
class ReportData:
    summary: TraceSummary
    stack: StackDepth
    heap: HeapTimeline
    heatmaps: Heatmaps
    vmmap: VmMap
    findings: list[Finding]
    listing: Listing
    fragmentation: Fragmentation | None


def build_report(trace: Trace, fragmentation: Fragmentation | None = None) -> ReportData:
    """Runs every analysis of the report over a trace.

    Args:
        trace: an open trace.
        fragmentation: allocator tracking, when the user named an allocator.

    Returns:
        The report's data; each big-table pass is one streamed DuckDB query.
    """
    stack = stack_depth(trace)
    lowest = trace.initial_rsp - (stack.deepest.depth if stack.deepest else 0)
    maps = heatmaps(trace, lowest_rsp=lowest)
    heap = heap_timeline(trace)
    summary = summarize(trace, accesses=access_counts_from(maps.source_counts),
                        stack_depth=stack.deepest.depth if stack.deepest else 0)
    return ReportData(summary=summary, stack=stack, heap=heap, heatmaps=maps,
                      vmmap=vmmap(trace, lowest), findings=findings(trace, stack, heap),
                      listing=listing(trace), fragmentation=fragmentation)
