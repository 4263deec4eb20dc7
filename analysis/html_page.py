"""The page the report and `trace plot` write: one self-contained offline HTML document,
its charts, tables and escaping.

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


class Page:
    """The body being built: HTML parts in order, and the charts (drawn by the loader)."""

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

    def document(self, title: str) -> str:
        """The whole page: the body so far, plotly.js and the loader."""
        body = "\n".join(self.parts)
        return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
                f'<body><p id="charts-error" class="error"></p>{body}'
                f'<script id="plotly-gz" type="application/octet-stream">{packed_plotly()}'
                f"</script><script>{_LOADER}</script></body></html>")


def table(headers: list[str] | None, rows: list[list], numeric: set[int] = frozenset()) -> str:
    """An HTML table, every cell escaped; `numeric` columns right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers or [])
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{escape(str(v))}</td>' if i in numeric
                        else f"<td>{escape(str(v))}</td>" for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    top = f"<tr>{head}</tr>" if head else ""
    return f"<table>{top}{''.join(body)}</table>"
