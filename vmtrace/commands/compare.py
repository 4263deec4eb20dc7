"""`trace compare`: one offline HTML page comparing the programs of a `trace batch` dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_PAGE = "compare.html"


def compare(
    dataset: Annotated[Path, typer.Argument(help="A dataset directory written by `trace batch`.")],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help=f"HTML file to write (default: DATASET/{DEFAULT_PAGE}).")
    ] = None,
) -> None:
    """Write one offline page comparing the programs: a sortable table (each program links
    to its own report) and the distributions (who never freed, who overflowed the stack,
    who read past a datum)."""
    from analysis.compare import build_comparison, render_comparison
    from vmtrace.commands.report import write_output

    data = build_comparison(dataset)
    out = output or dataset / DEFAULT_PAGE
    write_output(out, render_comparison(data, out))
    not_ok = sum(r["status"] != "ok" for r in data.rows)
    console.print(f"comparison written to [bold]{out}[/] ({len(data.rows)} programs, "
                  f"{not_ok} not ok)")
    console.print(f"next: open {out} in a browser")
