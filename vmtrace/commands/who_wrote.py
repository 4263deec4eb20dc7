"""`trace who-wrote`: the last write into an address before a step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vmtrace.commands._replay_common import open_session
from vmtrace.terminal import make_console, safe


def who_wrote(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    addr: Annotated[str, typer.Argument(help="Address: 0x..., decimal or symbol[+offset].")],
    step: Annotated[Optional[int], typer.Option(
        "--step", help="Look before this step (default: the end of the run).")] = None,
    show_bytes: Annotated[bool, typer.Option(
        "--bytes", help="Also show the raw bytes written, in memory order.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find the last write into ADDR before STEP: step, RIP, source line, value."""
    from timetravel import resolve_address
    from timetravel import who_wrote as query

    session = open_session(trace)
    data = query(session, resolve_address(session.trace, addr), step).to_json()
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
    raw = ""
    if show_bytes:
        raw = f" (bytes {w['data'][:64]}" + ("...)" if len(w["data"]) > 64 else ")")
    console.print(f"  wrote {w['size']} byte(s) at {w['addr']:#x}: {w['value']:#x}{raw}"
                  f"; the byte at {a:#x} is {data['byte']:#04x}")
    console.print(f"next: [cyan]trace accesses {trace} {a:#x} --step {s}[/]   "
                  f"[cyan]trace who-wrote {trace} {a:#x} --step {w['step']}[/]")
