"""`trace record`: assemble/load a program, run it emulated, write its trace."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated, Optional

from tracer.ending import StopReason
from tracer.errors import TracerError
from tracer.limits import DEFAULT_MAX_TRACE_MB, DEFAULT_MIN_FREE_MB
from analysis.formatting import plural
from vmtrace.lazy import lazy_module
from vmtrace.terminal import LazyConsole, SafeDecoder, safe

# Typer reads this module's annotations when the full CLI builds the command; `trace
# record` itself is parsed without it (vmtrace/record_args.py), and typer + pydantic would
# be a third of a short recording's start-up.
typer = lazy_module("typer")
# soft_wrap: a file:line warning or a trace path must stay on one line (editors and
# copy-paste depend on it), whatever the terminal width. Made on first use: `-q` never
# loads rich.
console = LazyConsole(stderr=True)


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
            self._live = Live(text, console=console.rich, transient=True,
                              refresh_per_second=4)
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
    program: Annotated[Path, typer.Argument(
        metavar="PROGRAM", help="A NASM .asm file, a C .c file, or a static x86-64 ELF.")],
    args: Annotated[Optional[list[str]], typer.Argument(
        help="Arguments for the program (put them after --).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="DIR",
        help="Trace directory (default: traces/<program name>). Replaces "
        "an earlier trace there, never anything else; the run is written into "
        "DIR.recording-PID beside it and renamed when it ends, so a killed recording "
        "leaves its partial trace there.")] = None,
    stdin: Annotated[Optional[str], typer.Option(
        "--stdin", metavar="FILE|-",
        help="File whose bytes are the program's standard input, or - for ours.")
    ] = None,
    max_steps: Annotated[Optional[int], typer.Option(
        "--max-steps", metavar="N", min=1,
        help="Stop after this many instructions.")] = None,
    max_trace_mb: Annotated[float, typer.Option(
        "--max-trace-mb", metavar="MIB", min=0,
        help="Stop when the trace (all its files) reaches this many "
        "MiB; 0: no limit.")] = DEFAULT_MAX_TRACE_MB,
    min_free_mb: Annotated[float, typer.Option(
        "--min-free-mb", metavar="MIB", min=0,
        help="Stop when the disk holding the trace has less than this "
        "many MiB free; 0: no floor.")] = DEFAULT_MIN_FREE_MB,
    max_memory: Annotated[str, typer.Option(
        "--max-memory", metavar="SIZE",
        help="Memory the program may map in all (like ulimit -v): past it, "
        "mmap/brk/mremap fail with ENOMEM. A size such as 4G or 512M (plain number: MiB).")
    ] = "4G",
    allow_read: Annotated[Optional[list[Path]], typer.Option(
        "--allow-read", metavar="DIR",
        help="A host directory the program may open regular files under, "
        "read-only (repeatable).")
    ] = None,
    include: Annotated[Optional[list[Path]], typer.Option(
        "--include", metavar="DIR",
        help="A directory the .asm or .c source may %include, incbin or "
        "#include from, besides its own (repeatable; nasm's -i, gcc's -I). The build reads "
        "nothing else on the host.")] = None,
    libc: Annotated[str, typer.Option(
        "--libc", metavar="glibc|musl",
        help="For a .c file: glibc (gcc -static) or musl (musl-gcc -static).")
    ] = "glibc",
    cc_flag: Annotated[Optional[list[str]], typer.Option(
        "--cc-flag", metavar="FLAG",
        help="For a .c file: a further compiler flag, after -static -g -O0 "
        "(repeatable, e.g. --cc-flag=-O2).")] = None,
    env: Annotated[Optional[list[str]], typer.Option(
        "--env", metavar="KEY=VALUE",
        help="KEY=VALUE for the program's environment (repeatable; replaces the "
        "small default environment).")] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed for AT_RANDOM and getrandom.")] = 0,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print errors only: not the program's output, not the build's "
        "warnings, not the summary (the trace keeps them all; trace info shows them).")
    ] = False,
    no_echo: Annotated[bool, typer.Option(
        "--no-echo", help="Do not echo the program's output (still print the summary).")
    ] = False,
    fast: Annotated[bool, typer.Option(
        "--fast", help="Record only the run's inputs (syscalls, kernel writes, regions, "
        "output) and keyframes, near Unicorn's own speed: the accesses, rsp and "
        "exec_counts tables are left to be materialised from the keyframes later.")
    ] = False,
) -> None:
    """Record every memory access, RSP change and syscall of PROGRAM into a trace.

    Ctrl-C (SIGINT) or SIGTERM stops the recording and keeps the trace so far, marked
    truncated; the exit status is then 130 or 143, as for a process the signal ended.
    """
    from tracer.build_job import start_build
    from tracer.stop_request import EXIT_STATUS, stop_on_signals

    console.quiet = quiet
    stdin_bytes = b""
    if stdin is None and _piped_stdin():
        console.print("[yellow]note:[/] standard input is a pipe or file, but the program "
                      "gets none unless asked: add --stdin - to give it what is piped in")
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
    memory = parse_size(max_memory, "--max-memory")
    # The sandboxed build runs on another core while the recorder's modules load (pyarrow,
    # numpy, unicorn: most of a short recording's time); record() closes it.
    build = start_build(program, tuple(include or ()), libc, tuple(cc_flag or ()),
                        _show_command)
    # The recorder's modules (pyarrow, numpy, unicorn, capstone) make ~50,000 objects that
    # live as long as the process and no garbage: the collector's passes over them while
    # they load, and its first pass after, were ~10 ms of start-up. Frozen, no pass sees
    # them (the recorder freezes the heap for the run anyway, and unfreezes it after).
    collecting = gc.isenabled()
    gc.disable()
    try:
        from tracer.output import partial_recordings
        from tracer.recorder import RecordOptions, default_output, record as run_record
    finally:
        gc.freeze()
        if collecting:
            gc.enable()

    for partial in partial_recordings(output or default_output(program)):
        console.print(f"note: {safe(str(partial))} is the partial trace of a recording that "
                      "was killed; `trace info` reads it, delete it when done")
    line = ProgressLine()
    signals_seen: list[str] = []

    def on_signal(name: str) -> None:
        signals_seen.append(name)
        console.print(f"[yellow]{name}: stopping the recording and closing the trace...[/]"
                      if len(signals_seen) == 1 else
                      f"[yellow]{name} again: the trace is being closed, one moment...[/]")

    # Until the last line is printed, a signal only stops the run: a second Ctrl-C while
    # the trace is closed (or moved into place) cannot leave it half-written.
    with stop_on_signals(on_signal) as stop:
        options = RecordOptions(
            program=program, output=output, args=tuple(args or ()),
            env=tuple(env) if env else None, stdin=stdin_bytes, max_steps=max_steps,
            max_trace_mb=max_trace_mb or None, min_free_mb=min_free_mb or None,
            max_memory=memory, stop=stop, allow_read=tuple(allow_read or ()),
            include=tuple(include or ()), seed=seed,
            echo=None if quiet or no_echo else _echo, progress=line.update, libc=libc,
            cc_flags=tuple(cc_flag or ()), on_compile=_show_command)
        try:
            if fast:
                from tracer.fast_record import record_fast
                result = record_fast(options, build)
            else:
                result = run_record(options, build)
        finally:
            line.close()
        tool = "gcc" if result.build_command else "nasm"
        for warning in result.warnings:
            # ld's warnings name their tool already (`ld: warning: ...`).
            label = "" if warning.startswith("ld: ") else f"[yellow]{tool}:[/] "
            console.print(f"{label}{safe(warning)}")
        console.print(_ending(result, options))
        if result.memory_refusals:
            console.print(f"[yellow]note:[/] "
                          f"{plural(result.memory_refusals, 'mmap/brk/mremap request')} "
                          f"failed because of the --max-memory limit ({max_memory}); raise "
                          "it with --max-memory SIZE")
        events = ("access and RSP events not materialised yet" if fast else
                  plural(result.accesses, 'memory access', 'memory accesses'))
        console.print(f"trace written to [bold]{result.trace}[/] "
                      f"({plural(result.instructions, 'instruction')}, {events})")
        if fast:  # any command that needs the events materialises them first
            console.print(f"next: [cyan]trace materialize {result.trace}[/] (in parallel; "
                          f"`trace report` and the rest do it first by themselves)")
        else:
            console.print(f"next: [cyan]trace info {result.trace}[/]   "
                          f"[cyan]trace report {result.trace} --open[/]")
    if result.interrupted_by is not None:
        sys.exit(EXIT_STATUS.get(result.interrupted_by, 130))


def _piped_stdin() -> bool:
    """Whether our standard input is a pipe or a file (not a terminal, not /dev/null)."""
    import os
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or (stat.S_ISREG(mode) and os.fstat(0).st_size > 0)


def parse_size(text: str, option: str) -> int:
    """A size such as 4G, 512M, 1.5G or 300K in bytes (powers of 1024); a plain number is
    MiB, as in --max-trace-mb."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    body = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = units.get(body[-1:], None)
    number = body[:-1] if scale else body
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    size = int(value * (scale or units["M"]))
    if not value > 0 or size < (1 << 20):
        raise TracerError(f"{option} {text!r} is not a size of at least 1M, such as 4G or 512M")
    return size


