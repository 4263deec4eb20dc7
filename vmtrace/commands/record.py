"""`trace record`: assemble/load a program, run it emulated, write its trace."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from tracer.errors import TracerError

# soft_wrap: a file:line warning or a trace path must stay on one line (editors and
# copy-paste depend on it), whatever the terminal width.
console = Console(stderr=True, highlight=False, soft_wrap=True)


class ProgressLine:
    """A one-line live status for recordings that last more than a second, on a terminal."""

    def __init__(self) -> None:
        self._live = None

    def update(self, p) -> None:
        if p.seconds < 1.0 or not console.is_terminal:
            return
        from rich.live import Live

        rate = p.events / p.seconds if p.seconds else 0.0
        text = (f"recording: {p.steps:,} steps, {p.events:,} events, "
                f"{p.bytes_written / 1e6:,.1f} MB written, {rate / 1e6:,.1f} M events/s")
        if self._live is None:
            self._live = Live(text, console=console, transient=True, refresh_per_second=4)
            self._live.start()
        else:
            self._live.update(text)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()


def _echo(fd: int, data: bytes) -> None:
    stream = sys.stdout if fd == 1 else sys.stderr
    stream.flush()
    stream.buffer.write(data)
    stream.buffer.flush()


def record(
    program: Annotated[Path, typer.Argument(
        help="A NASM .asm file, a C .c file, or a static x86-64 ELF.")],
    args: Annotated[Optional[list[str]], typer.Argument(
        help="Arguments for the program (put them after --).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Trace directory (default: traces/<program name>). Replaces "
        "an earlier trace there, never anything else; the run is written into "
        "DIR.recording-PID beside it and renamed when it ends, so a killed recording "
        "leaves its partial trace there.")] = None,
    stdin: Annotated[Optional[str], typer.Option(
        "--stdin", help="File whose bytes are the program's standard input, or - for ours.")
    ] = None,
    max_steps: Annotated[Optional[int], typer.Option(
        "--max-steps", min=1, help="Stop after this many instructions.")] = None,
    max_trace_mb: Annotated[Optional[float], typer.Option(
        "--max-trace-mb", min=0.01, help="Stop when the event files reach this size.")] = None,
    allow_read: Annotated[Optional[list[Path]], typer.Option(
        "--allow-read", help="A host directory the program may open files under (repeatable).")
    ] = None,
    include: Annotated[Optional[list[Path]], typer.Option(
        "--include", help="A directory the .asm or .c source may %include, incbin or "
        "#include from, besides its own (repeatable; nasm's -i, gcc's -I). The build reads "
        "nothing else on the host.")] = None,
    libc: Annotated[str, typer.Option(
        "--libc", help="For a .c file: glibc (gcc -static) or musl (musl-gcc -static).")
    ] = "glibc",
    cc_flag: Annotated[Optional[list[str]], typer.Option(
        "--cc-flag", help="For a .c file: a further compiler flag, after -static -g -O0 "
        "(repeatable, e.g. --cc-flag=-O2).")] = None,
    env: Annotated[Optional[list[str]], typer.Option(
        "--env", help="KEY=VALUE for the program's environment (repeatable; replaces the "
        "small default environment).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for AT_RANDOM and getrandom.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="Do not echo the program's output.")] = False,
) -> None:
    """Record every memory access, RSP change and syscall of PROGRAM into a trace."""
    from tracer.output import partial_recordings
    from tracer.recorder import RecordOptions, default_output, record as run_record

    stdin_bytes = b""
    if stdin == "-":
        stdin_bytes = sys.stdin.buffer.read()
    elif stdin is not None:
        path = Path(stdin)
        if not path.is_file():
            raise TracerError(f"--stdin {stdin}: no such file")
        stdin_bytes = path.read_bytes()
    for entry in env or []:
        if "=" not in entry:
            raise TracerError(f"--env {entry!r} is not KEY=VALUE")
    for partial in partial_recordings(output or default_output(program)):
        console.print(f"note: {escape(str(partial))} is the partial trace of a recording that "
                      "was killed; `trace info` reads it, delete it when done")
    line = ProgressLine()
    options = RecordOptions(
        program=program, output=output, args=tuple(args or ()),
        env=tuple(env) if env else None, stdin=stdin_bytes, max_steps=max_steps,
        max_trace_mb=max_trace_mb, allow_read=tuple(allow_read or ()),
        include=tuple(include or ()), seed=seed,
        echo=None if quiet else _echo, progress=line.update, libc=libc,
        cc_flags=tuple(cc_flag or ()), on_compile=_show_command)
    try:
        result = run_record(options)
    finally:
        line.close()
    tool = "gcc" if result.build_command else "nasm"
    for warning in result.warnings:
        console.print(f"[yellow]{tool}:[/] {escape(warning)}")
    console.print(_ending(result))
    console.print(f"trace written to [bold]{result.trace}[/] "
                  f"({result.instructions:,} instructions, {result.accesses:,} memory accesses)")
    console.print(f"next: [cyan]trace info {result.trace}[/]   "
                  f"[cyan]trace report {result.trace} --open[/]")


def _show_command(command: str) -> None:
    console.print(f"compiling: {escape(command)}")


def _ending(result) -> str:
    if result.stop_reason == "exit":
        return f"the program exited with status {result.exit_code}"
    if result.fault is not None:
        f = result.fault
        where = f"step {f.step:,}, RIP {f.rip:#x}"
        return f"[red]the program was killed by {f.signal}[/]: {escape(f.cause)} ({where})"
    if result.stop_reason == "max-steps":
        return "[yellow]stopped at the --max-steps limit; the trace is marked truncated[/]"
    if result.stop_reason == "max-trace-size":
        return "[yellow]stopped at the --max-trace-mb limit; the trace is marked truncated[/]"
    if result.error:
        return f"[red]recording stopped:[/] {escape(result.error)}"
    return f"recording stopped ({result.stop_reason})"
