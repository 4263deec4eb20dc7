"""Plotly figures: thin renderers of the data builders' results (no trace access here).

Hover texts are HTML-escaped: symbol names come from the program and are untrusted."""

from __future__ import annotations

from html import escape

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.allocator import Fragmentation
from analysis.formatting import human_bytes, plural
from analysis.heap import HeapTimeline
from analysis.heatmap import Heatmaps
from analysis.stack import StackDepth
from analysis.vmmap import VmMap

MAX_PANELS = 8
MAX_CELLS = 40_000
MAX_MMAP_BOXES = 300
_KIND_COLOURS = {"elf": "#b0bec5", "text": "#ef9a9a", "rodata": "#ffcc80", "data": "#fff59d",
                 "bss": "#c5e1a5", "heap": "#80cbc4", "mmap": "#90caf9", "vdso": "#ce93d8",
                 "stack": "#f48fb1"}


def stack_figure(stack: StackDepth) -> go.Figure:
    """Depth below the initial RSP against step; the axis points down, as the stack grows."""
    s = stack.series
    fig = go.Figure()
    exact = stack.bucket == 1
    fig.add_trace(go.Scatter(
        x=s["step"], y=s["depth_max"], name="depth" if exact else "deepest in bucket",
        mode="lines", line={"shape": "hv", "color": "#c2185b"},
        hovertemplate="step %{x}<br>depth %{y} bytes<extra></extra>"))
    if not exact:
        fig.add_trace(go.Scatter(
            x=s["step"], y=s["depth_min"], name="shallowest in bucket", mode="lines",
            line={"shape": "hv", "color": "#f8bbd0"}, fill="tonexty",
            hovertemplate="step %{x}<br>depth %{y} bytes<extra></extra>"))
    m = stack.marks
    for cause, symbol, colour in (("call", "triangle-down", "#1565c0"),
                                  ("ret", "triangle-up", "#2e7d32")):
        part = m[m["cause"] == cause]
        if part.empty:
            continue
        custom = np.stack([[f"{int(r):#x}" for r in part["rip"]],
                           [escape(str(x)) for x in part["symbol"]],
                           ["" if v is None or str(v) == "<NA>" else str(v)
                            for v in part["line"]]], axis=-1)
        # Name the called function beside each call when there are few enough to read.
        labelled = cause == "call" and len(part) <= 40
        # Drawn where the depth it leaves shows: the state after the instruction.
        fig.add_trace(go.Scatter(
            x=part["step"] + 1, y=part["depth"],
            mode="markers+text" if labelled else "markers",
            name=cause, text=list(custom[:, 1]) if labelled else None,
            textposition="bottom center", textfont={"size": 10},
            marker={"symbol": symbol, "size": 9, "color": colour}, customdata=custom,
            hovertemplate=(f"{cause} %{{customdata[1]}}<br>RIP %{{customdata[0]}}"
                           "<br>line %{customdata[2]}<br>depth %{y} bytes at step %{x}"
                           "<extra></extra>")))
    title = "Stack depth (bytes below the initial RSP)"
    if stack.deepest is not None:
        d = stack.deepest
        fig.add_annotation(x=d.step, y=d.depth, text=escape(
            f"max {d.depth} bytes at step {d.step} (after line {d.line} in {d.function})"),
            showarrow=True, arrowhead=2, ay=30)
        title += f": max {d.depth} bytes at step {d.step}"
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="bytes below initial RSP",
                      hovermode="closest", height=420, margin={"t": 60})
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(range=[0, max(stack.instructions, 1)])
    return fig


