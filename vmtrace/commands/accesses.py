"""`trace accesses`: every access to an address range, with previous/next around a step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from vmtrace.commands._replay_common import number
from vmtrace.terminal import make_console, safe


def accesses(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    addr: Annotated[str, typer.Argument(help="Address: 0x..., decimal or symbol[+offset].")],
    length: Annotated[int, typer.Argument(
        parser=number(1), help="Bytes in the range (decimal or 0x...).")] = 1,
    step: Annotated[Optional[int], typer.Option(
        "--step", help="Show the previous and next access around this step.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to print (0: all).")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the full access history of [ADDR, ADDR+LEN): reads, writes, kernel accesses."""
    from analysis import open_trace
    from analysis.symbols import Symbolizer
    from timetravel import accesses as query
    from timetravel import resolve_address

    t = open_trace(trace)
    found = query(t, resolve_address(t, addr, length), length, step)
    if as_json:
        print(json.dumps(found.to_json(), indent=2))
        return
    rows, prev, nxt, start = found.rows, found.previous, found.next, found.addr
    symbols = Symbolizer(t.symbols, t.lines)
    console = make_console()
    console.print(f"[bold]{len(rows):,} accesses[/] to [{start:#x}, {start + length:#x})")
    out = Table(box=None, padding=(0, 1))
    for col in ("step", "rip", "", "op", "addr", "size", "value", "line"):
        out.add_column(col)
    shown = rows if not limit else rows[:limit]
    if step is not None and limit and nxt is not None and nxt not in shown:
        i = rows.index(nxt)
        shown = rows[max(i - limit // 2, 0):i + limit // 2]
    for r in shown:
        line = symbols.line_at(r["rip"]) if r["source"] != "kernel" else None
        mark = "►" if r is nxt else ("◄" if r is prev else "")
        value = "" if r["value"] is None else f"{r['value']:#x}"
        op = ("W" if r["is_write"] else "R") + ("k" if r["source"] == "kernel" else "")
        out.add_row(f"{r['step']:,}", f"{r['rip']:#x}", mark, op, f"{r['addr']:#x}",
                    str(r["size"]), value,
                    "" if not line else safe(f"{Path(line.file).name}:{line.line}"))
    console.print(out)
    if len(shown) < len(rows):
        console.print(f"[dim]{len(rows) - len(shown):,} more (use --limit 0)[/]")
    if step is not None:
        for label, r in (("previous", prev), ("next", nxt)):
            if r is not None:
                console.print(f"{label}: step {r['step']:,} -> [cyan]trace state {trace} "
                              f"{r['step']}[/]")
