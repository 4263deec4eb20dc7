"""`trace materialize`: rebuild the event tables of a trace recorded with `--fast`, and the
note every other command prints when it does so first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from analysis.formatting import plural
from vmtrace.terminal import make_console, safe

err = make_console(stderr=True)


def run_materialise(trace: Path, jobs: int | None = None, quiet: bool = False) -> None:
    """Materialises `trace` with a progress line on a terminal and one line when done.

    Raises:
        TraceFormatError: the trace is not readable, or its keyframes are damaged.
        ReplayError: a slice did not replay as recorded.
    """
    from tracer.replay.materialise import materialise

    status = None
    if err.is_terminal and not quiet:
        status = err.status(f"materialising {safe(trace)}...")
        status.start()

    def progress(done: int, total: int) -> None:
        if status is not None:
            status.update(f"materialising {safe(trace)}: {done} of {total} slices replayed")

    t0 = time.perf_counter()
    try:
        result = materialise(trace, jobs=jobs, progress=progress)
    finally:
        if status is not None:
            status.stop()
    if result is None:
        err.print(f"{safe(trace)} holds its event tables already (nothing to materialise)")
        return
    err.print(f"materialised {safe(trace)}: "
              f"{plural(result.accesses, 'access', 'accesses')}, "
              f"{plural(result.rsp_changes, 'RSP change')} from "
              f"{plural(result.slices, 'slice')} on {plural(result.jobs, 'worker')} in "
              f"{time.perf_counter() - t0:.2f} s")


def materialise_first(trace: Path) -> None:
    """Materialises a pending trace before a command that needs its events, saying so in
    one line (a command that may need them anywhere, e.g. the viewer's server, calls this
    at its start; the others rely on `EventsPending` reaching the CLI's main).

    Raises:
        TraceFormatError: the trace is not readable, or its keyframes are damaged.
        ReplayError: a slice did not replay as recorded.
    """
    from tracer.format import TraceFiles

    if TraceFiles(trace).pending:
        err.print(f"{safe(trace)} was recorded with --fast: materialising its event tables "
                  "first")
        run_materialise(trace)


def materialize(
    trace: Annotated[Path, typer.Argument(help="A trace directory recorded with --fast.")],
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", min=1, help="Worker processes (default: one per CPU; 1 runs in "
        "this process).")] = None,
) -> None:
    """Rebuild the accesses, rsp and exec_counts tables of a trace recorded with --fast
    (other commands do this first by themselves when they need them)."""
    run_materialise(trace, jobs)
    make_console().print(f"next: [cyan]trace report {trace}[/]")
