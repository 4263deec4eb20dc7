"""`trace batch`: record many programs in parallel (Ray tasks) into one dataset: each trace
and report under DATASET/traces/, and Parquet tables of every program to query."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from typer.core import TyperCommand

from tracer.errors import TracerError
from tracer.limits import DEFAULT_MAX_TRACE_MB
from vmtrace.terminal import safe

console = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_TIMEOUT = 300.0


class BatchCommand(TyperCommand):
    """Keeps what follows `--` apart: those are the programs' arguments, not inputs
    (click would otherwise hand them to INPUTS)."""

    def parse_args(self, ctx, args):
        if "--" in args:
            cut = args.index("--")
            ctx.meta["program_args"] = tuple(args[cut + 1:])
            args = args[:cut]
        return super().parse_args(ctx, args)


def batch(
    ctx: typer.Context,
    inputs: Annotated[list[str], typer.Argument(
        help="Programs: .asm, .c or static ELF files, directories (searched recursively) "
        "or globs. Arguments for every program go after --.")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="The dataset directory: traces/ (each trace and its report) "
        "and one Parquet table per kind of row.")],
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", min=1, help="Programs recorded at once on the local Ray started here "
        "(default: the number of CPUs).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray", help="Join this Ray cluster instead (auto, HOST:6379 or ray://HOST:10001); "
        "every node needs vmtrace installed and the dataset directory mounted.")] = None,
    parquet: Annotated[Optional[str], typer.Option(
        "--parquet", help="Write the Parquet tables here instead of into the dataset "
        "directory: a directory or a URI (file://, s3://, gs://, ...).")] = None,
    stdin: Annotated[Optional[Path], typer.Option(
        "--stdin", help="File whose bytes are every program's standard input.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(
        "--max-steps", min=1, help="Stop each program after this many instructions.")] = None,
    max_trace_mb: Annotated[float, typer.Option(
        "--max-trace-mb", min=0, help="Stop a program when its trace reaches this many MiB; "
        "0: no limit.")] = DEFAULT_MAX_TRACE_MB,
    timeout: Annotated[float, typer.Option(
        "--timeout", min=0, help="Stop a program after this many seconds of recording (its "
        "status is then time-limit); 0: no limit.")] = DEFAULT_TIMEOUT,
    allow_read: Annotated[Optional[list[Path]], typer.Option(
        "--allow-read", help="A host directory every program may open regular files under, "
        "read-only (repeatable).")] = None,
    libc: Annotated[str, typer.Option(
        "--libc", help="For .c files: glibc (gcc -static) or musl (musl-gcc -static).")
    ] = "glibc",
    seed: Annotated[int, typer.Option(help="Seed for AT_RANDOM and getrandom.")] = 0,
    reports: Annotated[bool, typer.Option(
        "--reports/--no-reports", help="Write each program's HTML report beside its trace "
        "(what `trace compare` links to; about 2-3 MB each).")] = True,
    force: Annotated[bool, typer.Option(
        "--force", help="Record every program again, even those already in the dataset "
        "with the same source and options.")] = False,
) -> None:
    """Record many programs into one dataset, in parallel, one row per program.

    A program that does not build, faults, calls a syscall vmtrace does not emulate or runs
    out of time becomes a row saying so; the batch goes on. Programs already in the dataset
    with the same source bytes and options are skipped (resume after an interruption).
    """
    from analysis.dataset import RETRIED, DatasetLocation, recorded_programs
    from vmtrace.batch.inputs import BatchOptions, plan
    from vmtrace.batch.runner import import_ray

    import_ray()  # before any work: without Ray, say what to install and stop
    stdin_bytes = b""
    if stdin is not None:
        if not stdin.is_file():
            raise TracerError(f"--stdin {stdin}: no such file")
        stdin_bytes = stdin.read_bytes()
    options = BatchOptions(
        args=ctx.meta.get("program_args", ()), stdin=stdin_bytes, max_steps=max_steps,
        max_trace_mb=max_trace_mb or None,
        allow_read=tuple(os.path.abspath(p) for p in allow_read or ()),
        libc=libc, seed=seed, timeout=timeout or None, reports=reports)
    todo = plan(inputs, options)
    dataset = Path(os.path.abspath(output))
    _check_dataset(dataset)
    dataset.mkdir(parents=True, exist_ok=True)
    location = DatasetLocation.parse(parquet or dataset)
    done = {} if force else recorded_programs(location)
    skipped = [j for j in todo if j.program in done
               and done[j.program]["input_hash"] == j.input_hash
               and done[j.program]["status"] not in RETRIED]
    todo = [j for j in todo if j not in skipped]
    if skipped:
        console.print(f"{len(skipped)} program(s) already recorded with the same source and "
                      "options: skipped (--force records them again)")
    started = time.monotonic()
    failed: list[dict] = []
    if todo:
        failed = _run(todo, options, dataset, location.uri, jobs or os.cpu_count() or 1,
                      ray_address)
    seconds = time.monotonic() - started
    console.print(f"{len(todo) - len(failed)} recorded, {len(failed)} not ok, "
                  f"{len(skipped)} skipped, in {seconds:.1f} s; dataset: [bold]{dataset}[/]")
    for row in sorted(failed, key=lambda r: r["program"]):
        console.print(f"  {safe(row['program'])}: {safe(row['status'])}"
                      + (f": {safe(_first_line(row['error']))}" if row.get("error") else ""))
    console.print(f"next: [cyan]trace compare {dataset}[/]   "
                  f"[cyan]trace sql {dataset} \"SELECT program, status FROM programs\"[/]")


def _run(todo, options, dataset: Path, parquet: str, workers: int,
         address: str | None) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vmtrace.batch.runner import run_batch

    failed: list[dict] = []
    bar = Progress(TextColumn("recording"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), console=console, transient=True,
                   disable=not console.is_terminal)
    with bar:
        task = bar.add_task("batch", total=len(todo), status="starting Ray...")

        def on_row(row: dict, progress) -> None:
            if row["status"] != "ok":
                failed.append(row)
            bar.update(task, completed=progress.done, status=(
                f"done {progress.done - progress.failed}, failed {progress.failed}, "
                f"running {progress.running}"))
            if not console.is_terminal:
                console.print(f"[{progress.done}/{progress.total}] {safe(row['program'])}: "
                              f"{safe(row['status'])}")

        run_batch(todo, options, dataset, parquet, workers, address, on_row)
    return failed


def _check_dataset(dataset: Path) -> None:
    """Refuses a dataset path that is a file, or a directory that already holds other
    things than a dataset (a batch never writes among a user's files)."""
    from vmtrace.batch.worker import TRACES

    if dataset.is_symlink() or (dataset.exists() and not dataset.is_dir()):
        raise TracerError(f"{dataset} is not a directory; choose another -o")
    if dataset.is_dir():
        ours = {TRACES, "programs", "syscalls", "stack", "accesses", "compare.html"}
        foreign = sorted(n for n in os.listdir(dataset) if n not in ours)
        if foreign:
            shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise TracerError(f"{dataset} holds {shown}, which trace batch did not write; "
                              "choose an empty or new directory for -o")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""
