"""`trace plot`: one chart of a trace alone, interactive (zoom, hover)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from vmtrace.commands.report import (
    AllocatorOption, allocator_fragmentation, default_output, show as show_page,
    write_output,
)
from vmtrace.terminal import make_console

console = make_console(stderr=True)


class Chart(str, enum.Enum):
    stack = "stack"
    heap = "heap"
    heatmap = "heatmap"
    vmmap = "vmmap"


def build_figure(trace, chart: Chart, allocator: str | None):
    """The plotly figure(s) of one chart."""
    from analysis import figures
    from analysis.heap import heap_timeline
    from analysis.heatmap import heatmaps
    from analysis.stack import stack_depth
    from analysis.vmmap import vmmap

    if chart is Chart.stack:
        return [figures.stack_figure(stack_depth(trace))]
    if chart is Chart.heap:
        figs = [figures.heap_figure(heap_timeline(trace))]
        frag = allocator_fragmentation(trace, allocator)
        if frag is not None:
            figs.append(figures.fragmentation_figure(frag, max(trace.instructions, 1)))
        return figs
    stack = stack_depth(trace)
    lowest = trace.initial_rsp - (stack.deepest.depth if stack.deepest else 0)
    if chart is Chart.heatmap:
        return [figures.heatmap_figure(heatmaps(trace, lowest_rsp=lowest))]
    return [figures.vmmap_figure(vmmap(trace, lowest))]


def plot(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    chart: Annotated[Chart, typer.Argument(help="Which chart.")],
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="Write the chart to this HTML file (default: beside the trace).")] = None,
    show: Annotated[bool, typer.Option("--show", help="Also open it in a browser.")] = False,
    allocator: AllocatorOption = None,
) -> None:
    """Draw one chart: stack depth, heap, per-segment heatmaps or the memory map."""
    from analysis import open_trace
    from analysis.html import render_figures

    t = open_trace(trace)
    figs = build_figure(t, chart, allocator)
    # --show opens the same offline page (plotly's own renderers may fetch plotly.js).
    out = html or default_output(trace, f"{chart.value}.html")
    write_output(out, render_figures(figs, f"{t.meta.program.name}: {chart.value}"))
    console.print(f"{chart.value} chart written to [bold]{out}[/]")
    if show:
        
        show_page(out)
