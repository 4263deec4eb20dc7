"""Everything the HTML report shows, built as plain data (tested on its numbers); the
rendering is `analysis.html`."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.allocator import Fragmentation
from analysis.findings import Finding, FindingScanners
from analysis.heap import HeapTimeline, heap_timeline
from analysis.heatmap import HeatmapBuilder, Heatmaps
from analysis.listing import Listing, RipCounter, listing
from analysis.scan import scan_accesses
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
        The report's data: two passes over the rsp table, one over accesses.
    """
    stack = stack_depth(trace)
    lowest = trace.initial_rsp - (stack.deepest.depth if stack.deepest else 0)
    heap = heap_timeline(trace)
    # One pass over the accesses table feeds the heatmaps, the per-line counts and the
    # findings that look at accesses.
    heat = HeatmapBuilder(trace, lowest_rsp=lowest)
    rips = RipCounter(trace)
    scanners = FindingScanners(trace, heap)
    scan_accesses(trace, [heat, rips, *scanners.consumers])
    maps = heat.result()
    summary = summarize(trace, accesses=access_counts_from(maps.source_counts),
                        stack_depth=stack.deepest.depth if stack.deepest else 0)
    return ReportData(summary=summary, stack=stack, heap=heap, heatmaps=maps,
                      vmmap=vmmap(trace, lowest), findings=scanners.findings(stack),
                      listing=listing(trace, rips.result()), fragmentation=fragmentation)
