"""Renders ReportData as one self-contained offline HTML page (the sections are
`analysis.report_sections`, the page machinery `analysis.html_page`), and single charts
for `trace plot`."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis.html_page import Page, figure_json, packed_plotly
from analysis.report import ReportData
from analysis.report_sections import SECTIONS

__all__ = ["figure_json", "packed_plotly", "render_figures", "render_report"]


def render_figures(figs: list[go.Figure], title: str) -> str:
    """A page with only these figures (for `trace plot`).

    Args:
        figs: the figures, drawn one below the other.
        title: the page title (escaped here).
    """
    page = Page()
    for fig in figs:
        page.figure(fig)
    return page.document(f"vmtrace: {title}")


def render_report(data: ReportData) -> str:
    """The report page: each section of `SECTIONS` in order.

    Args:
        data: from `analysis.report.build_report`.

    Returns:
        The HTML text (self-contained, offline).
    """
    page = Page()
    for section in SECTIONS:
        section(page, data)
    return page.document(f"vmtrace: {data.summary.program}")