def _show_command(command: str) -> None:
    console.print(f"compiling: {safe(command)}")


def _ending(result, options) -> str:
    where = f"step {result.instructions:,}, RIP {result.rip or 0:#x}"
    if result.stop_reason == StopReason.EXIT:
        return f"the program exited with status {result.exit_code}"
    if result.fault is not None:
        f = result.fault
        where = f"step {f.step:,}, RIP {f.rip:#x}"
        return f"[red]the program was killed by {f.signal}[/]: {safe(f.cause)} ({where})"
    truncated = "the trace so far is kept, marked truncated"
    if result.stop_reason == StopReason.INTERRUPTED:
        return f"[yellow]interrupted by {result.interrupted_by or 'a stop request'} at {where}; " \
               f"{truncated}[/]"
    if result.stop_reason == StopReason.MAX_STEPS:
        return (f"[yellow]stopped at the --max-steps limit ({options.max_steps:,} instructions)"
                f" at {where}; {truncated}; raise it with --max-steps N[/]")
    if result.stop_reason == StopReason.MAX_TRACE_SIZE:
        return (f"[yellow]stopped at the trace size limit (--max-trace-mb "
                f"{options.max_trace_mb:g}) at {where}; {truncated}; raise it with "
                "--max-trace-mb N (0: no limit)[/]")
    if result.stop_reason == StopReason.MIN_FREE_DISK:
        return (f"[yellow]stopped: the disk holding the trace has less than "
                f"{options.min_free_mb:g} MiB free (--min-free-mb) at {where}; {truncated}; "
                "free some space, or lower it with --min-free-mb N (0: no floor)[/]")
    if result.error:
        return f"[red]recording stopped:[/] {safe(result.error)}"
    return f"recording stopped ({result.stop_reason})"
