"""One program of a batch, start to finish, as a Ray task runs it: record it into
DATASET/traces/<id>/ (tracer.recorder, through tracer/output.py's safe output path), analyse
it as `trace report` does, write its report and its rows of the Parquet dataset. Whatever
goes wrong becomes the program's row, never an exception: the batch goes on."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from tracer.errors import AssembleError, OutputError, ProgramError, SandboxError, TracerError
from vmtrace.batch.inputs import BatchOptions, ProgramJob

TIME_LIMIT = "time-limit"
TRACES = "traces"

# How a run that was recorded ended -> its status (`ok`: it exited by itself).
_STATUS = {"exit": "ok", "fault": "fault", "unsupported-syscall": "unsupported-syscall",
           "max-steps": "max-steps", "max-trace-size": "max-trace-size",
           "min-free-disk": "min-free-disk", "error": "error", "stopped": "error"}


def status_of_error(exc: TracerError) -> str:
    """The status of an input that could not be recorded at all."""
    if isinstance(exc, AssembleError):
        return "build-error"   # nasm, ld or gcc refused it (CompileError included)
    if isinstance(exc, ProgramError):
        return "bad-program"   # not a static x86-64 ELF
    if isinstance(exc, (OutputError, SandboxError)):
        return "setup-error"
    return "error"


def trace_dir(dataset: Path, program: str) -> Path:
    return dataset / TRACES / program


def report_path(dataset: Path, program: str) -> Path:
    """Where `trace report DATASET/traces/<id>` writes by default: beside the trace."""
    return dataset / TRACES / f"{program}.report.html"


def run_program(job: ProgramJob, options: BatchOptions, dataset: str,
                parquet: str) -> dict[str, Any]:
    """Records, analyses and stores one program.

    Args:
        job: the program.
        options: the batch's recording options.
        dataset: the dataset directory (local or shared by every node): traces and reports.
        parquet: where the Parquet tables go (the dataset directory, or a URI).

    Returns:
        The program's `programs` row (already written to the dataset), plus `program`.
    """
    from analysis.dataset import DatasetLocation, DatasetWriter, failed_row
    from analysis.errors import AnalysisError

    started = time.monotonic()
    root = Path(dataset)
    writer = DatasetWriter(DatasetLocation.parse(parquet))
    writer.clear(job.program)
    try:
        row = _record_and_analyse(job, options, root, writer, started)
    except TracerError as exc:
        row = failed_row(job.source, job.kind, status_of_error(exc), str(exc),
                         job.input_hash, time.monotonic() - started)
    except AnalysisError as exc:
        row = failed_row(job.source, job.kind, "analysis-error", str(exc), job.input_hash,
                         time.monotonic() - started)
    except Exception as exc:  # noqa: BLE001 - a bug on one input must not stop the batch
        row = failed_row(job.source, job.kind, "crashed", f"{type(exc).__name__}: {exc}",
                         job.input_hash, time.monotonic() - started)
    if row.get("trace") is None or row["status"] == "crashed":
        writer.clear(job.program)
        writer.write_row(job.program, row)
    return {"program": job.program, **row}


def _record_and_analyse(job: ProgramJob, options: BatchOptions, root: Path,
                        writer, started: float) -> dict[str, Any]:
    from tracer.recorder import RecordOptions, record
    from tracer.stop_request import StopRequest

    out = trace_dir(root, job.program)
    stop = StopRequest()
    timer = None
    if options.timeout:
        timer = threading.Timer(options.timeout, stop.request, [TIME_LIMIT])
        timer.daemon = True
        timer.start()
    try:
        result = record(RecordOptions(
            program=Path(job.path), output=out, args=options.args, stdin=options.stdin,
            max_steps=options.max_steps, max_trace_mb=options.max_trace_mb,
            stop=stop, allow_read=tuple(Path(p) for p in options.allow_read),
            libc=options.libc, seed=options.seed))
    finally:
        if timer is not None:
            timer.cancel()
    if result.stop_reason == "interrupted":
        status = TIME_LIMIT if result.interrupted_by == TIME_LIMIT else "interrupted"
        error = (f"stopped after the --timeout of {options.timeout:g} s"
                 if status == TIME_LIMIT else "the recording was interrupted")
    else:
        status = _STATUS.get(result.stop_reason, result.stop_reason)
        error = result.error
        if result.fault is not None:
            error = f"killed by {result.fault.signal}: {result.fault.cause}"
    return _analyse(job, options, root, writer, out, status, error, started)


def _analyse(job: ProgramJob, options: BatchOptions, root: Path, writer, out: Path,
             status: str, error: str | None, started: float) -> dict[str, Any]:
    from analysis import open_trace
    from analysis.dataset import program_row
    from analysis.report import build_report
    from vmtrace.commands.report import allocator_tracking, write_output

    trace = open_trace(out)
    frag, heap = allocator_tracking(trace, None)
    data = build_report(trace, frag, heap, views=options.reports)
    report = None
    if options.reports:
        from analysis.html import render_report

        target = report_path(root, job.program)
        write_output(target, render_report(data))
        report = os.path.relpath(target, root)
    row = program_row(data, source=job.source, status=status, error=error,
                      input_hash=job.input_hash, trace=os.path.relpath(out, root),
                      report=report, seconds=time.monotonic() - started)
    row["kind"] = job.kind
    writer.write_program(job.program, trace, row)
    return row
