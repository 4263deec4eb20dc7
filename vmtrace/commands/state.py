"""`trace state`: registers, flags, the next instruction and the memory map at a step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vmtrace.commands._replay_common import open_session
from vmtrace.terminal import make_console, safe


def state(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    step: Annotated[int, typer.Argument(help="Step (the state before instruction STEP runs).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the registers, flags, next instruction and memory map at STEP."""
    from timetravel import REGISTER_ORDER, state_at

    data = state_at(open_session(trace), step).to_json()
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console = make_console()
    insn = data["instruction"]
    where = ""
    source = data["source"]
    if source:
        where = f"   [dim]{safe(Path(source['file']).name)}:{source['line']}[/]"
    label = f" <{safe(insn['symbol'])}>" if insn and insn["symbol"] else ""
    text = safe(insn["symbolic"]) if insn else "(no instruction: RIP is not mapped)"
    console.print(f"[bold]step {step:,}[/]  RIP {data['registers']['rip']:#x}{label}: "
                  f"[cyan]{text}[/]{where}")
    if source and source["text"]:
        console.print(f"  [dim]{source['line']:>5} |[/] {safe(source['text'])}")
    if data["ended"]:
        console.print("[yellow]the run had already ended before this step[/]")
    regs = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    per_row = 3 if console.width >= 120 else 2
    for _ in range(3 * per_row):
        regs.add_column(no_wrap=True)
    names = [n for n in REGISTER_ORDER if n not in ("rip", "eflags")]
    for i in range(0, len(names), per_row):
        row = []
        for n in names[i:i + per_row]:
            v = data["registers"][n]
            signed = v if v < 1 << 63 else v - (1 << 64)
            # The decimal only where it reads as a number (not an address).
            row += [f"[bold]{n}[/]", f"{v:#018x}",
                    f"[dim]{signed}[/]" if abs(signed) < 10**9 else ""]
        regs.add_row(*row)
    console.print(regs)
    flags = " ".join(f"[bold]{k}[/]" if v else f"[dim]{k.lower()}[/]"
                     for k, v in data["flags"].items())
    console.print(f"eflags {data['registers']['eflags']:#x}: {flags}")
    table = Table(title=f"memory map at step {step:,}")
    for col in ("start", "end", "perms", "kind", "name"):
        table.add_column(col)
    for r in data["map"]:
        table.add_row(f"{r['start']:#x}", f"{r['end']:#x}", safe(r["perms"]), safe(r["kind"]),
                      safe(r["name"]))
    console.print(table)
    console.print(f"next: [cyan]trace stack {trace} {step}[/]   "
                  f"[cyan]trace state {trace} {step + 1}[/]")
