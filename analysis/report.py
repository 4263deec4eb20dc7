"""Everything the HTML report shows, built as plain data (tested on its numbers); the
rendering is `analysis.html`."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.allocator import Fragmentation
from analysis.findings import Finding, FindingKind, FindingScanners
from analysis.heap import HeapTimeline, heap_timeline
from analysis.heap_check import HeapChecker, HeapError, as_findings
from analysis.heatmap import HeatmapBuilder, Heatmaps
from analysis.libc_heap import LibcHeap
from analysis.listing import Listing, RipCounter, listing
from analysis.scan import scan_accesses
from analysis.stack import StackDepth, stack_depth
from analysis.summary import TraceSummary, access_counts_from, summarize
from analysis.symbols import Symbolizer
from analysis.trace import Trace
from analysis.vmmap import VmMap, vmmap


@dataclass(frozen=True)
class ReportData:
    summary: TraceSummary
    stack: StackDepth
    heap: HeapTimeline
    heatmaps: Heatmaps | None     # None: built with views=False (as vmmap and listing)
    vmmap: VmMap | None
    findings: list[Finding]
    listing: Listing | None
    fragmentation: Fragmentation | None
    libc_heap: LibcHeap | None = None        # --allocator auto: the C library's blocks
    heap_errors: list[HeapError] | None = None


# Findings made for hand-written assembly that say nothing about a C program's own code
# when they come from inside its C library (leaf functions use the red zone, start-up reads
# its fresh TLS block), or at all (exit() leaves main's frame on the stack).
_ASM_ONLY = {FindingKind.WRITE_BELOW_RSP, FindingKind.READ_NEVER_WRITTEN,
             FindingKind.MISALIGNED_CALL}


def _for_c(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind is not FindingKind.UNBALANCED_STACK
            and not (f.kind in _ASM_ONLY and f.line is None)]


def build_report(trace: Trace, fragmentation: Fragmentation | None = None,
                 libc_heap: LibcHeap | None = None, views: bool = True) -> ReportData:
    """Runs every analysis of the report over a trace.

    Args:
        trace: an open trace.
        fragmentation: allocator tracking, when the user named an allocator.
        libc_heap: the C library's allocations (`--allocator auto`): its heap errors join
            the findings.
        views: False skips what only the page shows (heatmaps, memory map, listing: those
            fields are then None), for a caller that needs the numbers and findings only
            (`trace batch --no-reports`).

    Returns:
        The report's data: two passes over the rsp table, one over accesses.
    """
    stack = stack_depth(trace)
    lowest = trace.initial_rsp - (stack.deepest.depth if stack.deepest else 0)
    heap = heap_timeline(trace)
    # One pass over the accesses table feeds the heatmaps, the per-line counts and the
    # findings that look at accesses.
    heat = HeatmapBuilder(trace, lowest_rsp=lowest) if views else None
    rips = RipCounter(trace) if views else None
    scanners = FindingScanners(trace, heap)
    checker = None if libc_heap is None else HeapChecker(
        libc_heap, Symbolizer(trace.symbols, trace.lines))
    scan_accesses(trace, [c for c in (heat, rips, *scanners.consumers, checker)
                          if c is not None])
    maps = heat.result() if heat is not None else None
    counts = access_counts_from(maps.source_counts) if maps is not None else None
    summary = summarize(trace, accesses=counts,
                        stack_depth=stack.deepest.depth if stack.deepest else 0)
    found = scanners.findings(stack)
    if trace.meta.program.kind == "c":
        found = _for_c(found)
    errors = checker.result(trace) if checker is not None else None
    if checker is not None:
        # The heap checker knows the blocks (calloc's are zero by definition, the space
        # between blocks is the allocator's): the word-level heap reads check is replaced.
        found = [f for f in found if not (f.kind is FindingKind.READ_NEVER_WRITTEN
                                          and "of heap memory" in f.message)]
    if errors:
        found = sorted([*found, *as_findings(errors)],
                       key=lambda f: (f.step is None, f.step or 0))
    return ReportData(summary=summary, stack=stack, heap=heap, heatmaps=maps,
                      vmmap=vmmap(trace, lowest) if views else None, findings=found,
                      listing=listing(trace, rips.result()) if rips else None,
                      fragmentation=fragmentation, libc_heap=libc_heap, heap_errors=errors)
