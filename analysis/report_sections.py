"""The report's sections, one function each: `(page, data)` adds that section's HTML and
charts to the page. Everything from the trace is escaped here: program output, symbol
names and source text are untrusted."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from analysis import figures
from analysis.formatting import human_bytes
from analysis.html_page import Page, table
from analysis.report import ReportData
from analysis.syscall_args import describe_args, describe_ret

MAX_SYSCALL_ROWS = 500
MAX_CHANGE_ROWS = 300
MAX_OUTPUT_CHARS = 20_000
MAX_BLOCK_ROWS = 500

_NAV = (("summary", "summary"), ("findings", "findings"), ("vmmap", "memory map"),
        ("stack", "stack"), ("heap", "heap"), ("heatmaps", "heatmaps"),
        ("syscalls", "syscalls"), ("source", "source"))


def _ending(data: ReportData) -> str:
    s = data.summary
    if s.signal:
        f = s.fault or {}
        return (f"killed by {s.signal}: {f.get('cause', '')} at step {f.get('step')}, "
                f"RIP {f.get('rip') or 0:#x}")
    if s.exit_code is not None:
        return f"exited with status {s.exit_code}"
    return f"stopped ({s.stop_reason})" + (f": {s.error}" if s.error else "")


def title(page: Page, data: ReportData) -> None:
    """The heading and the links to every section."""
    page.add(f"<h1>vmtrace report: {escape(data.summary.program)}</h1>")
    page.add("<nav>" + "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in _NAV)
             + "</nav>")


def summary(page: Page, data: ReportData) -> None:
    """How the run ended, its counts, accesses by segment, its output and warnings."""
    s = data.summary
    page.add('<h2 id="summary">Summary</h2>')
    if not s.complete:
        page.add('<p class="warning">Incomplete trace: the recording was interrupted; what '
                 'was written before is shown.</p>')
    rows = [["program", s.program], ["how it ended", _ending(data)],
            ["instructions", f"{s.instructions:,}"],
            ["memory reads / writes", f"{s.accesses.read:,} / {s.accesses.write:,}"],
            ["by source", ", ".join(f"{k}: {v['read']:,} r / {v['write']:,} w"
                                    for k, v in s.accesses.by_source.items()) or "none"],
            ["syscalls", f"{len(s.syscalls):,}"],
            ["program break", s.brk_line],
            ["max stack depth", s.stack_line]]
    if s.truncated:
        rows.append(["note", "the trace is truncated (a limit stopped the run)"])
    page.add(table(None, rows))
    totals = data.heatmaps.totals
    page.add("<h3>Accesses by segment and source</h3>")
    page.add(table(["segment", "range", "reads", "writes", "explicit", "implicit", "kernel"],
                   [[r.segment, "" if r.start is None or r.start != r.start
                     else f"{int(r.start):#x}-{int(r.end):#x}", f"{r.reads:,}",
                     f"{r.writes:,}", f"{r.explicit:,}", f"{r.implicit:,}", f"{r.kernel:,}"]
                    for r in totals.itertuples()], numeric={2, 3, 4, 5, 6}))
    for name, text in (("stdout", s.stdout), ("stderr", s.stderr)):
        if text:
            cut = text[:MAX_OUTPUT_CHARS]
            more = "" if len(text) <= MAX_OUTPUT_CHARS else f"\n... ({len(text):,} characters)"
            page.add(f"<h3>{name}</h3><pre>{escape(cut + more)}</pre>")
    if s.warnings:
        page.add("<h3>assembler warnings</h3><ul>" + "".join(
            f"<li>{escape(w)}</li>" for w in s.warnings) + "</ul>")


def findings(page: Page, data: ReportData) -> None:
    """What the analyses point out, in step order."""
    page.add('<h2 id="findings">Findings</h2>')
    if not data.findings:
        page.add("<p>Nothing to point out.</p>")
        return
    page.add('<table class="findings"><tr><th></th><th>step</th><th>RIP</th><th>line</th>'
             '<th>what</th></tr>' + "".join(
                 f'<tr><td class="{f.severity.value}">{escape(f.severity.value)}</td>'
                 f'<td class="n">{"" if f.step is None else f.step}</td>'
                 f'<td>{"" if f.rip is None else hex(f.rip)}</td>'
                 f'<td class="n">{"" if f.line is None else f.line}</td>'
                 f'<td><b>{escape(f.kind.value)}</b>'
                 f'{f" (x{f.count:,})" if f.count > 1 else ""}: {escape(f.message)}</td>'
                 f'</tr>' for f in data.findings) + "</table>")


def memory_map(page: Page, data: ReportData) -> None:
    """The map picture and how the map changed."""
    page.add('<h2 id="vmmap">Memory map</h2>')
    page.figure(figures.vmmap_figure(data.vmmap))
    changes = data.vmmap.changes
    if len(changes):
        page.add("<h3>How the map changed</h3>")
        page.add(table(["step", "action", "start", "end", "size", "perms", "kind", "name"],
                       [[r.step, r.action, f"{r.start:#x}", f"{r.end:#x}",
                         human_bytes(r.end - r.start), r.perms, r.kind, r.name or ""]
                        for r in changes.head(MAX_CHANGE_ROWS).itertuples()], numeric={0}))


def stack(page: Page, data: ReportData) -> None:
    """The stack depth over time, with each call and return."""
    page.add('<h2 id="stack">Stack</h2>')
    page.figure(figures.stack_figure(data.stack))
    if data.stack.marks_total > len(data.stack.marks):
        page.add(f"<p>First {len(data.stack.marks):,} of {data.stack.marks_total:,} calls and "
                 f"returns marked.</p>")


def heap(page: Page, data: ReportData) -> None:
    """The break and mmap regions over time; allocator tracking when asked for."""
    page.add('<h2 id="heap">Heap</h2>')
    page.figure(figures.heap_figure(data.heap))
    if data.fragmentation is not None:
        frag = data.fragmentation
        page.figure(figures.fragmentation_figure(frag, max(data.summary.instructions, 1)))
        t = frag.timeline
        page.add(table(["step", "event", "ptr", "size", "live blocks", "live bytes",
                        "heap bytes", "free bytes", "holes", "largest hole",
                        "external fragmentation"],
                       [[r.step, r.event, f"{r.ptr:#x}", r.size, r.live_blocks, r.live_bytes,
                         r.heap_bytes, r.free_bytes, r.holes, r.largest_hole,
                         f"{r.external_fragmentation:.3f}"] for r in t.itertuples()],
                       numeric={0, 3, 4, 5, 6, 7, 8, 9, 10}))
        for p in frag.problems:
            page.add(f'<p class="warning">{escape(p)}</p>')
    if data.libc_heap is not None:
        page.add(_libc_heap_html(data))


def heatmaps(page: Page, data: ReportData) -> None:
    """Accesses per segment over time."""
    page.add('<h2 id="heatmaps">Access heatmaps</h2>')
    page.figure(figures.heatmap_figure(data.heatmaps))


def syscalls(page: Page, data: ReportData) -> None:
    """Every syscall with its own arguments, named and decoded."""
    s = data.summary
    page.add('<h2 id="syscalls">Syscalls</h2>')
    page.add(table(["step", "name", "arguments", "returned"],
                   [[c["step"], c["name"], describe_args(c["name"], c["args"]),
                     describe_ret(c["name"], c["ret"])]
                    for c in s.syscalls[:MAX_SYSCALL_ROWS]], numeric={0}))
    if len(s.syscalls) > MAX_SYSCALL_ROWS:
        page.add(f"<p>... and {len(s.syscalls) - MAX_SYSCALL_ROWS:,} more.</p>")


def _libc_heap_html(data: ReportData) -> str:
    """The C library's heap: its blocks, their chunks and what became of them."""
    heap = data.libc_heap
    blocks = heap.blocks
    live = [b for b in blocks if b.free_step is None]
    chunked = [b for b in blocks if b.chunk_size is not None]
    lib = "glibc" if heap.glibc else "the C library"
    out = [f"<h3>{lib}'s heap (--allocator auto)</h3>"]
    rows = [["calls into the allocator", f"{heap.calls:,}"],
            ["blocks allocated / still live at the end", f"{len(blocks):,} / {len(live):,}"],
            ["bytes requested / still live", f"{sum(b.size for b in blocks):,} / "
                                             f"{sum(b.size for b in live):,}"],
            ["blocks placed where a freed one was (reuse)",
             f"{sum(b.reused for b in blocks):,}"],
            ["blocks served by mmap", f"{sum(b.mmapped for b in blocks):,}"],
            ["top of the heap (program break at the end)",
             f"{data.summary.brk_end:#x} ({data.summary.brk_end - data.summary.brk_start:+,} "
             "bytes)"]]
    if chunked:
        overhead = sum(b.overhead for b in chunked)
        rows.append(["chunk overhead (chunk size − requested size)",
                     f"{overhead:,} bytes over {sum(b.chunk_size for b in chunked):,} "
                     f"({overhead / max(1, sum(b.chunk_size for b in chunked)):.1%})"])
    out.append(table(None, rows))
    out.append(table(
        ["block", "address", "requested", "chunk", "overhead", "how", "allocated (step)",
         "line", "freed (step)", "line", "mmap", "reused"],
        [[b.id, f"{b.ptr:#x}", f"{b.size:,}", "" if b.chunk_size is None else
          f"{b.chunk_size:,}", "" if b.overhead is None else f"{b.overhead:,}",
          b.func + (f" (via {b.via})" if b.via else ""), f"{b.alloc_step:,}",
          "" if b.alloc_line is None else b.alloc_line,
          "live" if b.free_step is None else f"{b.free_step:,}",
          "" if b.free_line is None else b.free_line, "yes" if b.mmapped else "",
          "yes" if b.reused else ""] for b in blocks[:MAX_BLOCK_ROWS]],
        numeric={0, 2, 3, 4, 6, 7, 8, 9}))
    if len(blocks) > MAX_BLOCK_ROWS:
        out.append(f"<p>... and {len(blocks) - MAX_BLOCK_ROWS:,} more blocks.</p>")
    return "".join(out)


