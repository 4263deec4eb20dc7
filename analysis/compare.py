"""`trace compare`: the programs of a batch dataset side by side, built as plain data (the
groups a teacher asks about: who never freed, who overflowed the stack, who read past a
datum) and rendered as one offline page: a sortable table, each row linking to the
program's own report, and the distributions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go

from analysis.dataset import FINDING_COLUMNS, programs_table
from analysis.findings import FindingKind
from analysis.html_page import Page  # the report's page shell: CSS, offline plotly

# (title, test) of each group the page counts and names.
GROUPS: list[tuple[str, Any]] = [
    ("exited by itself", lambda r: r["status"] == "ok"),
    ("never freed (a leak)", lambda r: (r["findings_leak"] or 0) > 0),
    ("overflowed the stack", lambda r: bool(r["stack_overflow"])),
    ("read or wrote past a datum", lambda r: (r["findings_wide_access"] or 0) > 0),
    ("heap error (overflow, use after free, bad free)",
     lambda r: any((r[c] or 0) > 0 for c in ("findings_heap_overflow",
                                             "findings_use_after_free", "findings_bad_free"))),
    ("faulted", lambda r: r["status"] == "fault"),
    ("did not build", lambda r: r["status"] == "build-error"),
    ("stopped by a limit", lambda r: r["status"] in ("max-steps", "max-trace-size",
                                                     "time-limit", "min-free-disk")),
    ("other failure", lambda r: r["status"] not in (
        "ok", "fault", "build-error", "max-steps", "max-trace-size", "time-limit",
        "min-free-disk")),
]
_KIND_TITLES = {f"findings_{k.name.lower()}": k.value for k in FindingKind}


@dataclass(frozen=True)
class Comparison:
    """`rows`: one dict per program (the `programs` columns, `program` first).
    `groups`: title -> the programs in it. `finding_columns`: the finding kinds that
    occur in the dataset."""

    dataset: str
    rows: list[dict[str, Any]]
    groups: dict[str, list[str]]
    finding_columns: list[str]


def build_comparison(dataset: str | Path) -> Comparison:
    """Reads a dataset's `programs` table into the comparison's data.

    Raises:
        DatasetError: `dataset` is not a batch dataset.
    """
    rows = programs_table(dataset).to_pylist()
    groups = {title: [r["program"] for r in rows if test(r)] for title, test in GROUPS}
    used = [c for c in FINDING_COLUMNS if any((r[c] or 0) > 0 for r in rows)]
    return Comparison(str(dataset), rows, groups, used)


_COLUMNS = [  # (header, key, numeric)
    ("program", "program", False), ("status", "status", False),
    ("exit", "exit_code", True), ("signal", "signal", False),
    ("instructions", "instructions", True), ("reads", "reads", True),
    ("writes", "writes", True), ("max stack depth (bytes)", "max_stack_depth", True),
    ("heap peak (bytes)", "heap_peak", True), ("live heap peak (bytes)", "heap_live_peak", True),
    ("fragmentation", "fragmentation", True), ("findings", "findings", True),
]

_SORT_JS = """
for (const table of document.querySelectorAll('table.sortable')) {
  const heads = table.querySelectorAll('th');
  heads.forEach((th, col) => th.addEventListener('click', () => {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const up = th.dataset.order !== 'asc';
    heads.forEach(h => delete h.dataset.order);
    th.dataset.order = up ? 'asc' : 'desc';
    const key = r => r.cells[col].dataset.v;
    const numeric = th.classList.contains('n');
    rows.sort((a, b) => {
      let x = key(a), y = key(b);
      if (x === '' && y === '') return 0;
      if (x === '') return 1;              // empty cells last, whichever the order
      if (y === '') return -1;
      const c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return up ? c : -c;
    });
    for (const r of rows) body.appendChild(r);
  }));
}
"""

_CSS = """
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[data-order=asc]::after{content:' \\25B2'}
table.sortable th[data-order=desc]::after{content:' \\25BC'}
td.ok{color:#2e7d32}td.bad{color:#b71c1c}
"""


def render_comparison(data: Comparison, page_path: Path) -> str:
    """The comparison page.

    Args:
        data: from `build_comparison`.
        page_path: where the page will be written: links to the reports are relative to
            it, so that they work from file:// wherever the dataset is moved with it.
    """
    page = Page()
    page.add(f"<style>{_CSS}</style>")
    page.add(f"<h1>vmtrace: {len(data.rows)} programs compared</h1>")
    page.add(f"<p>Dataset: {escape(data.dataset)}. Click a column to sort; a program's "
             "name opens its own report.</p>")
    page.add('<h2 id="groups">Who did what</h2>')
    page.figure(_groups_figure(data))
    page.add("<table><tr><th>group</th><th>programs</th><th>which</th></tr>" + "".join(
        f"<tr><td>{escape(title)}</td><td class='n'>{len(names)}</td>"
        f"<td>{escape(', '.join(names))}</td></tr>" for title, names in data.groups.items())
        + "</table>")
    page.add('<h2 id="programs">Programs</h2>')
    page.add(_programs_table(data, page_path))
    page.add('<h2 id="distributions">Distributions</h2>')
    for key, title in (("instructions", "Instructions executed"),
                       ("max_stack_depth", "Maximum stack depth (bytes)"),
                       ("heap_peak", "Heap peak: the program break above its start (bytes)")):
        page.figure(_histogram(data, key, title))
    page.add(f"<script>{_SORT_JS}</script>")
    return page.document("vmtrace: programs compared")


def _programs_table(data: Comparison, page_path: Path) -> str:
    columns = _COLUMNS + [(_KIND_TITLES[c], c, True) for c in data.finding_columns] + [
        ("why not ok", "error", False)]
    head = "".join(f'<th class="{"n" if numeric else ""}">{escape(title)}</th>'
                   for title, _, numeric in columns)
    base = Path(os.path.abspath(data.dataset)) if "://" not in data.dataset else None
    body = []
    for row in data.rows:
        cells = []
        for _, key, numeric in columns:
            value = row.get(key)
            sort_value = "" if value is None else str(value)
            if key == "program":
                shown = _program_link(row, base, page_path)
            elif key == "fragmentation" and value is not None:
                shown = f"{value:.3f}"
            elif numeric and value is not None:
                shown = f"{value:,}"
            else:
                shown = escape("" if value is None else str(value))
            cls = ("n" if numeric else "") + (
                " ok" if key == "status" and value == "ok" else
                " bad" if key == "status" else "")
            cells.append(f'<td class="{cls.strip()}" data-v="{escape(sort_value)}">'
                         f"{shown}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table class="sortable" id="programs-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _program_link(row: dict, base: Path | None, page_path: Path) -> str:
    name = escape(row["program"])
    report = row.get("report")
    if not report or base is None or not (base / report).is_file():
        return name
    target = os.path.relpath(base / report, Path(os.path.abspath(page_path)).parent)
    return f'<a href="{escape(quote(target.replace(os.sep, "/")))}">{name}</a>'


def _groups_figure(data: Comparison) -> go.Figure:
    titles = list(data.groups)
    counts = [len(v) for v in data.groups.values()]
    hover = ["<br>".join(v[:30]) + ("<br>..." if len(v) > 30 else "")
             for v in data.groups.values()]
    fig = go.Figure(go.Bar(x=counts, y=titles, orientation="h", hovertext=hover,
                           hoverinfo="text+x", marker_color="#1565c0"))
    fig.update_layout(title="Programs per group", height=120 + 32 * len(titles),
                      xaxis_title="programs", yaxis_autorange="reversed",
                      margin=dict(l=320))
    return fig


def _histogram(data: Comparison, key: str, title: str) -> go.Figure:
    rows = [r for r in data.rows if r.get(key) is not None]
    fig = go.Figure(go.Histogram(x=[r[key] for r in rows], marker_color="#546e7a",
                                 nbinsx=min(40, max(5, len(rows)))))
    fig.update_layout(title=f"{title}: {len(rows)} recorded programs", height=300,
                      yaxis_title="programs", bargap=0.05)
    return fig
