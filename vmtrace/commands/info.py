"""`trace info`: what a recorded run did, for people or (--json) for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def info(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a recorded run: how it ended, its output, accesses, syscalls and map."""
    from analysis import open_trace
    from analysis.summary import summarize

    opened = open_trace(trace)
    opened.files.verify()
    summary = summarize(opened)
    if as_json:
        print(json.dumps(summary.to_json(), indent=2))
        return
    console = Console(highlight=False)
    s = summary
    if not s.complete:
        console.print("[yellow]incomplete trace: the recording was interrupted; what was "
                      "written before is shown[/]")
    if s.signal:
        fault = s.fault or {}
        console.print(f"[bold]{escape(s.program)}[/] was killed by [red]{s.signal}[/]: "
                      f"{fault.get('cause', '')} at step {fault.get('step')}, "
                      f"RIP {fault.get('rip', 0):#x}")
    elif s.exit_code is not None:
        console.print(f"[bold]{escape(s.program)}[/] exited with status {s.exit_code}")
    elif s.complete:
        console.print(f"[bold]{escape(s.program)}[/]: stopped ({s.stop_reason})"
                      + (f": {escape(s.error)}" if s.error else ""))
    if s.truncated and s.complete:
        why = ("the recording was interrupted by Ctrl-C or SIGTERM"
               if s.stop_reason == "interrupted" else "a limit stopped the run")
        console.print(f"[yellow]the trace is truncated ({why})[/]")
    console.print(f"instructions: {s.instructions:,}   reads: {s.accesses.read:,}   "
                  f"writes: {s.accesses.write:,}   max stack depth: {s.max_stack_depth:,} bytes")
    console.print(f"program break: {s.brk_start:#x} -> {s.brk_end:#x} "
                  f"({s.brk_end - s.brk_start:+,} bytes)")
    by_source = ", ".join(f"{k}: {v['read']:,} r / {v['write']:,} w"
                          for k, v in s.accesses.by_source.items())
    if by_source:
        console.print(f"by source: {by_source}")
    if s.stdout:
        console.print("stdout:")
        console.print(s.stdout, markup=False, end="" if s.stdout.endswith("\n") else "\n")
    table = Table(title="syscalls", show_lines=False)
    for col in ("step", "name", "args", "ret"):
        table.add_column(col)
    for call in s.syscalls[:50]:
        args = ", ".join(hex(a) for a in call["args"][:3])
        ret = "" if call["ret"] is None else (hex(call["ret"]) if call["ret"] > 4096
                                              else str(call["ret"]))
        table.add_row(str(call["step"]), call["name"], args, ret)
    console.print(table)
    if len(s.syscalls) > 50:
        console.print(f"... and {len(s.syscalls) - 50} more syscalls")
    regions = Table(title="memory map at the end")
    for col in ("start", "end", "perms", "kind", "name"):
        regions.add_column(col)
    for r in s.regions:
        regions.add_row(f"{r.start:#x}", f"{r.end:#x}", r.perms, r.kind, escape(r.name))
    console.print(regions)
    for w in s.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
