"""Runs a batch's programs as Ray tasks: on a local Ray this process starts (one worker per
--jobs), on a cluster it joins (--ray ADDRESS), or on the Ray this process already runs (a
notebook, the tests). Each finished program is handed back as its row; a task whose worker
died becomes a `crashed` row written here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracer.errors import TracerError
from vmtrace.batch.inputs import BatchOptions, ProgramJob

INSTALL_HINT = "trace batch needs Ray: pip install 'vmtrace[batch]' (or: pip install ray)"


class RayMissing(TracerError):
    """Ray is not installed; the message is the pip command."""


@dataclass
class BatchProgress:
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0


def import_ray():
    """Raises:
        RayMissing: with the pip command to run."""
    try:
        import ray
    except ImportError:
        raise RayMissing(INSTALL_HINT) from None
    return ray


def run_batch(jobs: list[ProgramJob], options: BatchOptions, dataset: Path, parquet: str,
              workers: int, address: str | None,
              on_row: Callable[[dict[str, Any], BatchProgress], None]) -> None:
    """Records every job; calls `on_row` as each one finishes (in finishing order).

    Args:
        jobs: the programs to record.
        options: recording options for all of them.
        dataset: the dataset directory (traces and reports; shared by every node).
        parquet: where the Parquet tables go.
        workers: parallel recordings on a local Ray started here.
        address: a Ray cluster to join instead (`auto`, `ray://host:10001`, `host:6379`).
        on_row: told each program's row and the progress so far.
    """
    ray = import_ray()
    from vmtrace.batch.worker import run_program

    started_here = not ray.is_initialized()
    if started_here:
        common = dict(logging_level=logging.ERROR, log_to_driver=False,
                      include_dashboard=False)
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=workers, **common)
    try:
        capacity = max(1, int(ray.cluster_resources().get("CPU", workers)))
        task = ray.remote(num_cpus=1, max_retries=0)(run_program)
        pending = {task.remote(job, options, str(dataset), parquet): job for job in jobs}
        progress = BatchProgress(total=len(jobs), running=min(capacity, len(pending)))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                row = _result(ray, ref, job, parquet)
                progress.done += 1
                progress.failed += row["status"] != "ok"
                progress.running = min(capacity, len(pending))
                on_row(row, progress)
    finally:
        if started_here:
            ray.shutdown()


def _result(ray, ref, job: ProgramJob, parquet: str) -> dict[str, Any]:
    """The task's row; if its worker died (a crash in native code, out of memory), a
    `crashed` row, written here since the task could not."""
    started = time.monotonic()
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        from analysis.dataset import DatasetLocation, DatasetWriter, failed_row

        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        row = failed_row(job.source, job.kind, "crashed", f"the Ray task failed: {cause}",
                         job.input_hash, time.monotonic() - started)
        writer = DatasetWriter(DatasetLocation.parse(parquet))
        writer.clear(job.program)
        writer.write_row(job.program, row)
        return {"program": job.program, **row}
