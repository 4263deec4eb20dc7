"""`trace mem`: memory at a step as a hexdump, with the symbols it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vmtrace.commands._replay_common import number, open_session
from vmtrace.terminal import make_console, safe


def mem(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    addr: Annotated[str, typer.Argument(help="Address: 0x..., decimal or symbol[+offset].")],
    length: Annotated[int, typer.Argument(
        parser=number(1, 1 << 20), help="Bytes to show (decimal or 0x...).")] = 64,
    step: Annotated[Optional[int], typer.Option(
        "--step", help="Step (default: the end of the run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show LEN bytes of memory at ADDR before instruction STEP executes."""
    from timetravel import memory_at, resolve_address, symbolizer

    session = open_session(trace)
    start = resolve_address(session.trace, addr, length)
    view = memory_at(session, start, length, step)
    step = view.step
    if as_json:
        print(json.dumps(view.to_json()))
        return
    symbols = symbolizer(session, step)
    console = make_console()
    console.print(f"[bold]memory at {start:#x}[/] ({length} bytes) before step {step:,}")
    for off in range(0, length, 16):
        row = start + off
        cells = []
        for i in range(off, min(off + 16, length)):
            cells.append(f"{view.data[i]:02x}" if view.mapped[i] else "[dim]..[/]")
        text = "".join(chr(b) if 32 <= b < 127 and view.mapped[off + j] else "."
                       for j, b in enumerate(view.data[off:off + 16]))
        labels = [symbols.exact(a) for a in range(row, min(row + 16, start + length))]
        label = ", ".join(f"{n}@+{i}" for i, n in enumerate(labels) if n)
        sym = symbols.name(row) or ""
        console.print(f"{row:#014x}  {' '.join(cells):<47}  {safe(text):<16}  "
                      f"[dim]{safe(sym)}[/] [cyan]{safe(label)}[/]", soft_wrap=True)