def heap_figure(heap: HeapTimeline) -> go.Figure:
    """The program break and each mmap region against step."""
    rows = 2 if len(heap.mmaps) else 1  # no empty panel for a program without mmap
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=("program break (heap grows up)", "mmap regions")[:rows])
    b = heap.brk
    # A brk at step N moves the break for the state at step N + 1 (the N that `trace stack`
    # takes, as the stack series counts): the line steps there; the call's marker stays at N.
    moved_at = [int(s) + 1 if i else 0 for i, s in enumerate(b["step"])]
    steps = moved_at + [max(heap.instructions, moved_at[-1])]
    sizes = list(b["end"] - heap.initial_brk) + [int(b["end"].iloc[-1] - heap.initial_brk)]
    fig.add_trace(go.Scatter(
        x=steps, y=sizes, mode="lines", line={"shape": "hv", "color": "#00897b"},
        name="heap size", customdata=[f"{heap.initial_brk + v:#x}" for v in sizes],
        hovertemplate="from step %{x}<br>break %{customdata}<br>heap %{y} bytes"
                      "<extra></extra>"),
        row=1, col=1)
    calls = heap.brk_calls[heap.brk_calls["requested"].notna()]
    if not calls.empty:
        fig.add_trace(go.Scatter(
            x=calls["step"], y=[int(r) - heap.initial_brk if m else 0
                               for r, m in zip(calls["requested"], calls["moved"])],
            mode="markers", name="brk call",
            marker={"color": ["#2e7d32" if m else "#c62828" for m in calls["moved"]],
                    "size": 10, "symbol": ["circle" if m else "x" for m in calls["moved"]]},
            customdata=[[f"{int(r):#x}", f"{int(v):#x}", f"{int(rip):#x}", str(line)]
                        for r, v, rip, line in zip(
                            calls["requested"], calls["returned"], calls["rip"],
                            calls["line"] if "line" in calls else [""] * len(calls))],
            hovertemplate=("brk(%{customdata[0]}) -> %{customdata[1]}<br>step %{x}"
                           "<br>RIP %{customdata[2]}<br>line %{customdata[3]}"
                           "<extra></extra>")), row=1, col=1)
    end_step = max(heap.instructions, 1)
    # Thousands of boxes would bloat the page: draw the biggest ones.
    boxes = heap.mmaps.assign(size=heap.mmaps["end"] - heap.mmaps["start"]).nlargest(
        MAX_MMAP_BOXES, "size") if len(heap.mmaps) > MAX_MMAP_BOXES else heap.mmaps
    for i, r in boxes.iterrows():
        last = end_step if r["last_step"] is None or str(r["last_step"]) == "<NA>" \
            else int(r["last_step"])
        x0, x1 = int(r["first_step"]), last
        y0, y1 = int(r["start"]), int(r["end"])
        fig.add_trace(go.Scatter(
            x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], fill="toself", mode="lines",
            line={"color": "#1e88e5"}, name=f"mmap {y0:#x}", showlegend=False,
            hovertemplate=escape(f"mmap [{y0:#x}, {y1:#x}) {human_bytes(y1 - y0)} "
                                 f"{r['perms']} {r['name']}") + f"<br>steps {x0}-{x1}"
                          "<extra></extra>"), row=2, col=1)
    fig.update_layout(title=f"Heap: break {heap.initial_brk:#x} -> {heap.final_brk:#x}, "
                            f"{plural(len(heap.mmaps), 'mmap region')}",
                      height=560 if rows == 2 else 360, hovermode="closest", margin={"t": 80})
    fig.update_yaxes(title_text="bytes above the initial break", row=1, col=1)
    if rows == 2:
        fig.update_yaxes(title_text="address", tickformat="#x", row=2, col=1)
    fig.update_xaxes(title_text="step", range=[0, end_step], row=rows, col=1)
    fig.update_xaxes(range=[0, end_step], row=1, col=1)
    return fig


