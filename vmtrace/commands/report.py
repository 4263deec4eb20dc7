"""`trace report`: one self-contained offline HTML page with every analysis of a trace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from analysis.formatting import plural
from vmtrace.terminal import make_console, safe

console = make_console(stderr=True)

AllocatorOption = Annotated[Optional[str], typer.Option(
    "--allocator", help="auto (the default when the program defines malloc): track the C "
    "library's malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign and "
    "find heap errors; alloc=SYM,free=SYM: track the program's own allocator (size in rdi, "
    "pointer in rax on return; free's pointer in rdi); none: no allocator tracking.")]


def default_output(trace: Path, suffix: str) -> Path:
    """Beside the trace directory, never inside it (reading a trace never writes to it)."""
    trace = trace.resolve()
    return trace.parent / f"{trace.name}.{suffix}"


def write_output(out: Path, text: str) -> None:
    """Writes `text` to `out` through a new file renamed over it: a symlink planted at the
    default path beside a trace (which may have come from elsewhere with it) is replaced,
    never written through.

    Raises:
        TracerError: the file cannot be written there.
    """
    from tracer.errors import TracerError

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TracerError(f"cannot write {out}: {exc.strerror}") from None


def allocator_fragmentation(trace, spec_text: str | None):
    """Fragmentation from the allocator tracked (see `allocator_tracking`), or None."""
    return allocator_tracking(trace, spec_text)[0]


def allocator_tracking(trace, spec_text: str | None):
    """(fragmentation, the C library's blocks or None) for `--allocator`: the C library's
    allocator when the program defines malloc (auto, the default), the user's functions
    for alloc=SYM,free=SYM, nothing for `none` or a program without malloc."""
    from analysis.allocator import AllocatorSpec, allocator_events, fragmentation
    from analysis.errors import AllocatorSpecError
    from analysis.libc_heap import libc_functions, libc_heap
    from analysis.symbols import Symbolizer
    from timetravel.probe import emulator_probe

    if spec_text == "none":
        return None, None
    if spec_text in (None, "auto"):
        functions = libc_functions(Symbolizer(trace.symbols, trace.lines))
        if not functions:
            if spec_text == "auto":
                raise AllocatorSpecError("--allocator auto: the program does not define "
                                         "malloc (name its functions: alloc=SYM,free=SYM)")
            return None, None
        memalign = frozenset(a for n, a in functions.items() if n == "posix_memalign")
        heap = libc_heap(trace, emulator_probe(trace, at_rdi=memalign))
        # Fragmentation is the brk heap's: blocks glibc serves by mmap, and musl's (all in
        # mmap'd groups) are not in it.
        calls = trace.table("syscalls", ["name", "ret"]).to_pydict()
        top = max((r for n, r in zip(calls["name"], calls["ret"]) if n == "brk" and r),
                  default=trace.initial_brk)
        events = heap.events(trace.initial_brk, top)
        return fragmentation(events, trace.initial_brk), heap
    events = allocator_events(trace, AllocatorSpec.parse(spec_text), emulator_probe(trace))
    return fragmentation(events, trace.initial_brk), None


def show(page: Path) -> None:
    """Opens a written page in a browser; when none can be started, says why and where
    the page is (--open and --show never fail silently)."""
    from vmtrace.browser import open_in_browser

    why = open_in_browser(page)
    if why is not None:
        console.print(f"[yellow]could not open a browser:[/] {safe(why)}; open "
                      f"{safe(str(page.resolve()))} by hand")


def report(
    trace: Annotated[Path, typer.Argument(help="A trace directory.")],
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="HTML file to write (default: beside the trace).")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    allocator: AllocatorOption = None,
) -> None:
    """Write an offline HTML report: summary, memory map, stack, heap, heatmaps, syscalls,
    findings and the source listing with per-line counts."""
    from analysis import open_trace
    from analysis.html import render_report
    from analysis.report import build_report

    t = open_trace(trace)
    frag, heap = allocator_tracking(t, allocator)
    data = build_report(t, frag, heap)
    out = output or default_output(trace, "report.html")
    write_output(out, render_report(data))
    size = out.stat().st_size
    console.print(f"report written to [bold]{out}[/] ({size / 1e6:.1f} MB, "
                  f"{plural(len(data.findings), 'finding')})")
    if open_it:
        show(out)
    else:
        console.print(f"next: open {out} in a browser, or [cyan]trace plot {trace} stack --show[/]")
