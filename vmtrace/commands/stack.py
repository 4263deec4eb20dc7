"""`trace stack`: the stack at a step as a picture, one row per 8 bytes, frames bracketed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vmtrace.commands._replay_common import open_session
from vmtrace.terminal import make_console, safe

_HEAD, _TAIL = 24, 96   # rows shown above and below the cut in a deep stack
_STYLE = {"return address": "magenta", "saved rbp": "cyan", "argument": "yellow",
          "local": "white", "argc": "dim", "red zone": "red"}


def stack(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    step: Annotated[int, typer.Argument(help="Step (the state before instruction STEP runs).")],
    show_all: Annotated[bool, typer.Option(
        "--all", help="Print every row of a deep stack (default: its top and bottom).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Draw the stack from the initial RSP down to RSP and the red zone below it."""
    from timetravel import stack_at

    pic = stack_at(open_session(trace), step)
    if as_json:
        print(json.dumps(pic.to_json(), indent=2))
        return
    console = make_console()
    console.print(f"[bold]stack at step {step:,}[/]: initial RSP {pic.initial_rsp:#x}, "
                  f"RSP {pic.rsp:#x} (depth {pic.initial_rsp - pic.rsp:,} bytes), "
                  f"RBP {pic.rbp:#x}")
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for col in ("", "address", "value"):
        table.add_column(col, no_wrap=True)
    table.add_column("what", min_width=27)
    table.add_column("", no_wrap=True)
    table.add_column("step", no_wrap=True, justify="right")
    frame_of = {f.index: f for f in pic.frames}
    rows = pic.rows
    elided = 0
    if not show_all and len(rows) > _HEAD + _TAIL + 16:
        elided = len(rows) - _HEAD - _TAIL
        rows = rows[:_HEAD] + [None] + rows[-_TAIL:]
    for r in rows:
        if r is None:
            frames = len({x.frame for x in pic.rows[_HEAD:-_TAIL]} - {None})
            table.add_row("⋮", "", "", f"[dim]{elided:,} rows ({frames:,} frames) not "
                          "shown; --all prints them[/]", "", "")
            continue
        f = frame_of.get(r.frame)
        bracket = " "
        if f is not None:
            bracket = "┌" if r.addr == f.top else ("└" if r.addr == f.bottom else "│")
        if r.frame is not None and f is not None and r.addr == f.top:
            table.add_row("", "", "", f"[bold]frame {f.index}: {safe(f.function)}[/]",
                          "", "")
        style = _STYLE.get(r.kind, "white")
        marks = " ".join(f"[bold reverse]{m}[/]" for m in r.marks)
        value = "[dim]unmapped[/]" if r.value is None else f"{r.value:#018x}"
        written = "" if r.writer is None else f"{r.writer.step:,}"
        table.add_row(bracket, f"{r.addr:#x}", value,
                      f"[{style}]{r.kind}[/] {safe(r.meaning)}", marks, written)
    console.print(table)