def fragmentation_figure(frag: Fragmentation, end_step: int) -> go.Figure:
    """Villoc-style block map (address against step, one box per block) and the metrics."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        row_heights=[0.6, 0.4],
                        subplot_titles=("blocks over time (grey: freed)",
                                        "free bytes inside the heap and external fragmentation"))
    base = frag.heap_start
    for r in frag.blocks.itertuples():
        freed = r.free_step is not None and str(r.free_step) != "<NA>"
        x1 = int(r.free_step) if freed else end_step
        y0, y1 = int(r.ptr) - base, int(r.ptr) - base + int(r.size)
        fig.add_trace(go.Scatter(
            x=[r.alloc_step, x1, x1, r.alloc_step, r.alloc_step], y=[y0, y0, y1, y1, y0],
            fill="toself", mode="lines", showlegend=False,
            line={"color": "#9e9e9e" if freed else "#3949ab"},
            hovertemplate=(f"block {int(r.ptr):#x} ({int(r.size)} bytes)<br>allocated step "
                           f"{r.alloc_step}<br>" + (f"freed step {x1}" if freed else "live at end")
                           + "<extra></extra>")), row=1, col=1)
    t = frag.timeline
    fig.add_trace(go.Scatter(x=t["step"], y=t["free_bytes"], name="free bytes", mode="lines",
                             line={"shape": "hv"}), row=2, col=1)
    fig.add_trace(go.Scatter(x=t["step"], y=t["largest_hole"], name="largest hole",
                             mode="lines", line={"shape": "hv"}), row=2, col=1)
    fig.add_trace(go.Scatter(x=t["step"], y=t["external_fragmentation"],
                             name="external fragmentation", mode="lines", yaxis="y3",
                             line={"shape": "hv", "dash": "dot"}))
    fig.update_layout(
        title="Allocator: blocks, holes and fragmentation", height=620, hovermode="closest",
        yaxis3={"overlaying": "y2", "side": "right", "range": [0, 1],
                "title": "external fragmentation"})
    fig.update_yaxes(title_text="offset from heap start", row=1, col=1)
    fig.update_yaxes(title_text="bytes", row=2, col=1)
    fig.update_xaxes(title_text="step", range=[0, end_step], row=2, col=1)
    return fig


def heatmap_figure(maps: Heatmaps, max_panels: int = MAX_PANELS,
                   max_cells: int = MAX_CELLS) -> go.Figure:
    """One heatmap per segment: address bucket against time bucket, colour = accesses.

    The busiest `max_panels` segments get a panel (the totals table lists all); columns
    are merged until the panels hold at most `max_cells` cells, which bounds the page size.
    """
    shown = sorted(sorted(maps.maps, key=lambda m: -int(m.cells[["reads", "writes"]].sum().sum())
                          )[:max_panels], key=lambda m: m.segment.id)
    spans = [(int(m.cells["row"].min()), int(m.cells["row"].max())) for m in shown]
    rows_total = sum(hi - lo + 1 for lo, hi in spans)
    merge = max(1, -(-rows_total * maps.cols // max_cells))
    cols = -(-maps.cols // merge)
    width = maps.steps_per_col * merge
    n = max(len(shown), 1)
    titles = [f"{escape(m.segment.label)} ({m.granularity}-byte rows)" for m in shown]
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles or ["no accesses"],
                        vertical_spacing=min(0.08, 0.3 / n))
    # One colour scale shared by every panel (a colour means the same count everywhere),
    # and buttons choosing what it counts.
    views: list[str] = []  # which count each trace shows: three traces per panel
    peaks = {"both": 0.0, "reads": 0.0, "writes": 0.0}
    for i, (m, (lo, hi)) in enumerate(zip(shown, spans), 1):
        nrows = hi - lo + 1
        reads = np.zeros((nrows, cols))
        writes = np.zeros((nrows, cols))
        r = m.cells["row"].to_numpy() - lo
        c = np.minimum(m.cells["col"].to_numpy() // merge, cols - 1)
        np.add.at(reads, (r, c), m.cells["reads"].to_numpy())
        np.add.at(writes, (r, c), m.cells["writes"].to_numpy())
        total = reads + writes
        # The row label carries the symbol: hover shows address and name without a
        # per-cell text array.
        labels = [escape(f"{m.base + (lo + k) * m.granularity:#x} "
                         f"{m.row_symbols.get(lo + k, '')}".strip()) for k in range(nrows)]
        # Counts as the smallest unsigned type that holds them: the page carries them all.
        counts = np.uint16 if total.max(initial=0) < (1 << 16) else np.uint32
        for name, z in (("both", total), ("reads", reads), ("writes", writes)):
            peaks[name] = max(peaks[name], float(z.max(initial=0)))
            # log10: a panel of 1-8 accesses and one of thousands share the scale and
            # both stay readable; empty cells are blank.
            shown_z = np.log10(np.where(z > 0, z, np.nan)).astype(np.float32)
            both = name == "both"
            fig.add_trace(go.Heatmap(
                z=shown_z, x=[k * width for k in range(cols)], y=labels,
                customdata=(np.dstack([reads, writes]) if both else z).astype(counts),
                coloraxis="coloraxis", name=escape(m.segment.label), visible=both,
                hovertemplate=("address %{y}<br>steps from %{x}<br>" + (
                    "reads %{customdata[0]}<br>writes %{customdata[1]}" if both
                    else f"{name} %{{customdata}}") + "<extra></extra>")), row=i, col=1)
            views.append(name)
        fig.update_yaxes(title_text="address", type="category", row=i, col=1)
        fig.update_xaxes(range=[0, cols * width], row=i, col=1)
    fig.update_xaxes(title_text="step", row=n, col=1)
    hidden = len(maps.maps) - len(shown)
    words = {"both": "reads + writes", "reads": "reads", "writes": "writes"}

    def colour_axis(name: str) -> dict:
        top = max(1, int(np.ceil(np.log10(max(peaks[name], 1.0)))))
        ticks = list(range(top + 1))
        return {"cmin": 0, "cmax": max(np.log10(max(peaks[name], 1.0)), 1e-3),
                "colorbar": {"title": {"text": words[name]}, "tickvals": ticks,
                             "ticktext": [f"{10 ** k:,}" for k in ticks]}}

    buttons = [{"label": words[name], "method": "update",
                "args": [{"visible": [v == name for v in views]},
                         {f"coloraxis.{k}": v for k, v in colour_axis(name).items()}]}
               for name in words]
    fig.update_layout(title="Accesses per segment (one colour scale for all panels: "
                            "accesses per cell; hover for reads and writes)"
                            + (f"; {plural(hidden, 'quieter segment')} only in the table" if hidden
                               else ""),
                      coloraxis={"colorscale": "Viridis", **colour_axis("both")},
                      updatemenus=[{"type": "buttons", "direction": "right", "x": 1.0,
                                    "xanchor": "right", "y": 1.0, "yanchor": "bottom",
                                    "pad": {"b": 30}, "buttons": buttons}]
                      if shown else [],
                      height=max(320, 260 * n), margin={"t": 90})
    return fig


UNIT_PX = 46  # one unit of the legible layout: room for a region's two lines of text
_USED = {"stack": "#c2185b", "heap": "#00695c"}


def _used_part(vm: VmMap, r) -> tuple[int, str] | None:
    """(bytes, label) of the part of a stack or heap region in use, drawn inside it."""
    if r.kind == "stack" and vm.stack_used:
        own = max(0, vm.stack_used - vm.stack_initial)
        return (min(vm.stack_used, int(r.size)),
                f"used: {human_bytes(vm.stack_used)} = {human_bytes(vm.stack_initial)} of "
                f"argv, env, auxv from Linux + {human_bytes(own)} the program pushed")
    if r.kind == "heap" and int(r.start) <= vm.final_brk <= int(r.end):
        used = vm.final_brk - int(r.start)
        return used, f"in use at the end: {human_bytes(used)} (break {vm.final_brk:#x})"
    return None


def _used_box(r, used: int, view: str) -> tuple[float, float]:
    """The used part's y range: the stack's from its top down, the heap's from its start
    up; in the legible view at least a fifth of a unit, so that a few bytes still show."""
    y0, y1 = (r.y0, r.y1) if view == "legible" else (r.scale_y0, r.scale_y1)
    h = (y1 - y0) * used / max(int(r.size), 1)
    if view == "legible" and used:
        h = min(max(h, 0.2), y1 - y0)
    return (y1 - h, y1) if r.kind == "stack" else (y0, y0 + h)


def _box(y0: float, y1: float, x0: float = 0.0, x1: float = 1.0) -> tuple[list, list]:
    return [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]


def vmmap_figure(vm: VmMap) -> go.Figure:
    """The classic picture, low addresses at the bottom: every region tall enough to carry
    its name and true size, gaps marked, the used part of the stack and heap drawn inside
    them; a button switches to the to-scale layout (heights proportional to size)."""
    fig = go.Figure()
    views = {"legible": ([], []), "to scale": ([], [])}  # per view: trace ys, annotations

    def add(trace: go.Scatter, ys: dict[str, list]) -> None:
        fig.add_trace(trace)
        for view, y in ys.items():
            views[view][0].append(y)

    for r in vm.regions.itertuples():
        gone = r.last_step is not None and str(r.last_step) != "<NA>"
        size = human_bytes(int(r.size))
        detail = f"{r.perms}  [{int(r.start):#x}, {int(r.end):#x})"
        when = ("mapped from the start" if not r.first_step else
                f"mapped by the instruction at step {r.first_step}") + (
            f", unmapped by the instruction at step {r.last_step}" if gone else "")
        ys = {"legible": _box(r.y0, r.y1)[1], "to scale": _box(r.scale_y0, r.scale_y1)[1]}
        add(go.Scatter(
            x=_box(0, 1)[0], y=ys["legible"], fill="toself", mode="lines",
            fillcolor=_KIND_COLOURS.get(r.kind, "#eeeeee"),
            line={"color": "#37474f", "dash": "dash" if gone else "solid"},
            name=escape(str(r.label)), showlegend=False,
            hovertemplate=escape(f"{r.label}  {size}  {detail}") + "<br>" + when
            + "<extra></extra>"), ys)
        used = _used_part(vm, r)
        if used is not None:
            boxes = {v: _box(*_used_box(r, used[0], v), 0.55, 0.97)[1] for v in views}
            add(go.Scatter(
                x=_box(0, 1, 0.55, 0.97)[0], y=boxes["legible"], fill="toself", mode="lines",
                fillcolor=_USED[r.kind], opacity=0.75, line={"width": 0},
                name=f"{r.kind} used", showlegend=False,
                hovertemplate=escape(used[1]) + "<extra></extra>"), boxes)
        for view, (_, notes) in views.items():
            y0, y1 = (r.y0, r.y1) if view == "legible" else (r.scale_y0, r.scale_y1)
            if view == "to scale" and y1 - y0 < 0.6:
                continue  # too thin to write on: hover tells
            mid = (y0 + y1) / 2
            notes.append({"x": 0.03, "y": mid, "xanchor": "left", "showarrow": False,
                          "text": f"<b>{escape(str(r.label))}</b>  {size}<br>"
                                  f"<span style='font-size:11px'>{escape(detail)}</span>",
                          "font": {"size": 13}, "align": "left"})
            notes.append({"x": -0.01, "y": y0, "xanchor": "right", "showarrow": False,
                          "text": f"{int(r.start):#x}",
                          "font": {"size": 10, "color": "#546e7a"}})
            if used is not None:
                u0, u1 = _used_box(r, used[0], view)
                notes.append({"x": 0.99, "y": (u0 + u1) / 2 if u1 - u0 >= 0.45 else
                              (u0 - 0.2 if r.kind == "stack" else u1 + 0.2),
                              "xanchor": "right", "showarrow": False, "text": escape(used[1]),
                              "font": {"size": 11, "color": "#263238"},
                              "bgcolor": "rgba(255,255,255,0.8)"})
    if not (vm.regions["kind"] == "heap").any():
        # No heap region: the break never moved. Say where it stayed, on the region below.
        below = vm.regions[vm.regions["end"] == vm.final_brk]
        for r in below.itertuples():
            for view, (_, notes) in views.items():
                y1 = r.y1 if view == "legible" else r.scale_y1
                notes.append({"x": 0.99, "y": y1, "xanchor": "right", "yanchor": "bottom",
                              "showarrow": False, "font": {"size": 11, "color": "#00695c"},
                              "text": f"heap: empty, the program break stayed at "
                                      f"{vm.final_brk:#x}"})
    for g in vm.gaps.itertuples():
        ys = {"legible": [(g.y0 + g.y1) / 2] * 2,
              "to scale": [(g.scale_y0 + g.scale_y1) / 2] * 2}
        add(go.Scatter(
            x=[0, 1], y=ys["legible"], mode="lines", showlegend=False,
            line={"color": "#90a4ae", "dash": "dot"},
            hovertemplate=f"unmapped gap of {human_bytes(int(g.size))}<extra></extra>"), ys)
        for view, (_, notes) in views.items():
            notes.append({"x": 0.5, "y": ys[view][0], "showarrow": False,
                          "text": f"≈ unmapped gap of {human_bytes(int(g.size))} "
                                  "(not to scale) ≈",
                          "font": {"size": 11, "color": "#78909c"}, "bgcolor": "white"})
    top = float(vm.regions["y1"].max()) if len(vm.regions) else 1.0
    scale_top = float(vm.regions["scale_y1"].max()) if len(vm.regions) else 1.0
    ranges = {"legible": [-0.2, top + 0.2], "to scale": [-0.2, scale_top + 0.2]}
    titles = {"legible": "Virtual memory map (high addresses at the top; every region tall "
                         "enough to read, taller when bigger; darker: the part in use)",
              "to scale": "Virtual memory map, to scale (heights proportional to size; gaps "
                          "not to scale; hover a thin region)"}
    buttons = [{"label": view, "method": "update",
                "args": [{"y": ys}, {"annotations": notes, "yaxis.range": ranges[view],
                                     "title.text": titles[view]}]}
               for view, (ys, notes) in views.items()]
    fig.update_xaxes(visible=False, range=[-0.15, 1.02])
    fig.update_yaxes(visible=False, range=ranges["legible"])
    fig.update_layout(title=titles["legible"], annotations=views["legible"][1],
                      height=int(UNIT_PX * (top + 0.4)) + 110, plot_bgcolor="white",
                      margin={"t": 90, "l": 20, "r": 20, "b": 10}, title_font={"size": 14},
                      updatemenus=[{"type": "buttons", "direction": "right", "x": 0,
                                    "xanchor": "left", "y": 1.0, "yanchor": "bottom",
                                    "pad": {"b": 8}, "showactive": True,
                                    "buttons": buttons}])
    return fig
