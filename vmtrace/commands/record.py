"""`trace record`: assemble/load a program, run it emulated, write its trace."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from tracer.errors import TracerError
from vmtrace.terminal import SafeDecoder, safe

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


_DECODERS: dict[int, SafeDecoder] = {}


def _echo(fd: int, data: bytes) -> None:
    """The program's output as it runs: its exact bytes into a file or pipe, but on a
    terminal with control sequences shown escaped (the program is not trusted to drive
    the user's terminal)."""
    stream = sys.stdout if fd == 1 else sys.stderr
    stream.flush()
    if stream.isatty():
        stream.write(_DECODERS.setdefault(fd, SafeDecoder()).text(data))
        stream.flush()
        return
    stream.buffer.write(data)
    stream.buffer.flush()


def record(
    program: Annotated[Path, typer.Argument(help="A NASM .asm file or a static x86-64 ELF.")],
    args: Annotated[Optional[list[str]], typer.Argument(
        help="Arguments for the program (put them after --).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", help="Trace directory (default: traces/<program name>).")] = None,
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
    env: Annotated[Optional[list[str]], typer.Option(
        "--env", help="KEY=VALUE for the program's environment (repeatable; replaces the "
        "small default environment).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for AT_RANDOM and getrandom.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
                                        help="Do not echo the program's output.")] = False,
) -> None:
    """Record every memory access, RSP change and syscall of PROGRAM into a trace."""
    from tracer.recorder import RecordOptions, record as run_record

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
    line = ProgressLine()
    options = RecordOptions(
        program=program, output=output, args=tuple(args or ()),
        env=tuple(env) if env else None, stdin=stdin_bytes, max_steps=max_steps,
        max_trace_mb=max_trace_mb, allow_read=tuple(allow_read or ()), seed=seed,
        echo=None if quiet else _echo, progress=line.update)
    try:
        result = run_record(options)
    finally:
        line.close()
    for warning in result.warnings:
        console.print(f"[yellow]nasm:[/] {safe(warning)}")
    console.print(_ending(result))
    console.print(f"trace written to [bold]{result.trace}[/] "
                  f"({result.instructions:,} instructions, {result.accesses:,} memory accesses)")
    console.print(f"next: [cyan]trace info {result.trace}[/]   "
                  f"[cyan]trace report {result.trace} --open[/]")


def _ending(result) -> str:
    if result.stop_reason == "exit":
        return f"the program exited with status {result.exit_code}"
    if result.fault is not None:
        f = result.fault
        where = f"step {f.step:,}, RIP {f.rip:#x}"
        return f"[red]the program was killed by {f.signal}[/]: {safe(f.cause)} ({where})"
    if result.stop_reason == "max-steps":
        return "[yellow]stopped at the --max-steps limit; the trace is marked truncated[/]"
    if result.stop_reason == "max-trace-size":
        return "[yellow]stopped at the --max-trace-mb limit; the trace is marked truncated[/]"
    if result.error:
        return f"[red]recording stopped:[/] {safe(result.error)}"
    return f"recording stopped ({result.stop_reason})"
