"""`trace replay`: re-execute a recorded run from its recorded inputs and check it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from analysis.formatting import plural
from vmtrace.terminal import make_console, safe


def replay(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    verify: Annotated[bool, typer.Option(
        "--verify", help="Exit with status 1 and report the first divergence if the replay "
        "does not reproduce the trace exactly.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-execute the run from the recorded inputs alone and compare it with the trace."""
    from tracer.format import TraceFiles
    from tracer.replay.verify import verify as run_verify

    console = make_console()
    files = TraceFiles(trace)
    result = run_verify(files)
    if as_json:
        import json
        from dataclasses import asdict

        print(json.dumps(asdict(result), indent=2))
        if verify and not result.ok:
            sys.exit(1)
        return
    counts = (f"{plural(result.instructions, 'instruction')}, "
              f"{plural(result.accesses, 'access', 'accesses')}, "
              f"{plural(result.rsp_changes, 'RSP change')}, {plural(result.syscalls, 'syscall')}")
    if result.ok:
        if files.complete:
            console.print(f"[green]replay reproduces the trace exactly[/] ({counts})")
        else:
            console.print(f"[green]replay reproduces every recorded event[/] ({counts}); the "
                          "trace is incomplete (the recording was interrupted), so its "
                          "ending is not checked")
        console.print(f"next: [cyan]trace state {trace} STEP[/]   "
                      f"[cyan]trace stack {trace} STEP[/]")
        return
    d = result.divergence
    console.print(f"[red]{safe(d.sentence())}[/]")
    if verify:
        sys.exit(1)
