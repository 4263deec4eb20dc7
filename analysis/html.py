"""Renders ReportData as one self-contained offline HTML page. Everything from the trace
is escaped here: program output, symbol names and source text are untrusted.

plotly.js is inlined gzip-compressed (base64) and unpacked by the browser's
DecompressionStream: the plain bundle alone is 4.8 MB, which would leave no room in the
5 MB budget for the charts' data."""

from __future__ import annotations

import base64
import gzip
from functools import lru_cache
from html import escape
from pathlib import Path

import plotly
import plotly.graph_objects as go

from analysis import figures
from analysis.formatting import human_bytes
from analysis.report import ReportData
from analysis.syscall_args import describe_args, describe_ret

MAX_SYSCALL_ROWS = 500
MAX_CHANGE_ROWS = 300
MAX_OUTPUT_CHARS = 20_000
MAX_BLOCK_ROWS = 500

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1300px;
padding:1em 2em;color:#263238}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #eceff1;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #cfd8dc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eceff1}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f5f5f5;padding:.6em;overflow:auto;max-height:300px}
.error{color:#b71c1c}.warning{color:#e65100}.note{color:#1565c0}
.listing td{font-family:ui-monospace,monospace;font-size:12px;border:none;padding:0 8px;
white-space:pre}.listing tr.hot td.src{background:#fff3e0}.listing tr.dead td{color:#9e9e9e}
nav a{margin-right:1em}.chart{min-height:300px}
"""

_LOADER = """
(async function () {
  const packed = document.getElementById('plotly-gz').textContent.trim();
  const bytes = Uint8Array.from(atob(packed), c => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  const code = await new Response(stream).text();
  const script = document.createElement('script');
  script.textContent = code;
  document.head.appendChild(script);
  for (const el of document.querySelectorAll('script.figure')) {
    const fig = JSON.parse(el.textContent);
    await Plotly.newPlot(el.dataset.target, fig.data, fig.layout, {responsive: true});
  }
  document.body.dataset.chartsReady = 'yes';
})().catch(err => {
  document.getElementById('charts-error').textContent = 'The charts could not be drawn: ' + err;
  console.error(err);
});
"""


@lru_cache(maxsize=1)
def packed_plotly() -> str:
    """plotly.min.js, gzip-compressed and base64-encoded."""
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return base64.b64encode(gzip.compress(path.read_bytes(), 9, mtime=0)).decode()


def figure_json(fig: go.Figure) -> str:
    """The figure as JSON safe to put inside a <script> element."""
    text = fig.to_json()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0

    def add(self, html: str) -> None:
        self.parts.append(html)

    def figure(self, fig: go.Figure) -> None:
        self.n += 1
        target = f"fig{self.n}"
        self.add(f'<div class="chart" id="{target}"></div>'
                 f'<script type="application/json" class="figure" data-target="{target}">'
                 f"{figure_json(fig)}</script>")


def _table(headers: list[str] | None, rows: list[list],
           numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers or [])
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{escape(str(v))}</td>' if i in numeric
                        else f"<td>{escape(str(v))}</td>" for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    top = f"<tr>{head}</tr>" if head else ""
    return f"<table>{top}{''.join(body)}</table>"


def _ending(data: ReportData) -> str:
    s = data.summary
    if s.signal:
        f = s.fault or {}
        return (f"killed by {s.signal}: {f.get('cause', '')} at step {f.get('step')}, "
                f"RIP {f.get('rip') or 0:#x}")
    if s.exit_code is not None:
        return f"exited with status {s.exit_code}"
    return f"stopped ({s.stop_reason})" + (f": {s.error}" if s.error else "")


def _document(title: str, body: str) -> str:
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
            f'<body><p id="charts-error" class="error"></p>{body}'
            f'<script id="plotly-gz" type="application/octet-stream">{packed_plotly()}</script>'
            f"<script>{_LOADER}</script></body></html>")


def render_figures(figs: list[go.Figure], title: str) -> str:
    """A page with only these figures (for `trace plot`).

    Args:
        figs: the figures, drawn one below the other.
        title: the page title (escaped here).
    """
    page = _Page()
    for fig in figs:
        page.figure(fig)
    return _document(f"vmtrace: {title}", "\n".join(page.parts))


def render_report(data: ReportData) -> str:
    """The report page.

    Args:
        data: from `analysis.report.build_report`.

    Returns:
        The HTML text (self-contained, offline).
    """
    s = data.summary
    page = _Page()
    page.add(f"<h1>vmtrace report: {escape(s.program)}</h1>")
    page.add('<nav><a href="#summary">summary</a><a href="#findings">findings</a>'
             '<a href="#vmmap">memory map</a><a href="#stack">stack</a><a href="#heap">heap</a>'
             '<a href="#heatmaps">heatmaps</a><a href="#syscalls">syscalls</a>'
             '<a href="#source">source</a></nav>')
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
    page.add(_table(None, rows))
    totals = data.heatmaps.totals
    page.add("<h3>Accesses by segment and source</h3>")
    page.add(_table(["segment", "range", "reads", "writes", "explicit", "implicit", "kernel"],
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

    page.add('<h2 id="findings">Findings</h2>')
    if data.findings:
        page.add('<table class="findings"><tr><th></th><th>step</th><th>RIP</th><th>line</th>'
                 '<th>what</th></tr>' + "".join(
                     f'<tr><td class="{f.severity.value}">{escape(f.severity.value)}</td>'
                     f'<td class="n">{"" if f.step is None else f.step}</td>'
                     f'<td>{"" if f.rip is None else hex(f.rip)}</td>'
                     f'<td class="n">{"" if f.line is None else f.line}</td>'
                     f'<td><b>{escape(f.kind.value)}</b>'
                     f'{f" (x{f.count:,})" if f.count > 1 else ""}: {escape(f.message)}</td>'
                     f'</tr>' for f in data.findings) + "</table>")
    else:
        page.add("<p>Nothing to point out.</p>")

    page.add('<h2 id="vmmap">Memory map</h2>')
    page.figure(figures.vmmap_figure(data.vmmap))
    changes = data.vmmap.changes
    if len(changes):
        page.add("<h3>How the map changed</h3>")
        page.add(_table(["step", "action", "start", "end", "size", "perms", "kind", "name"],
                        [[r.step, r.action, f"{r.start:#x}", f"{r.end:#x}",
                          human_bytes(r.end - r.start), r.perms, r.kind, r.name or ""]
                         for r in changes.head(MAX_CHANGE_ROWS).itertuples()], numeric={0}))
    page.add('<h2 id="stack">Stack</h2>')
    page.figure(figures.stack_figure(data.stack))
    if data.stack.marks_total > len(data.stack.marks):
        page.add(f"<p>First {len(data.stack.marks):,} of {data.stack.marks_total:,} calls and "
                 f"returns marked.</p>")
    page.add('<h2 id="heap">Heap</h2>')
    page.figure(figures.heap_figure(data.heap))
    if data.fragmentation is not None:
        frag = data.fragmentation
        page.figure(figures.fragmentation_figure(frag, max(s.instructions, 1)))
        t = frag.timeline
        page.add(_table(["step", "event", "ptr", "size", "live blocks", "live bytes",
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
    page.add('<h2 id="heatmaps">Access heatmaps</h2>')
    page.figure(figures.heatmap_figure(data.heatmaps))
    page.add('<h2 id="syscalls">Syscalls</h2>')
    page.add(_table(["step", "name", "arguments", "returned"],
                    [[c["step"], c["name"], describe_args(c["name"], c["args"]),
                      describe_ret(c["name"], c["ret"])]
                     for c in s.syscalls[:MAX_SYSCALL_ROWS]], numeric={0}))
    if len(s.syscalls) > MAX_SYSCALL_ROWS:
        page.add(f"<p>... and {len(s.syscalls) - MAX_SYSCALL_ROWS:,} more.</p>")
    page.add(_listing_html(data))
    return _document(f"vmtrace: {s.program}", "\n".join(page.parts))


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
    out.append(_table(None, rows))
    out.append(_table(
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
