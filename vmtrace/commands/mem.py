"""`trace mem`: memory at a step as a hexdump, with the symbols it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vmtrace.commands._replay_common import (
    address, check_step, last_step, open_with_index,
)
from vmtrace.terminal import make_console, safe


def mem(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    addr: Annotated[str, typer.Argument(help="Address: 0x..., decimal or symbol[+offset].")],
    length: Annotated[int, typer.Argument(min=1, max=1 << 20, help="Bytes to show.")] = 64,
    step: Annotated[Optional[int], typer.Option(
        "--step", help="Step (default: the end of the run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show LEN bytes of memory at ADDR before instruction STEP executes."""
    from analysis.memory import MemoryReader, Symbols

    t, index = open_with_index(trace)
    start = address(t, addr, length)
    step = check_step(t, last_step(t) if step is None else step)
    view = MemoryReader(t, index.writes).read(start, length, step)
    if as_json:
        print(json.dumps({"addr": start, "step": step, "hex": view.data.hex(),
                          "mapped": list(view.mapped)}))
        return
    symbols = Symbols(t)
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
        sym = symbols.symbolize(row) or ""
        console.print(f"{row:#014x}  {' '.join(cells):<47}  {safe(text):<16}  "
                      f"[dim]{safe(sym)}[/] [cyan]{safe(label)}[/]", soft_wrap=True)
