"""`trace state`: registers, flags, the next instruction and the memory map at a step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vmtrace.commands._replay_common import check_step, open_with_index
from vmtrace.terminal import make_console, safe

_ORDER = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
          "r12", "r13", "r14", "r15", "rip", "eflags", "fs_base", "gs_base")


def state_data(trace_path: Path, step: int) -> dict:
    """The `trace state --json` document."""
    from analysis.memory import Symbols, segments_at
    from tracer.replay.state import machine_state

    trace, index = open_with_index(trace_path)
    check_step(trace, step)
    st = machine_state(trace.files, step, index.keyframes)
    symbols = Symbols(trace)
    rip = st.registers["rip"]
    line = symbols.line(rip)
    insn = st.instruction
    return {
        "step": step,
        "registers": {k: st.registers[k] for k in _ORDER},
        "flags": st.flags,
        "instruction": None if insn is None else {
            "address": insn.address, "bytes": insn.bytes.hex(), "text": insn.text,
            "symbol": symbols.symbolize(insn.address)},
        "source": None if line is None else {"file": line[0], "line": line[1]},
        "ended": st.ended,
        "map": [{"start": s.start, "end": s.end, "perms": s.perms, "kind": s.kind,
                 "name": s.name} for s in segments_at(trace, step)],
    }


def state(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    step: Annotated[int, typer.Argument(help="Step (the state before instruction STEP runs).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the registers, flags, next instruction and memory map at STEP."""
    data = state_data(trace, step)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console = make_console()
    insn = data["instruction"]
    where = ""
    if data["source"]:
        where = f"   [dim]{safe(Path(data['source']['file']).name)}:{data['source']['line']}[/]"
    label = f" <{safe(insn['symbol'])}>" if insn and insn["symbol"] else ""
    text = safe(insn["text"]) if insn else "(no instruction: RIP is not mapped)"
    console.print(f"[bold]step {step:,}[/]  RIP {data['registers']['rip']:#x}{label}: "
                  f"[cyan]{text}[/]{where}")
    if data["ended"]:
        console.print("[yellow]the run had already ended before this step[/]")
    regs = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    per_row = 3 if console.width >= 120 else 2
    for _ in range(3 * per_row):
        regs.add_column(no_wrap=True)
    names = [n for n in _ORDER if n not in ("rip", "eflags")]
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