def _listing_html(data: ReportData) -> str:
    lst = data.listing
    out = [f'<h2 id="source">Source: {escape(lst.file)}</h2>']
    if lst.source_note:
        shown = "" if lst.source_available else ", so only line numbers are shown"
        out.append(f'<p class="warning">The source: {escape(lst.source_note)}{shown}.</p>')
    out.append('<table class="listing"><tr><td>line</td><td>executed</td><td>reads</td>'
               '<td>writes</td><td>source</td></tr>')
    for r in lst.lines.itertuples():
        cls = "hot" if r.reads or r.writes else ("dead" if r.has_code and not r.executed else "")
        counts = ([f"{r.executed:,}", f"{r.reads:,}" if r.reads else "",
                   f"{r.writes:,}" if r.writes else ""] if r.has_code else ["", "", ""])
        out.append(f'<tr class="{cls}"><td class="n">{r.line}</td>'
                   + "".join(f'<td class="n">{c}</td>' for c in counts)
                   + f'<td class="src">{escape(r.text)}</td></tr>')
    out.append("</table>")
    return "".join(out)


def source(page: Page, data: ReportData) -> None:
    """The source with per-line execution and access counts."""
    page.add(_listing_html(data))


# The report, top to bottom.
SECTIONS: tuple[Callable[[Page, ReportData], None], ...] = (
    title, summary, findings, memory_map, stack, heap, heatmaps, syscalls, source)
