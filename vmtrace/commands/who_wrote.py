"""`trace who-wrote`: the last write into an address before a step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vmtrace.commands._replay_common import (
    address, check_step, last_step, open_with_index,
)
from vmtrace.terminal import make_console, safe


def who_wrote_data(trace_path: Path, addr_text: str, step: int | None) -> dict:
    from analysis.memory import MemoryReader, Symbols

    t, index = open_with_index(trace_path)
    addr = address(t, addr_text)
    step = check_step(t, last_step(t) if step is None else step)
    reader = MemoryReader(t, index.writes)
    w = reader.who_wrote(addr, step)
    byte = reader.read(addr, 1, step)
    symbols = Symbols(t)
    out = {"addr": addr, "step": step, "byte": byte.data[0] if byte.mapped[0] else None,
           "write": None}
    if w is not None:
        line = symbols.line(w.rip) if w.source != "kernel" else None
        syscall = None
        if w.source == "kernel":
            rows = [r for r in t.syscalls.select(["step", "name"]).to_pylist()
                    if r["step"] == w.step]
            syscall = rows[0]["name"] if rows else None
        out["write"] = {"step": w.step, "rip": w.rip, "addr": w.addr, "size": w.size,
                        "source": w.source, "data": w.data.hex(),
                        "value": int.from_bytes(w.data[:8], "little"),
                        "symbol": symbols.symbolize(w.rip), "syscall": syscall,
                        "line": None if line is None else {"file": line[0], "line": line[1]}}
    return out


def who_wrote(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    addr: Annotated[str, typer.Argument(help="Address: 0x..., decimal or symbol[+offset].")],
    step: Annotated[Optional[int], typer.Option(
        "--step", help="Look before this step (default: the end of the run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find the last write into ADDR before STEP: step, RIP, source line, value."""
    data = who_wrote_data(trace, addr, step)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    console = make_console()
    w = data["write"]
    a, s = data["addr"], data["step"]
    if data["byte"] is None:
        console.print(f"{a:#x} is not mapped before step {s:,}")
        return
    if w is None:
        console.print(f"{a:#x} was not written before step {s:,}: it holds its initial value"
                      + ("" if data["byte"] is None else f" ({data['byte']:#04x})"))
        return
    who = (f"the kernel ({w['syscall'] or 'syscall'} at step {w['step']:,})"
           if w["source"] == "kernel" else f"step {w['step']:,}")
    where = f"RIP {w['rip']:#x}" + (f" <{safe(w['symbol'])}>" if w["symbol"] else "")
    if w["line"]:
        where += f" [dim]{safe(Path(w['line']['file']).name)}:{w['line']['line']}[/]"
    console.print(f"[bold]{a:#x}[/] before step {s:,} was last written by {who}, {where}")
    console.print(f"  wrote {w['size']} byte(s) at {w['addr']:#x}: {w['data'][:64]}"
                  + ("..." if len(w["data"]) > 64 else "")
                  + f"; the byte at {a:#x} is {data['byte']:#04x}")
    console.print(f"next: [cyan]trace accesses {trace} {a:#x} --step {s}[/]   "
                  f"[cyan]trace who-wrote {trace} {a:#x} --step {w['step']}[/]")
